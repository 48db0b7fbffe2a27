package sim_test

// End-to-end tests: the real gate.Gate (its owner goroutine, watchers,
// debouncing and outputs) drives the simulated gate, in simulated time. Each
// test runs in a synctest bubble: it advances the fake clock in steps, and
// after each synctest.Wait returns once every goroutine (the simulator's
// timer, the input watchers, the gate's owner) has done what the step
// brought. Nothing waits for wall-clock time.

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"testing/synctest"
	"time"

	"github.com/jonboulle/clockwork"

	"rocksaying.tw/gated/internal/gate"
	"rocksaying.tw/gated/internal/sim"
	"rocksaying.tw/gated/internal/syncbuf"
)

const (
	simTravel     = 2 * time.Second
	travelTimeout = 5 * time.Second
	reverseDelay  = 500 * time.Millisecond
	pulseWidth    = 500 * time.Millisecond
	debounce      = 30 * time.Millisecond
	step          = 10 * time.Millisecond
	edgeWait      = time.Second
	// seen is how late the gate sees a switch the leaf crosses: at the end
	// of the test's clock step, then its debounce time. Every other time
	// (pulses, reverse delay, timeouts) is a whole number of steps, so
	// happens exactly.
	seen = step + debounce
)

func gateConfig(mode gate.OutputMode) gate.Config {
	return gate.Config{
		Name: "e2e",
		Params: gate.Params{
			TravelTimeout:     travelTimeout,
			ReverseDelay:      reverseDelay,
			AlarmOnForcedOpen: true,
		},
		InputsActiveLow:           true,
		ObstructionNormallyClosed: true,
		OutputMode:                mode,
		PulseWidth:                pulseWidth,
		Debounce:                  debounce,
	}
}

// simConfig is the simulated gate wired as gcfg says.
func simConfig(gcfg gate.Config, start float64) sim.Config {
	return sim.Config{
		TravelTime:                simTravel,
		Pulse:                     gcfg.OutputMode == gate.Pulse,
		InputsActiveLow:           gcfg.InputsActiveLow,
		OutputsActiveLow:          gcfg.OutputsActiveLow,
		ObstructionNormallyClosed: gcfg.ObstructionNormallyClosed,
		HasObstruction:            true,
		HasStop:                   gcfg.OutputMode == gate.Pulse,
		HasSiren:                  true,
		Start:                     start,
	}
}

// rig is a gate.Gate running against a simulated gate on one fake clock.
type rig struct {
	t      *testing.T
	clk    *clockwork.FakeClock
	sim    *sim.Gate
	g      *gate.Gate
	sub    <-chan gate.Status
	cancel context.CancelFunc
	done   chan error
	ended  bool

	last   sim.Snapshot
	motors []motorChange // the motor changes seen, in order
}

type motorChange struct {
	dir gate.Dir
	at  time.Time
}

func (c motorChange) String() string { return fmt.Sprintf("%v@%v", c.dir, c.at.Sub(epoch)) }

