package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/jonboulle/clockwork"

	"rocksaying.tw/gated/internal/config"
	"rocksaying.tw/gated/internal/dbuslink"
	"rocksaying.tw/gated/internal/gate"
	"rocksaying.tw/gated/internal/mqttlink"
	"rocksaying.tw/gated/internal/mqttlink/demobroker"
)

// demoDefaults is the configuration of -demo without -config.
const demoDefaults = `
[gate]
name = "demo"
[gpio]
driver = "sim"
`

func loadConfig(f flags) (config.Config, error) {
	var cfg config.Config
	var err error
	if f.demo && !f.configSet {
		cfg, err = config.FromString(demoDefaults, "(demo defaults)")
	} else {
		cfg, err = config.FromFile(f.config)
	}
	if err != nil {
		return cfg, err
	}
	if f.simulate || f.demo {
		cfg.GPIO.Driver = "sim"
	}
	if f.demo && cfg.DBus.Bus == "system" {
		cfg.DBus.Bus = "none"
		if sessionBus() {
			cfg.DBus.Bus = "session"
		}
	}
	return cfg, nil
}

// sessionBus reports whether this user has a session bus to join.
func sessionBus() bool {
	if os.Getenv("DBUS_SESSION_BUS_ADDRESS") != "" {
		return true
	}
	_, err := os.Stat(fmt.Sprintf("/run/user/%d/bus", os.Getuid()))
	return err == nil
}

// serve runs the gate and its links until ctx ends. Everything that can be
// refused for its configuration is checked before the gate starts.
func serve(ctx context.Context, cfg config.Config, f flags, log *slog.Logger) error {
	clk := clockwork.NewRealClock()
	hw, err := openPins(cfg, clk)
	if err != nil {
		return err
	}
	if cfg.GPIO.Driver == "periph" && cfg.GPIO.OutputMode == "pulse" && cfg.GPIO.MotorStop == "" {
		// Without a stop input gated cannot halt the operator: stop,
		// travel_timeout and an obstruction still change the state and
		// raise the alarm, but the operator runs on to its own limit.
		log.Warn("pulse mode without gpio.motor_stop: stop and travel_timeout cannot halt the operator; it relies on its own safety inputs")
	}
	log.Info("gated starting", "version", version, "gate", cfg.Gate.Name, "driver", cfg.GPIO.Driver, "mqtt", config.MaskURL(cfg.MQTT.Broker), "dbus", cfg.DBus.Bus)

	var stopBroker func()
	if f.demo && cfg.MQTT.Broker != "" {
		// The broker outlives the link, so its "offline" reaches subscribers.
		addr, stop, err := demobroker.Start(context.WithoutCancel(ctx), "127.0.0.1:1883", log)
		switch {
		case errors.Is(err, syscall.EADDRINUSE):
			log.Info("an MQTT broker already listens on 127.0.0.1:1883: using it")
			cfg.MQTT.Broker = "tcp://127.0.0.1:1883"
		case err != nil:
			return fmt.Errorf("demo broker: %w", err)
		default:
			stopBroker = stop
			cfg.MQTT.Broker = "tcp://" + addr // demobroker logs that it listens
		}
	}
	if stopBroker != nil {
		defer stopBroker()
	}

	// gate.New starts nothing: Run does, once every part has been accepted.
	sd := newNotifier(log)
	g, err := gate.New(gateConfig(cfg), hw.pins, gate.Options{
		Clock: clk, Log: log.With("part", "gate"),
		Heartbeat: sd.heartbeat, HeartbeatEvery: sd.watchdogEvery,
	})
	if err != nil {
		return usageError{err}
	}

	var link *mqttlink.Link
	if cfg.MQTT.Broker != "" {
		m := cfg.MQTT
		password, err := mqttlink.ReadPassword(m.PasswordFile)
		if err != nil {
			return usageError{cfg.KeyError("mqtt.password_file", "%v", err)}
		}
		clientID := m.ClientID
		if clientID == "" {
			clientID = mqttlink.DefaultClientID()
		}
		var sim mqttlink.Sim
		if hw.sim != nil {
			sim = hw.sim
		}
		link, err = mqttlink.New(mqttlink.Config{
			Broker: m.Broker, ClientID: clientID, TopicPrefix: m.TopicPrefix,
			Username: m.Username, Password: password,
			CAFile: m.CAFile, CertFile: m.CertFile, KeyFile: m.KeyFile,
			KeepAlive: m.KeepAlive, MaxCommandAge: m.MaxCommandAge,
			Discovery: m.Discovery, DiscoveryPrefix: m.DiscoveryPrefix, GateName: cfg.Gate.Name,
		}, g, mqttlink.Options{Log: log, Clock: clk, Sim: sim, Version: version})
		if err != nil {
			return usageError{err}
		}
	}

	sd.status = func() string { return statusLine(g.Status(), link, cfg) }

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	gateDone := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		gateDone <- g.Run(ctx)
		cancel() // no gate, no daemon
	}()
	if err := waitStarted(ctx, g, gateDone); err != nil {
		return err
	}

	if cfg.DBus.Bus != "none" {
		svc, err := dbuslink.Start(ctx, dbuslink.Config{Bus: cfg.DBus.Bus}, g, dbuslink.Options{Log: log})
		if err != nil {
			cancel()
			<-gateDone
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := svc.Run(ctx); err != nil {
				log.Error("dbus", "err", err)
			}
		}()
	}
	// MQTT connects in the background and never holds up the gate.
	if link != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := link.Run(ctx); err != nil {
				log.Error("mqtt", "err", err)
			}
		}()
	}
	sd.ready()
	wg.Add(1)
	go func() {
		defer wg.Done()
		sd.followStatus(ctx, g)
	}()

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-gateDone:
		gateDone <- runErr // for the deferred wait
	}
	sd.stopping()
	log.Info("gated stopping")
	cancel()
	if err := <-gateDone; err != nil {
		return err
	}
	return runErr
}

