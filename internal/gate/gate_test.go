package gate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
)

// guard bounds every real-time wait for an outcome of the owner goroutine.
const guard = 10 * time.Second

// armClock is a FakeClock that tells the test when the owner has armed its
// timer, and for when: advancing before that would make the owner measure
// its wait from the advanced time.
type armClock struct {
	*clockwork.FakeClock
	mu    sync.Mutex
	armed bool
	at    time.Time
}

type armTimer struct {
	clockwork.Timer
	c *armClock
}

func (c *armClock) NewTimer(d time.Duration) clockwork.Timer {
	return &armTimer{Timer: c.FakeClock.NewTimer(d), c: c}
}

func (t *armTimer) Reset(d time.Duration) bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	t.c.armed, t.c.at = true, t.c.Now().Add(d)
	return t.Timer.Reset(d)
}

func (t *armTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	t.c.armed = false
	return t.Timer.Stop()
}

func (c *armClock) state() (bool, time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.armed, c.at
}

// recorder sees every Out of the output pins, in the order the owner makes
// them, and notes any moment at which two motor contacts are on together.
type recorder struct {
	mu        sync.Mutex
	activeLow bool
	on        map[string]bool
	overlaps  []string
}

// outPin is an output pin that records its levels and fails on demand.
type outPin struct {
	*gpiotest.Pin
	rec   *recorder
	motor bool // a motor contact: at most one may be on
	fail  atomic.Bool
}

func (p *outPin) Out(l gpio.Level) error {
	if p.fail.Load() {
		return errors.New("gpiotest: relay driver not answering")
	}
	p.rec.mu.Lock()
	defer p.rec.mu.Unlock()
	on := bool(l) != p.rec.activeLow
	p.rec.on[p.N] = on
	if p.motor && on {
		for n, o := range p.rec.on {
			if o && n != p.N && n != "siren" {
				p.rec.overlaps = append(p.rec.overlaps, fmt.Sprintf("%s on while %s on", p.N, n))
			}
		}
	}
	return p.Pin.Out(l)
}

// inPin is an input line held by its switch: unlike gpiotest.Pin, In does
// not let the pull change the level.
type inPin struct{ *gpiotest.Pin }

func (p *inPin) In(pull gpio.Pull, e gpio.Edge) error {
	l := p.Read()
	err := p.Pin.In(pull, e)
	p.Pin.Out(l)
	return err
}

// rig is a Gate on fake pins and a fake clock, running in a goroutine.
type rig struct {
	t   *testing.T
	cfg Config
	clk *armClock
	rec *recorder

	openLimit, closedLimit, obstruction *inPin
	motorOpen, motorClose, motorStop    *outPin
	siren                               *outPin

	g      *Gate
	sub    <-chan Status
	last   Status // the latest status seen on sub
	cancel context.CancelFunc
	done   chan error
	beats  atomic.Int64
	block  chan struct{} // if set, the first heartbeat waits for it
}

// wiring says how the inputs start, in logical terms.
type wiring struct {
	open, closed, obstructed bool
	noObstruction            bool // no sensor
}

func testConfig() Config {
	return Config{
		Name:                      "front",
		Params:                    testParams,
		InputsActiveLow:           true,
		ObstructionNormallyClosed: true,
		OutputMode:                Hold,
		PulseWidth:                500 * ms,
		Debounce:                  30 * ms,
	}
}

