package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/godbus/dbus/v5"
	"periph.io/x/conn/v3/gpio"

	"rocksaying.tw/gated/internal/config"
	"rocksaying.tw/gated/internal/dbuslink"
	"rocksaying.tw/gated/internal/dbuslink/dbusapi"
	"rocksaying.tw/gated/internal/gate"
	"rocksaying.tw/gated/internal/mqttlink"
	"rocksaying.tw/gated/internal/sim"
)

// stampPin is the simulator's motor_open relay with a timestamp on every
// change of level: the moment the gate drove the relay.
type stampPin struct {
	gpio.PinOut
	mu   sync.Mutex
	last gpio.Level
	ch   chan pinChange
}

type pinChange struct {
	at    time.Time
	level gpio.Level
}

func (p *stampPin) Out(l gpio.Level) error {
	if err := p.PinOut.Out(l); err != nil {
		return err
	}
	at := time.Now()
	p.mu.Lock()
	changed := l != p.last
	p.last = l
	p.mu.Unlock()
	if changed {
		select {
		case p.ch <- pinChange{at, l}:
		default:
		}
	}
	return nil
}

// users are a user's MQTT clients and D-Bus connection, watching one gate:
// one MQTT connection each for commands, statuses and results. On one
// connection paho hands each message's PUBACK to its writer before it reads
// the next message, so a status that follows a result would wait for that
// hand-off and the figure would be paho's.
type users struct {
	prefix   string
	cmd      mqtt.Client   // publishes commands
	watchers []mqtt.Client // receive statuses and results
	status   <-chan stamped
	results  <-chan stamped
	signals  chan stamped
	bus      *dbus.Conn
	obj      dbus.BusObject
	relay    *stampPin // nil: the gate is in another process
}

// newUsers connects to the broker and the bus (if busAddr is not "") and
// waits for the gate's retained status.
func newUsers(brokerURL, busAddr, prefix, idPrefix string) (*users, error) {
	u := &users{prefix: prefix, signals: make(chan stamped, 64)}
	var err error
	if u.cmd, err = client(brokerURL, idPrefix+"-cmd"); err != nil {
		return nil, err
	}
	for _, w := range []struct {
		id, topic string
		buf       int
		ch        *<-chan stamped
	}{{"-status", "/status", 1024, &u.status}, {"-results", "/result", 16384, &u.results}} {
		c, err := client(brokerURL, idPrefix+w.id)
		if err != nil {
			u.close()
			return nil, err
		}
		u.watchers = append(u.watchers, c)
		if *w.ch, _, err = subscribe(c, prefix+w.topic, w.buf); err != nil {
			u.close()
			return nil, err
		}
	}
	if _, ok := waitFor(u.status, 10*time.Second, func(b []byte) bool { _, ok := statusIn(b); return ok }); !ok {
		u.close()
		return nil, fmt.Errorf("no status on %s/status in 10s", prefix)
	}
	if busAddr == "" {
		return u, nil
	}
	if u.bus, err = dbus.Connect(busAddr); err != nil {
		u.close()
		return nil, fmt.Errorf("dbus client: %w", err)
	}
	if err := u.bus.AddMatchSignal(dbus.WithMatchObjectPath(dbusapi.Path), dbus.WithMatchInterface(dbusapi.Iface), dbus.WithMatchMember("StatusChanged")); err != nil {
		u.close()
		return nil, fmt.Errorf("dbus match: %w", err)
	}
	sigs := make(chan *dbus.Signal, 256)
	u.bus.Signal(sigs)
	go func() {
		for sig := range sigs {
			at := time.Now()
			if sig.Name != dbusapi.Signal || len(sig.Body) != 1 {
				continue
			}
			s, _ := sig.Body[0].(string)
			select {
			case u.signals <- stamped{at: at, payload: []byte(s)}:
			default:
			}
		}
	}()
	u.obj = u.bus.Object(dbusapi.Name, dbusapi.Path)
	return u, nil
}

func (u *users) close() {
	for _, c := range append(u.watchers, u.cmd) {
		if c != nil {
			c.Disconnect(100)
		}
	}
	if u.bus != nil {
		u.bus.Close()
	}
}

func (u *users) drain() {
	drain(u.status)
	drain(u.results)
	drain((<-chan stamped)(u.signals))
	if u.relay != nil {
		drain((<-chan pinChange)(u.relay.ch))
	}
}

