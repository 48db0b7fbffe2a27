package main

// The daemon: serve's steps from the configuration to a clean stop.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/jonboulle/clockwork"

	"rocksaying.tw/gated/internal/clocksync"
	"rocksaying.tw/gated/internal/config"
	"rocksaying.tw/gated/internal/dbuslink"
	"rocksaying.tw/gated/internal/gate"
	"rocksaying.tw/gated/internal/mqttlink"
	"rocksaying.tw/gated/internal/mqttlink/demobroker"
	"rocksaying.tw/gated/internal/position"
	"rocksaying.tw/gated/internal/weblink"
)

// serve runs the gate and its links until ctx ends. loadConfig has refused
// every configuration the parts would refuse; what can still fail here is
// the machine (a pin it does not have) and the peers.
func serve(ctx context.Context, cfg config.Config, f flags, log *slog.Logger) error {
	clk := clockwork.NewRealClock()
	hw, err := openPins(cfg, clk, log)
	if err != nil {
		return err
	}
	logStart(cfg, log)
	if f.demo && cfg.MQTT.Broker != "" {
		stop, err := startDemoBroker(ctx, &cfg, demoBrokerAddr, log)
		if err != nil {
			return err
		}
		defer stop()
	}
	if f.demo {
		if err := demoWeb(&cfg, os.Stderr); err != nil {
			return err
		}
	}
	keep := openState(stateDir(f.demo), f.demo, log)
	d, err := build(cfg, hw, clk, log, keep)
	if err != nil {
		return usageError{err}
	}
	d.stateDir = stateDir(f.demo)
	return d.run(ctx)
}

func logStart(cfg config.Config, log *slog.Logger) {
	if cfg.GPIO.Driver == "periph" && cfg.GPIO.OutputMode == "pulse" && cfg.GPIO.MotorStop == "" {
		// Without a stop input gated cannot halt the operator: stop,
		// travel_timeout and an obstruction still change the state and
		// raise the alarm, but the operator runs on to its own limit.
		log.Warn("pulse mode without gpio.motor_stop: stop and travel_timeout cannot halt the operator; it relies on its own safety inputs")
	}
	log.Info("gated starting", "version", version, "gate", cfg.Gate.Name, "driver", cfg.GPIO.Driver, "mqtt", config.MaskURL(cfg.MQTT.Broker), "dbus", cfg.DBus.Bus)
}

// demoBrokerAddr is where -demo's embedded MQTT broker listens.
const demoBrokerAddr = "127.0.0.1:1883"

// startDemoBroker starts -demo's embedded MQTT broker on addr, or finds one
// already listening there, and points cfg's broker at it. stop stops the
// broker it started.
func startDemoBroker(ctx context.Context, cfg *config.Config, addr string, log *slog.Logger) (stop func(), err error) {
	// The broker outlives the link, so its "offline" reaches subscribers.
	bound, stop, err := demobroker.Start(context.WithoutCancel(ctx), addr, log)
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		log.Info("an MQTT broker already listens on " + addr + ": using it")
		bound, stop = addr, func() {}
	case err != nil:
		return nil, fmt.Errorf("demo broker: %w", err)
	}
	// demobroker logs that it listens. It is plain TCP on the loopback.
	url := "tcp://" + bound
	cfg.MQTT.Broker, cfg.MQTT.URL, cfg.MQTT.TLS = url, url, nil
	return stop, nil
}

// parts are every part of gated, built and not yet started.
type parts struct {
	cfg  config.Config
	log  *slog.Logger
	gate *gate.Gate
	link *mqttlink.Link // nil without MQTT
	sd   *notifier
	keep *keeper            // nil: nothing kept across restarts (tests)
	ck   *clocksync.Checker // nil without MQTT

	web         *weblink.Link     // nil without [web] listen
	dbus        *dbuslink.Service // nil without D-Bus; set before the web starts
	history     historyRef        // history.go
	stateDir    string            // "": no history (the tests' builds)
	gateRunning atomic.Bool       // the gate's loop runs: /healthz
}

func (d *parts) dbusConnected() bool { return d.dbus != nil && d.dbus.Connected() }