func start(t *testing.T, gcfg gate.Config, scfg sim.Config) *rig {
	t.Helper()
	logs := &syncbuf.Buffer{}
	// Wall-clock times would only mislead: the test runs in simulated time.
	noTime := func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug, ReplaceAttr: noTime}))
	clk := clockwork.NewFakeClockAt(epoch)
	scfg.Log = log.With("part", "sim")
	s := sim.New(scfg, clk)
	g, err := gate.New(gcfg, s.Pins(), gate.Options{Clock: clk, Log: log.With("part", "gate"), EdgeWait: edgeWait})
	if err != nil {
		t.Fatalf("gate.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	sub, unsub := g.Subscribe()
	r := &rig{t: t, clk: clk, sim: s, g: g, sub: sub, cancel: cancel, done: make(chan error, 1), last: s.Snapshot()}
	go func() { r.done <- g.Run(ctx) }()
	t.Cleanup(func() {
		if !r.ended {
			r.stop()
		}
		unsub()
		if t.Failed() {
			t.Logf("motor changes: %v\nlogs:\n%s", r.motors, logs)
		}
	})
	synctest.Wait()
	if st := g.Status(); st.Seq == 0 {
		t.Fatalf("no status at start-up: %s", st.JSON())
	}
	return r
}

// stop ends Run and checks invariant 6: every output is off afterwards.
func (r *rig) stop() {
	r.t.Helper()
	r.ended = true
	r.cancel()
	if err := <-r.done; err != nil {
		r.t.Errorf("Run: %v", err)
	}
	sn := r.sim.Snapshot()
	if sn.MotorOpen || sn.MotorClose || sn.MotorStop || sn.Siren {
		r.t.Errorf("after Run returned: got motor_open %v motor_close %v motor_stop %v siren %v, want every output off (invariant 6)", sn.MotorOpen, sn.MotorClose, sn.MotorStop, sn.Siren)
	}
	if sn.Shorts != 0 {
		r.t.Errorf("shorts: got %d, want 0 (invariant 1)", sn.Shorts)
	}
	// Let the input watchers see their context has ended.
	r.clk.Advance(edgeWait)
	synctest.Wait()
}

// observe records what the simulator did since the last look.
func (r *rig) observe(sn sim.Snapshot) {
	if sn.Motor != r.last.Motor {
		r.motors = append(r.motors, motorChange{sn.Motor, sn.MotorSince})
	}
	if sn.Shorts != r.last.Shorts {
		r.t.Errorf("at %v: both motor outputs energised (invariant 1): shorts %d", sn.At.Sub(epoch), sn.Shorts)
	}
	r.last = sn
}

// until advances simulated time in steps until cond holds, failing the test
// if it does not within `within` of simulated time.
func (r *rig) until(what string, within time.Duration, cond func(gate.Status, sim.Snapshot) bool) (gate.Status, sim.Snapshot) {
	r.t.Helper()
	from := r.clk.Now()
	for {
		st, sn := r.g.Status(), r.sim.Snapshot()
		r.observe(sn)
		if cond(st, sn) {
			return st, sn
		}
		if r.clk.Since(from) >= within {
			r.t.Fatalf("%s: not within %v of simulated time: status %s, sim %+v", what, within, st.JSON(), sn)
		}
		r.tick()
	}
}

// run lets d of simulated time pass.
func (r *rig) run(d time.Duration) (gate.Status, sim.Snapshot) {
	r.t.Helper()
	end := r.clk.Now().Add(d)
	for r.clk.Now().Before(end) {
		r.tick()
		r.observe(r.sim.Snapshot())
	}
	return r.g.Status(), r.sim.Snapshot()
}

// tick advances the clock one step and waits until the goroutines it woke
// (the simulator's timer, the input watchers, the gate's owner) are done.
func (r *rig) tick() {
	r.clk.Advance(step)
	synctest.Wait()
	for len(r.sub) > 0 {
		<-r.sub
	}
}

func (r *rig) do(cmd gate.Command) (gate.Status, error) {
	r.t.Helper()
	st, err := r.g.Do(context.Background(), cmd, gate.CauseMQTT)
	synctest.Wait() // what the command did to the simulator, seen by the gate
	return st, err
}

// must runs a command that must be accepted, and checks the state it leads to.
func (r *rig) must(cmd gate.Command, want gate.State) gate.Status {
	r.t.Helper()
	st, err := r.do(cmd)
	if err != nil {
		r.t.Fatalf("%s: %v", cmd, err)
	}
	if st.State != want {
		r.t.Fatalf("%s: got state %s, want %s", cmd, st.State, want)
	}
	return st
}

// control acts on the simulated gate and lets the gate see it at once.
func (r *rig) control(c string) {
	r.t.Helper()
	if err := r.sim.Control(c); err != nil {
		r.t.Fatal(err)
	}
	synctest.Wait()
}

func state(s gate.State) func(gate.Status, sim.Snapshot) bool {
	return func(st gate.Status, _ sim.Snapshot) bool { return st.State == s }
}

func position(pred func(float64) bool) func(gate.Status, sim.Snapshot) bool {
	return func(_ gate.Status, sn sim.Snapshot) bool { return pred(sn.Position) }
}