// rig is gated's gate, MQTT link and D-Bus service in this process, on a
// simulated gate whose motor_open relay is timestamped.
type rig struct {
	*users
	sim  *sim.Gate
	gate *gate.Gate

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

const rigPrefix = "gatebench/inproc"

// startRig builds the in-process gate. The gate sits half open and still
// (state unknown, neither limit active) with a travel time of an hour, so
// open and stop alternate without ever reaching a limit. Debounce is 0: the
// figures are gated's own path; the configured debounce (30 ms by default)
// adds to an input edge by design.
func startRig(brokerURL, busAddr string) (*rig, error) {
	log := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	s := sim.New(sim.Config{
		TravelTime: time.Hour, Start: 0.5,
		InputsActiveLow: true, ObstructionNormallyClosed: true,
		HasObstruction: true, HasSiren: true,
	}, nil)
	pins := s.Pins()
	relay := &stampPin{PinOut: pins.MotorOpen, ch: make(chan pinChange, 64)}
	pins.MotorOpen = relay
	g, err := gate.New(gate.Config{
		Name: "bench",
		Params: gate.Params{
			TravelTimeout: 2 * time.Hour, ReverseDelay: 500 * time.Millisecond,
			AlarmDuration: time.Minute, AlarmOnForcedOpen: true,
		},
		InputsActiveLow: true, ObstructionNormallyClosed: true,
		OutputMode: gate.Hold,
	}, pins, gate.Options{Log: log.With("part", "gate")})
	if err != nil {
		return nil, err
	}
	r := &rig{sim: s, gate: g}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	started := make(chan struct{})
	sub, unsub := g.Subscribe()
	go func() {
		defer unsub()
		for st := range sub {
			if st.Seq > 0 {
				close(started)
				return
			}
		}
	}()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		if err := g.Run(ctx); err != nil {
			fmt.Printf("gatebench: gate: %v\n", err)
		}
	}()
	select {
	case <-started:
	case <-time.After(5 * time.Second):
		r.stop()
		return nil, errors.New("in-process gate did not start in 5s")
	}

	d := config.Default().MQTT // as gated runs with an empty [mqtt] section
	link, err := mqttlink.New(mqttlink.Config{
		Broker: brokerURL, ClientID: "gatebench-gated-inproc", TopicPrefix: rigPrefix,
		KeepAlive: d.KeepAlive, MaxCommandAge: d.MaxCommandAge,
	}, g, mqttlink.Options{Log: log, Sim: s})
	if err != nil {
		r.stop()
		return nil, err
	}
	svc, err := dbuslink.Start(ctx, dbuslink.Config{Bus: busAddr}, g, dbuslink.Options{Log: log})
	if err != nil {
		r.stop()
		return nil, err
	}
	r.wg.Add(2)
	go func() { defer r.wg.Done(); link.Run(ctx) }()
	go func() { defer r.wg.Done(); svc.Run(ctx) }()
	if r.users, err = newUsers(brokerURL, busAddr, rigPrefix, "gatebench-inproc"); err != nil {
		r.stop()
		return nil, err
	}
	r.users.relay = relay
	return r, nil
}

func (r *rig) stop() {
	if r.users != nil {
		r.users.close()
	}
	r.cancel()
	r.wg.Wait()
}

func stateIs(want gate.State) func([]byte) bool {
	return func(b []byte) bool { st, ok := statusIn(b); return ok && st.State == want }
}

func obstructedIs(want bool) func([]byte) bool {
	return func(b []byte) bool { st, ok := statusIn(b); return ok && st.Obstructed == want }
}

// waitRelay waits for the motor_open relay to change to want; without a
// relay to watch it returns false at once.
func (u *users) waitRelay(want gpio.Level, timeout time.Duration) (time.Time, bool) {
	if u.relay == nil {
		return time.Time{}, false
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case c := <-u.relay.ch:
			if c.level == want {
				return c.at, true
			}
		case <-t.C:
			return time.Time{}, false
		}
	}
}

// series collects the samples of one figure.
type series struct {
	s    []time.Duration
	lost int
}

func (s *series) note(t0, at time.Time, ok bool) {
	if !ok {
		s.lost++
		return
	}
	s.s = append(s.s, at.Sub(t0))
}

func (s *series) dist() dist { return summarise(s.s, s.lost) }

// step is one alternation of the benchmark loops: open then stop, so the
// motor_open relay changes on every command. A stop is matched by the gate
// coming to rest, not by state stopped: the gated binary's simulated gate
// starts closed and is still on its closed limit after a short opening, so
// stop leaves it closed.
func step(i int) (cmd gate.Command, match func([]byte) bool, level gpio.Level) {
	if i%2 == 0 {
		return gate.CmdOpen, stateIs(gate.Opening), gpio.High
	}
	return gate.CmdStop, atRest, gpio.Low
}