func newRig(t *testing.T, cfg Config, w wiring, opt Options) *rig {
	t.Helper()
	clk := &armClock{FakeClock: clockwork.NewFakeClockAt(t0)}
	r := &rig{t: t, cfg: cfg, clk: clk, rec: &recorder{activeLow: cfg.OutputsActiveLow, on: map[string]bool{}}}
	mkIn := func(name string, active bool) *inPin {
		p := &inPin{&gpiotest.Pin{N: name, Clock: clk.FakeClock, EdgesChan: make(chan gpio.Level, 16)}}
		p.L = r.inLevel(active)
		return p
	}
	mkOut := func(name string, motor bool) *outPin {
		// Outputs start "on", so the test sees Run switch them off.
		return &outPin{Pin: &gpiotest.Pin{N: name, L: gpio.Level(!cfg.OutputsActiveLow)}, rec: r.rec, motor: motor}
	}
	r.openLimit = mkIn("open_limit", w.open)
	r.closedLimit = mkIn("closed_limit", w.closed)
	if !w.noObstruction {
		r.obstruction = mkIn("obstruction", w.obstructed != cfg.ObstructionNormallyClosed)
	}
	r.motorOpen, r.motorClose, r.motorStop = mkOut("motor_open", true), mkOut("motor_close", true), mkOut("motor_stop", true)
	r.siren = mkOut("siren", false)
	pins := Pins{OpenLimit: r.openLimit, ClosedLimit: r.closedLimit, MotorOpen: r.motorOpen, MotorClose: r.motorClose, Siren: r.siren}
	if r.obstruction != nil {
		pins.Obstruction = r.obstruction
	}
	if cfg.OutputMode == Pulse {
		pins.MotorStop = r.motorStop
	}
	opt.Clock = clk
	if opt.Log == nil {
		opt.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opt.Heartbeat == nil {
		opt.Heartbeat = func() {
			if r.beats.Add(1) == 1 && r.block != nil {
				<-r.block
			}
		}
		opt.HeartbeatEvery = time.Hour
	}
	g, err := New(cfg, pins, opt)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	r.g = g
	return r
}

// run starts the owner and waits for its first status.
func (r *rig) run() {
	r.t.Helper()
	sub, unsub := r.g.Subscribe()
	r.sub = sub
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan error, 1)
	go func() { r.done <- r.g.Run(ctx) }()
	r.t.Cleanup(func() {
		unsub()
		r.stop()
		r.rec.mu.Lock()
		defer r.rec.mu.Unlock()
		if len(r.rec.overlaps) > 0 {
			r.t.Errorf("motor contacts overlapped (invariant 1): %v", r.rec.overlaps)
		}
	})
	r.waitStatus("the first status", func(s Status) bool { return s.Seq >= 1 })
}

// stop cancels Run and waits for it to return.
func (r *rig) stop() error {
	r.t.Helper()
	r.cancel()
	if r.block != nil {
		select {
		case <-r.block:
		default:
			close(r.block)
		}
	}
	select {
	case err := <-r.done:
		r.done <- err // for a second stop
		return err
	case <-time.After(guard):
		r.t.Fatalf("Run did not return within %v of its context ending", guard)
		return nil
	}
}

func (r *rig) inLevel(active bool) gpio.Level { return gpio.Level(active != r.cfg.InputsActiveLow) }
func (r *rig) outLevel(on bool) gpio.Level    { return gpio.Level(on != r.cfg.OutputsActiveLow) }

// waitStatus reads statuses until one satisfies ok.
func (r *rig) waitStatus(what string, ok func(Status) bool) Status {
	r.t.Helper()
	timeout := time.After(guard)
	for {
		if r.last.Seq > 0 && ok(r.last) {
			return r.last
		}
		select {
		case s := <-r.sub:
			if s.Seq <= r.last.Seq && r.last.Seq > 0 {
				r.t.Fatalf("seq went from %d to %d", r.last.Seq, s.Seq)
			}
			r.last = s
		case <-timeout:
			r.t.Fatalf("waiting for %s: none within %v; last status %s", what, guard, r.last.JSON())
		}
	}
}

func (r *rig) waitState(s State) Status {
	r.t.Helper()
	return r.waitStatus("state "+string(s), func(st Status) bool { return st.State == s })
}

// waitArmed waits until the owner's timer is armed for at (or, with a zero
// at, until it is disarmed).
func (r *rig) waitArmed(at time.Time) {
	r.t.Helper()
	deadline := time.Now().Add(guard)
	for {
		armed, when := r.clk.state()
		if (at.IsZero() && !armed) || (!at.IsZero() && armed && when.Equal(at)) {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("owner timer: armed=%v for %v, want armed for %v (zero: disarmed)", armed, when.Sub(t0), at.Sub(t0))
		}
		time.Sleep(100 * time.Microsecond) // polling an outcome, not waiting for a timer
	}
}

// advanceTo advances the fake clock once the owner has armed its timer for
// at.
func (r *rig) advanceTo(at time.Time) {
	r.t.Helper()
	r.waitArmed(at)
	r.clk.Advance(at.Sub(r.clk.Now()))
}