// build makes every part from the configuration, the pins and what the
// last run kept (keep; nil: nothing, as in tests), starting nothing. A part
// that needs the kept state reads keep.restored here. serve runs what it returns; the tests build from every example
// configuration to show that what loadConfig accepts, the parts accept.
func build(cfg config.Config, hw hardware, clk clockwork.Clock, log *slog.Logger, keep *keeper) (*parts, error) {
	d := &parts{cfg: cfg, log: log, sd: newNotifier(log), keep: keep}
	gc := gateConfig(cfg)
	gc.Restored = keep.gateRestored()
	var onLearned func(position.Samples)
	if keep != nil {
		restoreTravel(&gc, keep.restored, log)
		onLearned = saveTravel(keep.store)
	}
	g, err := gate.New(gc, hw.pins, gate.Options{
		Clock: clk, Log: log.With("part", "gate"),
		Heartbeat: d.sd.heartbeat, HeartbeatEvery: d.sd.watchdogEvery,
		OnLearned: onLearned,
	})
	if err != nil {
		return nil, err
	}
	d.gate = g
	if cfg.MQTT.Broker != "" {
		var sim mqttlink.Sim
		if hw.sim != nil {
			sim = hw.sim
		}
		// A Pi without a battery-backed clock: the age of a command is not
		// judged until the clock is synchronized (internal/clocksync).
		d.ck = clocksync.New(clocksync.Options{Log: log})
		d.link, err = mqttlink.New(mqttConfig(cfg), g, mqttlink.Options{Log: log, Clock: clk, Sim: sim, Version: version, ClockSynced: d.ck.Synchronized})
		if err != nil {
			return nil, err
		}
	}
	if d.web, err = buildWeb(cfg, d, clk, log); err != nil {
		return nil, err
	}
	d.sd.status = func() string { return statusLine(g.Status(), d.link, cfg) }
	return d, nil
}

// run starts the parts, the gate first, and stops them when ctx ends or
// the gate stops. Its error is the gate's, or the first part's that could
// not start.
func (d *parts) run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	if d.keep != nil {
		// Deferred after wg.Wait, so it runs first: every return below
		// has waited for the gate to stop, whose last status it records.
		defer d.keep.start(d.gate)()
	}
	gateDone := d.startGate(ctx, cancel, &wg)
	if err := waitStarted(ctx, d.gate, gateDone); err != nil {
		return err
	}
	d.gateRunning.Store(true)
	d.startHistory(ctx, &wg)
	if err := d.startDBus(ctx, &wg); err != nil {
		cancel()
		<-gateDone
		return err
	}
	d.startMQTT(ctx, &wg)
	if d.ck != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.ck.Run(ctx)
		}()
	}
	d.startWeb(ctx, &wg)
	d.sd.ready()
	wg.Add(1)
	go func() {
		defer wg.Done()
		d.sd.followStatus(ctx, d.gate)
	}()

	<-ctx.Done() // a signal, or the gate stopped
	d.sd.stopping()
	d.log.Info("gated stopping")
	cancel()
	return <-gateDone
}

// startGate runs the gate; when it stops, so does the daemon (cancel). Its
// error arrives on the channel.
func (d *parts) startGate(ctx context.Context, cancel context.CancelFunc, wg *sync.WaitGroup) <-chan error {
	done := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		err := d.gate.Run(ctx)
		d.gateRunning.Store(false)
		done <- err
		cancel() // no gate, no daemon
	}()
	return done
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

// startDBus takes the bus name (an error if it cannot) and serves the gate
// on D-Bus until ctx ends.
func (d *parts) startDBus(ctx context.Context, wg *sync.WaitGroup) error {
	if d.cfg.DBus.Bus == "none" {
		return nil
	}
	svc, err := dbuslink.Start(ctx, dbusConfig(d.cfg), d.gate, dbuslink.Options{Log: d.log, History: &d.history})
	if err != nil {
		return err
	}
	d.dbus = svc
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := svc.Run(ctx); err != nil {
			d.log.Error("dbus", "err", err)
		}
	}()
	return nil
}

// startMQTT serves the gate on MQTT until ctx ends. The link connects in
// the background and never holds up the gate.
func (d *parts) startMQTT(ctx context.Context, wg *sync.WaitGroup) {
	if d.link == nil {
		return
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := d.link.Run(ctx); err != nil {
			d.log.Error("mqtt", "err", err)
		}
	}()
}

// startHistory opens the event history and records the gate's statuses
// and commands in it until ctx ends; then the store writes what is queued
// and closes. Without a store (it did not open) the daemon runs on.
func (d *parts) startHistory(ctx context.Context, wg *sync.WaitGroup) {
	if d.stateDir == "" {
		return
	}
	s := openHistory(d.cfg, d.stateDir, d.log)
	if s == nil {
		return
	}
	d.history.p.Store(s)
	wg.Add(2)
	go func() {
		defer wg.Done()
		record(ctx, d.gate, s)
	}()
	go func() {
		defer wg.Done()
		if err := s.Run(ctx); err != nil {
			d.log.Warn("event history: the last write failed", "err", err)
		}
		if err := s.Close(); err != nil {
			d.log.Warn("event history: close", "err", err)
		}
	}()
}

// startWeb serves the panel and the API until ctx ends. A port it cannot
// listen on is an ERROR, not a stop: the gate and the other links go on.
func (d *parts) startWeb(ctx context.Context, wg *sync.WaitGroup) {
	if d.web == nil {
		return
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := d.web.Run(ctx); err != nil {
			d.log.Error("web", "err", err)
		}
	}()
}