func atRest(b []byte) bool { st, ok := statusIn(b); return ok && !st.Moving }

const (
	sampleTimeout = 5 * time.Second
	maxLost       = 10 // samples lost before a loop gives up
)

// sample is when one outcome of a command came, if it came (ok).
type sample struct {
	at time.Time
	ok bool
}

// rounds runs warm+n rounds of a benchmark loop. round(i) makes the i-th
// command (or edge), waits for its outcomes and returns when it started
// and one sample an outcome; after the warm-up the samples go to series,
// in order. The loop gives up once giveUp has lost more than maxLost
// samples: the gate is not where the loop thinks, so it says so rather
// than wait on.
func rounds(warm, n int, series []*series, giveUp *series, round func(i int) (time.Time, []sample, error)) error {
	for i := range warm + n {
		t0, samples, err := round(i)
		if err != nil {
			return err
		}
		if i < warm {
			continue
		}
		for j, smp := range samples {
			series[j].note(t0, smp.at, smp.ok)
		}
		if giveUp != nil && giveUp.lost > maxLost {
			break
		}
	}
	return nil
}

// mqttCommands sends open and stop alternately on <prefix>/command and times
// the relay, the status on MQTT and D-Bus, and the result.
func (r *users) mqttCommands(warm, n int) (relay, status, result, signal dist) {
	var sr, ss, sres, ssig series
	rounds(warm, n, []*series{&sr, &ss, &sres, &ssig}, &ss, func(i int) (time.Time, []sample, error) {
		cmd, match, level := step(i)
		r.drain()
		t0 := time.Now()
		tok := r.cmd.Publish(r.prefix+"/command", 1, false, string(cmd))
		tr, okr := r.waitRelay(level, sampleTimeout)
		ts, oks := waitFor(r.status, sampleTimeout, match)
		tres, okres := waitFor(r.results, sampleTimeout, func([]byte) bool { return true })
		tsig, oksig := waitFor(r.signals, sampleTimeout, match)
		wait(tok)
		return t0, []sample{{tr, okr}, {ts, oks}, {tres, okres}, {tsig, oksig}}, nil
	})
	return sr.dist(), ss.dist(), sres.dist(), ssig.dist()
}

// dbusCommands calls Open and Stop alternately and times the method reply,
// the relay, and StatusChanged.
func (r *users) dbusCommands(warm, n int) (reply, relay, signal, status dist, err error) {
	var sreply, sr, ssig, ss series
	err = rounds(warm, n, []*series{&sreply, &sr, &ssig, &ss}, &ssig, func(i int) (time.Time, []sample, error) {
		cmd, match, level := step(i)
		method := dbusapi.Iface + ".Open"
		if cmd == gate.CmdStop {
			method = dbusapi.Iface + ".Stop"
		}
		r.drain()
		t0 := time.Now()
		call := r.obj.Call(method, 0)
		trep := time.Now()
		if call.Err != nil {
			return t0, nil, fmt.Errorf("dbus %s: %w", method, call.Err)
		}
		tr, okr := r.waitRelay(level, sampleTimeout)
		tsig, oksig := waitFor(r.signals, sampleTimeout, match)
		ts, oks := waitFor(r.status, sampleTimeout, match)
		return t0, []sample{{at: trep, ok: true}, {tr, okr}, {tsig, oksig}, {ts, oks}}, nil
	})
	if err != nil {
		return dist{}, dist{}, dist{}, dist{}, err
	}
	return sreply.dist(), sr.dist(), ssig.dist(), ss.dist(), nil
}

// inputEdges makes the simulated photo eye's line change (obstruct, clear)
// and times the status on MQTT and D-Bus. The gate is stopped, so an
// obstruction changes only the obstructed flag.
func (r *rig) inputEdges(warm, n int) (onMQTT, onDBus dist, err error) {
	var sm, sd series
	err = rounds(warm, n, []*series{&sm, &sd}, nil, func(i int) (time.Time, []sample, error) {
		word, want := "obstruct", true
		if i%2 == 1 {
			word, want = "clear", false
		}
		r.drain()
		t0 := time.Now()
		if err := r.sim.Control(word); err != nil {
			return t0, nil, err
		}
		tm, okm := waitFor(r.status, sampleTimeout, obstructedIs(want))
		td, okd := waitFor(r.signals, sampleTimeout, obstructedIs(want))
		return t0, []sample{{tm, okm}, {td, okd}}, nil
	})
	if err != nil {
		return dist{}, dist{}, err
	}
	return sm.dist(), sd.dist(), nil
}