// waitPin waits until an output pin shows level l.
func (r *rig) waitPin(p *outPin, on bool) {
	r.t.Helper()
	deadline := time.Now().Add(guard)
	for p.Read() != r.outLevel(on) {
		if time.Now().After(deadline) {
			r.t.Fatalf("pin %s: got %v, want on=%v", p.N, p.Read(), on)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

func (r *rig) checkPins(what string, open, close, siren bool) {
	r.t.Helper()
	for _, c := range []struct {
		p  *outPin
		on bool
	}{{r.motorOpen, open}, {r.motorClose, close}, {r.siren, siren}} {
		if got := c.p.Read(); got != r.outLevel(c.on) {
			r.t.Errorf("%s: pin %s = %v, want %v (on=%v)", what, c.p.N, got, r.outLevel(c.on), c.on)
		}
	}
}

// edge makes an input line go active or inactive, as a switch would.
func (r *rig) edge(p *inPin, active bool) { p.EdgesChan <- r.inLevel(active) }

// input changes an input and lets it settle through the debounce time.
func (r *rig) input(p *inPin, active bool) {
	r.t.Helper()
	now := r.clk.Now()
	r.edge(p, active)
	r.advanceTo(now.Add(r.cfg.Debounce))
}

// obstruct sets the beam's state on the obstruction line.
func (r *rig) obstruct(obstructed bool) {
	r.input(r.obstruction, obstructed != r.cfg.ObstructionNormallyClosed)
}

func (r *rig) do(c Command) (Status, error) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	return r.g.Do(ctx, c, CauseMQTT)
}

func (r *rig) mustDo(c Command) Status {
	r.t.Helper()
	st, err := r.do(c)
	if err != nil {
		r.t.Fatalf("Do(%s): %v", c, err)
	}
	return st
}

func reasonOf(err error) Reason {
	var re *RefusedError
	if errors.As(err, &re) {
		return re.Reason
	}
	return ""
}

func TestGateHoldCycle(t *testing.T) {
	r := newRig(t, testConfig(), wiring{closed: true}, Options{})
	r.checkPins("before Run", true, true, true) // newRig starts them on
	r.run()
	st := r.waitState(Closed)
	if st.Gate != "front" || st.Cause != CauseStartup || !st.Since.Equal(t0) {
		t.Errorf("first status %s: want gate front, cause startup, since t0", st.JSON())
	}
	r.checkPins("closed", false, false, false)

	st = r.mustDo(CmdOpen)
	if st.State != Opening || !st.Moving || st.Cause != CauseMQTT {
		t.Errorf("Do(open) returned %s, want opening, moving, cause mqtt", st.JSON())
	}
	r.checkPins("opening", true, false, false)
	start := r.clk.Now()
	r.input(r.closedLimit, false)
	r.waitArmed(start.Add(30 * time.Second)) // idle again, travel_timeout armed
	r.clk.Advance(5 * time.Second)
	r.input(r.openLimit, true)
	st = r.waitState(Open)
	if st.Cause != CauseInput || st.Alarm {
		t.Errorf("at the open limit: %s, want cause input, no alarm", st.JSON())
	}
	r.checkPins("open", false, false, false)
	r.waitArmed(time.Time{})
	r.clk.Advance(time.Second) // past the reverse delay

	r.mustDo(CmdClose)
	r.checkPins("closing", false, true, false)
	r.input(r.openLimit, false)
	r.obstruct(true) // re-opens after the reverse delay
	r.waitState(Opening)
	r.checkPins("reverse delay", false, false, false)
	r.advanceTo(r.clk.Now().Add(r.cfg.Params.ReverseDelay))
	r.waitPin(r.motorOpen, true)
	r.checkPins("re-opening", true, false, false)
	if _, err := r.do(CmdClose); reasonOf(err) != ReasonObstructed {
		t.Errorf("Do(close) while obstructed: got %v, want reason obstructed", err)
	}
	r.checkPins("after the refused close", true, false, false)
}

func TestGateTravelTimeout(t *testing.T) {
	r := newRig(t, testConfig(), wiring{closed: true}, Options{})
	r.run()
	start := r.clk.Now()
	r.mustDo(CmdOpen)
	r.input(r.closedLimit, false)
	r.advanceTo(start.Add(30 * time.Second))
	st := r.waitState(Faulted)
	if st.Fault != FaultTravel || !st.Alarm || st.Cause != CauseTimeout {
		t.Errorf("after travel_timeout: %s, want fault travel_timeout, alarm, cause timeout", st.JSON())
	}
	r.checkPins("travel timeout", false, false, true)
}

func TestGateDebounce(t *testing.T) {
	t.Run("edges within the debounce time make one change", func(t *testing.T) {
		r := newRig(t, testConfig(), wiring{closed: true}, Options{})
		r.run()
		seq := r.waitState(Closed).Seq
		t1 := r.clk.Now()
		r.edge(r.closedLimit, false)
		r.waitArmed(t1.Add(30 * ms))
		r.clk.Advance(10 * ms)
		r.edge(r.closedLimit, true) // back to stable: nothing pending
		r.waitArmed(time.Time{})
		r.clk.Advance(10 * ms)
		r.edge(r.closedLimit, false)
		r.waitArmed(t1.Add(50 * ms))
		r.edge(r.closedLimit, true)
		r.waitArmed(time.Time{})
		r.edge(r.closedLimit, false)
		// Settles 30ms after the last transition to released.
		r.waitArmed(t1.Add(50 * ms))
		r.clk.Advance(30*ms - 1)
		r.waitArmed(t1.Add(50 * ms))
		if got := r.g.Status(); got.Seq != seq || got.State != Closed {
			t.Fatalf("before the debounce time: %s, want still closed, seq %d", got.JSON(), seq)
		}
		r.clk.Advance(1)
		st := r.waitState(Stopped) // forced open
		if st.Seq != seq+1 {
			t.Errorf("bounces made seq %d -> %d, want one status", seq, st.Seq)
		}
		if !st.Since.Equal(t1.Add(50 * ms)) {
			t.Errorf("since %v, want %v (the fake clock)", st.Since.Sub(t0), 50*ms)
		}
	})
	t.Run("a bounce back to the stable level makes none", func(t *testing.T) {
		r := newRig(t, testConfig(), wiring{open: true}, Options{})
		r.run()
		seq := r.waitState(Open).Seq
		for i := 0; i < 5; i++ {
			t1 := r.clk.Now()
			r.edge(r.openLimit, false)
			r.waitArmed(t1.Add(30 * ms))
			r.clk.Advance(29 * ms)
			r.edge(r.openLimit, true)
			r.waitArmed(time.Time{})
			r.clk.Advance(time.Second)
		}
		if got := r.g.Status(); got.Seq != seq || got.State != Open {
			t.Errorf("after bounces: %s, want still open, seq %d", got.JSON(), seq)
		}
	})
}

func TestGateOutputFailure(t *testing.T) {
	t.Run("fails when switched on", func(t *testing.T) {
		r := newRig(t, testConfig(), wiring{closed: true}, Options{})
		r.run()
		r.motorOpen.fail.Store(true)
		st, err := r.do(CmdOpen)
		var re *RefusedError
		if !errors.As(err, &re) || re.Reason != ReasonFault {
			t.Fatalf("Do(open) with a failing relay: err %v, want a refusal with reason fault", err)
		}
		if st.State != Faulted || st.Fault != FaultGPIO || !st.Alarm || st.Moving {
			t.Errorf("Do(open) with a failing relay: %s, want fault gpio, alarm, not moving", st.JSON())
		}
		r.checkPins("gpio fault", false, false, true)
	})
	t.Run("fails when switched off", func(t *testing.T) {
		r := newRig(t, testConfig(), wiring{closed: true}, Options{})
		r.run()
		r.mustDo(CmdOpen)
		r.motorOpen.fail.Store(true)
		st, err := r.do(CmdStop)
		if err == nil {
			t.Errorf("Do(stop) with a stuck relay: no error, want one")
		}
		if st.State != Faulted || st.Fault != FaultGPIO || !st.Alarm {
			t.Errorf("Do(stop) with a stuck relay: %s, want fault gpio, alarm", st.JSON())
		}
		// Still failing: other events retry the relay but neither restart
		// the fault nor its alarm.
		r.clk.Advance(time.Second) // before any deadline of the owner
		r.obstruct(true)
		again := r.waitStatus("obstructed", func(s Status) bool { return s.Obstructed })
		if again.State != Faulted || !again.Since.Equal(st.Since) {
			t.Errorf("an event with the relay still stuck: %s, want the fault of %s unchanged", again.JSON(), st.JSON())
		}
		// motor_open is stuck on; every other output is as the fault wants.
		r.checkPins("gpio fault", true, false, true)
	})
	t.Run("pulse contact fails on release", func(t *testing.T) {
		cfg := testConfig()
		cfg.OutputMode = Pulse
		r := newRig(t, cfg, wiring{closed: true}, Options{})
		r.run()
		start := r.clk.Now()
		r.mustDo(CmdOpen)
		r.motorOpen.fail.Store(true)
		r.advanceTo(start.Add(cfg.PulseWidth))
		st := r.waitState(Faulted)
		if st.Fault != FaultGPIO || !st.Alarm {
			t.Errorf("pulse that cannot be released: %s, want fault gpio, alarm", st.JSON())
		}
		// The fault pulses stop while the failed open contact may still be
		// held: the best the gate can do (operators give stop priority), so
		// that overlap is expected here.
		r.waitPin(r.motorStop, true)
		r.rec.mu.Lock()
		if want := []string{"motor_stop on while motor_open on"}; !slices.Equal(r.rec.overlaps, want) {
			t.Errorf("contacts: %v, want %v", r.rec.overlaps, want)
		}
		r.rec.overlaps = nil
		r.rec.mu.Unlock()
	})
}

func TestGatePolarity(t *testing.T) {
	for _, c := range []struct{ inLow, outLow bool }{{true, false}, {true, true}, {false, false}, {false, true}} {
		t.Run(fmt.Sprintf("inputs_active_low=%v,outputs_active_low=%v", c.inLow, c.outLow), func(t *testing.T) {
			cfg := testConfig()
			cfg.InputsActiveLow, cfg.OutputsActiveLow = c.inLow, c.outLow
			r := newRig(t, cfg, wiring{closed: true}, Options{})
			if got, want := r.closedLimit.Read(), gpio.Level(!c.inLow); got != want {
				t.Fatalf("rig: closed_limit line %v, want %v", got, want)
			}
			r.run()
			st := r.waitState(Closed)
			if st.Obstructed {
				t.Errorf("clear beam reads obstructed: %s", st.JSON())
			}
			r.checkPins("closed", false, false, false)
			r.mustDo(CmdOpen)
			if got, want := r.motorOpen.Read(), gpio.Level(!c.outLow); got != want {
				t.Errorf("motor_open line while opening: %v, want %v", got, want)
			}
			r.checkPins("opening", true, false, false)
			r.mustDo(CmdAlarm)
			r.checkPins("alarm", true, false, true)
		})
	}
}

func TestGateObstructionSensor(t *testing.T) {
	for _, c := range []struct {
		name           string
		normallyClosed bool
		lineActive     bool
		wantObstructed bool
	}{
		{"normally closed, beam clear", true, true, false},
		{"normally closed, cut wire", true, false, true},
		{"normally open, beam clear", false, false, false},
		{"normally open, beam broken", false, true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.ObstructionNormallyClosed = c.normallyClosed
			r := newRig(t, cfg, wiring{open: true}, Options{})
			r.obstruction.L = r.inLevel(c.lineActive)
			r.run()
			st := r.waitState(Open)
			if st.Obstructed != c.wantObstructed {
				t.Fatalf("line active=%v: obstructed %v, want %v", c.lineActive, st.Obstructed, c.wantObstructed)
			}
			_, err := r.do(CmdClose)
			if c.wantObstructed && reasonOf(err) != ReasonObstructed {
				t.Errorf("Do(close): got %v, want reason obstructed", err)
			}
			if !c.wantObstructed && err != nil {
				t.Errorf("Do(close): %v", err)
			}
		})
	}
	t.Run("a cut wire while closing re-opens", func(t *testing.T) {
		r := newRig(t, testConfig(), wiring{open: true}, Options{})
		r.run()
		r.mustDo(CmdClose)
		r.input(r.obstruction, false) // NC line drops: wire cut
		st := r.waitState(Opening)
		if !st.Obstructed {
			t.Errorf("cut wire: %s, want obstructed", st.JSON())
		}
	})
	t.Run("no sensor", func(t *testing.T) {
		r := newRig(t, testConfig(), wiring{open: true, noObstruction: true}, Options{})
		r.run()
		if st := r.waitState(Open); st.Obstructed {
			t.Errorf("no sensor reads obstructed")
		}
		r.mustDo(CmdClose)
	})
}

func TestGateAutoCloseNeedsSensor(t *testing.T) {
	cfg := testConfig()
	cfg.Params.AutoClose = time.Minute
	p := func(n string) *gpiotest.Pin { return &gpiotest.Pin{N: n, EdgesChan: make(chan gpio.Level, 1)} }
	_, err := New(cfg, Pins{OpenLimit: p("o"), ClosedLimit: p("c"), MotorOpen: p("mo"), MotorClose: p("mc")}, Options{})
	if err == nil {
		t.Fatal("New with auto_close and no obstruction sensor: got nil error")
	}
}

func TestGatePulse(t *testing.T) {
	cfg := testConfig()
	cfg.OutputMode = Pulse
	cfg.Params.ReverseDelay = 300 * ms // shorter than a pulse: the close cuts the stop pulse short
	r := newRig(t, cfg, wiring{}, Options{})
	r.run()
	r.checkPins("idle", false, false, false)
	if r.motorStop.Read() != r.outLevel(false) {
		t.Errorf("motor_stop on at start")
	}

	start := r.clk.Now()
	r.mustDo(CmdOpen)
	r.checkPins("open pulse", true, false, false)
	r.waitArmed(start.Add(cfg.PulseWidth))
	r.clk.Advance(cfg.PulseWidth - 1)
	r.waitArmed(start.Add(cfg.PulseWidth))
	r.checkPins("open pulse, 1ns before its end", true, false, false)
	r.clk.Advance(1)
	r.waitPin(r.motorOpen, false)

	r.clk.Advance(2 * time.Second)
	t2 := r.clk.Now()
	r.mustDo(CmdClose) // reversal: a stop pulse, then a close pulse
	if r.motorStop.Read() != r.outLevel(true) {
		t.Errorf("no stop pulse at the reversal")
	}
	r.advanceTo(t2.Add(300 * ms))
	r.waitPin(r.motorClose, true)
	if r.motorStop.Read() != r.outLevel(false) {
		t.Errorf("stop contact still on with close contact on")
	}
	r.advanceTo(t2.Add(800 * ms))
	r.waitPin(r.motorClose, false)

	t3 := r.clk.Now()
	r.mustDo(CmdStop)
	r.waitPin(r.motorStop, true)
	r.advanceTo(t3.Add(cfg.PulseWidth))
	r.waitPin(r.motorStop, false)
}

func TestGateDo(t *testing.T) {
	t.Run("refusals are typed", func(t *testing.T) {
		r := newRig(t, testConfig(), wiring{open: true, closed: true}, Options{})
		if _, err := r.do(CmdOpen); reasonOf(err) != ReasonStopped {
			t.Errorf("Do before Run: got %v, want reason stopped", err)
		}
		r.run()
		r.waitState(Faulted)
		for _, c := range []struct {
			cmd  Command
			want Reason
		}{{CmdOpen, ReasonFault}, {CmdClose, ReasonFault}, {"jump", ReasonUnknown}, {CmdStop, ""}, {CmdAlarm, ""}} {
			_, err := r.do(c.cmd)
			if got := reasonOf(err); got != c.want || (c.want == "" && err != nil) {
				t.Errorf("Do(%q): got %v, want reason %q", c.cmd, err, c.want)
			}
		}
		if err := r.stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
		if _, err := r.do(CmdStop); reasonOf(err) != ReasonStopped {
			t.Errorf("Do after Run: got %v, want reason stopped", err)
		}
	})
	t.Run("busy when the owner does not answer", func(t *testing.T) {
		r := newRig(t, testConfig(), wiring{closed: true}, Options{})
		r.block = make(chan struct{}) // the owner hangs in its first heartbeat
		r.run()
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, err := r.g.Do(ctx, CmdOpen, CauseDBus)
		if reasonOf(err) != ReasonBusy {
			t.Fatalf("Do with a stuck owner: got %v, want reason busy", err)
		}
		// Documented: a command the owner had taken is still carried out.
		close(r.block)
		r.waitState(Opening)
	})
	t.Run("a caller never waits for a stopped owner", func(t *testing.T) {
		// The owner may stop between Do's check and its request; the
		// request must not be left unanswered (Do with no deadline).
		for i := 0; i < 20; i++ {
			r := newRig(t, testConfig(), wiring{closed: true}, Options{})
			r.block = make(chan struct{})
			r.run()
			res := make(chan error, 1)
			go func() {
				_, err := r.g.Do(context.Background(), CmdOpen, CauseDBus)
				res <- err
			}()
			// Let the request reach the owner's queue before it stops.
			deadline := time.Now().Add(guard)
			for len(r.g.reqs) == 0 && time.Now().Before(deadline) {
				time.Sleep(100 * time.Microsecond)
			}
			r.stop()
			select {
			case err := <-res:
				if err != nil && reasonOf(err) != ReasonStopped {
					t.Fatalf("Do while stopping: got %v, want nil or reason stopped", err)
				}
			case <-time.After(guard):
				t.Fatalf("run %d: Do did not return after Run stopped", i)
			}
		}
	})
	t.Run("Do right after the first status", func(t *testing.T) {
		for i := 0; i < 20; i++ {
			r := newRig(t, testConfig(), wiring{closed: true}, Options{})
			r.run() // returns on the first status
			if _, err := r.do(CmdOpen); err != nil {
				t.Fatalf("run %d: Do right after the first status: %v", i, err)
			}
		}
	})
}

// recv takes the value that Subscribe promises to have put in c already.
func recv(t *testing.T, c <-chan Status) Status {
	t.Helper()
	select {
	case s := <-c:
		return s
	default:
		t.Fatal("Subscribe: no current status on the new channel")
		return Status{}
	}
}

func TestGateSubscribe(t *testing.T) {
	r := newRig(t, testConfig(), wiring{closed: true}, Options{})
	c0, cancel0 := r.g.Subscribe()
	defer cancel0()
	if s := recv(t, c0); s.Seq != 0 || s.State != Unknown || s.Gate != "front" {
		t.Errorf("before Run, first value %s: want the current status (unknown, seq 0)", s.JSON())
	}
	r.run()
	r.waitState(Closed)

	c1, cancel1 := r.g.Subscribe()
	defer cancel1()
	if s := recv(t, c1); s != r.g.Status() {
		t.Errorf("first value %s, want the current status %s", s.JSON(), r.g.Status().JSON())
	}
	// c1 is never read from here: 100 statuses must not block the gate.
	for i := 0; i < 50; i++ {
		r.mustDo(CmdAlarm)
		r.mustDo(CmdSilence)
	}
	r.mustDo(CmdAlarm)
	want := r.g.Status()
	var got []Status
	for {
		select {
		case s := <-c1:
			got = append(got, s)
			continue
		default:
		}
		break
	}
	if len(got) == 0 || got[len(got)-1] != want {
		t.Fatalf("slow subscriber ends with %v, want the latest status %s", got, want.JSON())
	}
	if !slices.IsSortedFunc(got, func(a, b Status) int { return int(a.Seq) - int(b.Seq) }) {
		t.Errorf("slow subscriber: seq out of order")
	}
	for i := 1; i < len(got); i++ {
		if got[i].Seq <= got[i-1].Seq {
			t.Errorf("seq %d after %d", got[i].Seq, got[i-1].Seq)
		}
	}
	// A cancelled subscription gets nothing more, and cancel is idempotent.
	cancel1()
	cancel1()
	r.mustDo(CmdSilence)
	select {
	case s := <-c1:
		t.Errorf("after cancel: got %s", s.JSON())
	default:
	}
}

func TestGateAllOffOnExit(t *testing.T) {
	for _, mode := range []OutputMode{Hold, Pulse} {
		for _, low := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s,outputs_active_low=%v", mode, low), func(t *testing.T) {
				cfg := testConfig()
				cfg.OutputMode, cfg.OutputsActiveLow = mode, low
				cfg.Params.AlarmDuration = 0
				r := newRig(t, cfg, wiring{closed: true}, Options{})
				r.run()
				r.mustDo(CmdAlarm)
				r.mustDo(CmdOpen) // hold: motor on; pulse: contact held
				r.checkPins("running", true, false, true)
				if err := r.stop(); err != nil {
					t.Errorf("Run: %v", err)
				}
				r.checkPins("after Run", false, false, false)
				if mode == Pulse && r.motorStop.Read() != r.outLevel(false) {
					t.Errorf("motor_stop on after Run")
				}
			})
		}
	}
}