// waitStarted returns once the gate has read its inputs and set its outputs.
func waitStarted(ctx context.Context, g *gate.Gate, done <-chan error) error {
	c, cancel := g.Subscribe()
	defer cancel()
	for {
		select {
		case st := <-c:
			if st.Seq > 0 {
				return nil
			}
		case err := <-done:
			if err == nil {
				err = errors.New("gate stopped at start-up")
			}
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func gateConfig(c config.Config) gate.Config {
	return gate.Config{
		Name: c.Gate.Name,
		Params: gate.Params{
			TravelTimeout:     c.Gate.TravelTimeout,
			ReverseDelay:      c.Gate.ReverseDelay,
			AutoClose:         c.Gate.AutoClose,
			AlarmDuration:     c.Gate.AlarmDuration,
			AlarmOnForcedOpen: c.Gate.AlarmOnForcedOpen,
		},
		InputsActiveLow:           c.GPIO.InputsActiveLow,
		OutputsActiveLow:          c.GPIO.OutputsActiveLow,
		ObstructionNormallyClosed: c.GPIO.ObstructionNormallyClosed,
		OutputMode:                gate.OutputMode(c.GPIO.OutputMode),
		PulseWidth:                c.GPIO.PulseWidth,
		Debounce:                  c.GPIO.Debounce,
	}
}

// statusLine is systemd's one-line summary.
func statusLine(st gate.Status, link *mqttlink.Link, cfg config.Config) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Gate %s: %s", cfg.Gate.Name, st.State)
	if st.Fault != "" {
		fmt.Fprintf(&b, " (%s)", st.Fault)
	}
	if st.Alarm {
		b.WriteString(", ALARM")
	}
	if st.Obstructed {
		b.WriteString(", obstructed")
	}
	switch {
	case link == nil:
		b.WriteString("; MQTT off")
	case link.Connected():
		b.WriteString("; MQTT connected")
	default:
		b.WriteString("; MQTT disconnected")
	}
	return b.String()
}

// notifier speaks sd_notify. Without NOTIFY_SOCKET every call is a no-op.
type notifier struct {
	log           *slog.Logger
	watchdogEvery time.Duration
	status        func() string

	mu   sync.Mutex
	last string
}

func newNotifier(log *slog.Logger) *notifier {
	n := &notifier{log: log}
	if d, err := daemon.SdWatchdogEnabled(false); err == nil && d > 0 {
		n.watchdogEvery = d / 2
	}
	return n
}

func (n *notifier) send(state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		n.log.Debug("sd_notify", "err", err)
	}
}

// statusUpdate returns "STATUS=…" when the line changed since last sent.
func (n *notifier) statusUpdate() string {
	if n.status == nil {
		return ""
	}
	s := n.status()
	n.mu.Lock()
	defer n.mu.Unlock()
	if s == n.last {
		return ""
	}
	n.last = s
	return "STATUS=" + s
}

func (n *notifier) ready() { n.send(strings.TrimSpace("READY=1\n" + n.statusUpdate())) }

func (n *notifier) stopping() { n.send("STOPPING=1\nSTATUS=stopping") }

// heartbeat runs on the gate's owner goroutine: a stuck gate loop stops the
// pings and the watchdog restarts us. It also carries MQTT's connection
// changes into the STATUS line.
func (n *notifier) heartbeat() {
	n.send(strings.TrimSpace("WATCHDOG=1\n" + n.statusUpdate()))
}

func (n *notifier) followStatus(ctx context.Context, g *gate.Gate) {
	c, cancel := g.Subscribe()
	defer cancel()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c:
			if s := n.statusUpdate(); s != "" {
				n.send(s)
			}
		}
	}
}