func TestGateHeartbeat(t *testing.T) {
	var beats atomic.Int64
	cfg := testConfig()
	r := newRig(t, cfg, wiring{closed: true}, Options{Heartbeat: func() { beats.Add(1) }, HeartbeatEvery: 10 * time.Second})
	r.run()
	deadline := time.Now().Add(guard)
	waitBeats := func(n int64) {
		t.Helper()
		for beats.Load() < n {
			if time.Now().After(deadline) {
				t.Fatalf("heartbeats: got %d, want %d", beats.Load(), n)
			}
			time.Sleep(100 * time.Microsecond)
		}
	}
	waitBeats(1) // at start
	for i := int64(2); i <= 4; i++ {
		r.clk.Advance(10 * time.Second)
		waitBeats(i)
	}
	if got := beats.Load(); got != 4 {
		t.Errorf("after 30s of fake time: %d heartbeats, want 4", got)
	}
}

func TestStatusJSON(t *testing.T) {
	taipei := time.FixedZone("CST", 8*3600)
	s := Status{Gate: "front", State: Opening, Moving: true, Cause: CauseMQTT,
		Since: time.Date(2026, 11, 22, 18, 15, 3, 512_999_999, taipei), Seq: 42}
	got := string(s.JSON())
	want := `{"gate":"front","state":"opening","moving":true,"alarm":false,"obstructed":false,"fault":"","cause":"mqtt","since":"2026-11-22T10:15:03.512Z","seq":42}`
	if got != want {
		t.Errorf("JSON:\n got %s\nwant %s", got, want)
	}
	b, err := json.Marshal(s)
	if err != nil || !bytes.Equal(b, []byte(want)) {
		t.Errorf("json.Marshal: %s, %v; want the same bytes as JSON", b, err)
	}
	var back Status
	if err := json.Unmarshal([]byte(want), &back); err != nil {
		t.Fatal(err)
	}
	if !back.Since.Equal(time.Date(2026, 11, 22, 10, 15, 3, 512e6, time.UTC)) || back.Seq != 42 || back.State != Opening {
		t.Errorf("round trip: %+v", back)
	}
	whole := Status{Since: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Fault: FaultTravel}
	var m map[string]any
	if err := json.Unmarshal(whole.JSON(), &m); err != nil {
		t.Fatal(err)
	}
	if m["since"] != "2026-01-02T03:04:05.000Z" || m["fault"] != "travel_timeout" {
		t.Errorf("since %v fault %v: want 2026-01-02T03:04:05.000Z, travel_timeout", m["since"], m["fault"])
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if want := []string{"alarm", "cause", "fault", "gate", "moving", "obstructed", "seq", "since", "state"}; !slices.Equal(keys, want) {
		t.Errorf("fields %v, want %v (SPEC.md)", keys, want)
	}
}

func TestGateReversalWithoutDelay(t *testing.T) {
	// reverse_delay 0: the machine goes from open to close in one step, and
	// the outputs must still switch one off before the other on.
	cfg := testConfig()
	cfg.Params.ReverseDelay = 0
	r := newRig(t, cfg, wiring{}, Options{})
	r.run()
	r.mustDo(CmdOpen)
	r.checkPins("opening", true, false, false)
	r.mustDo(CmdClose)
	r.checkPins("closing", false, true, false)
	r.mustDo(CmdOpen)
	r.checkPins("opening again", true, false, false)
	// The recorder (checked at cleanup) saw no moment with both on.
}
