package gate

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// world drives a Machine through random interleavings of commands, input
// edges and time, with a gate whose physics is loose enough to produce both
// realistic inputs (the gate reaches its limits at travel speed) and absurd
// ones (stuck switches, both limits, a gate pushed by hand, a jam), and
// checks the safety invariants after every step.
type world struct {
	t      testing.TB
	p      Params
	travel time.Duration // the simulated gate's end-to-end time
	pick   func(n int) int

	m   Machine
	now time.Time

	// physics
	pos         time.Duration // 0 closed .. travel open
	jammed      bool
	stuckOpen   bool // open-limit switch reads active whatever the gate does
	stuckClosed bool
	obstructed  bool

	// what the checks have seen of the outputs
	motor    Dir
	onAt     time.Time // when the running motion was (at the latest) energised
	lastOn   Dir       // last direction seen energised
	offAt    time.Time // when lastOn was seen switched off
	offExact bool      // offAt is the exact time (no jump hid it)

	stopped bool // a stop cancelled auto_close, and nothing re-armed it since

	trail []trailStep // the last steps, for failure messages (a ring)
	n     int
}

// trailStep is formatted only when a check fails: formatting every step
// would make the fuzzer crawl.
type trailStep struct {
	at     time.Duration
	ev     Event
	late   bool
	reason Reason
	after  Status
	motor  Dir
}

func (s trailStep) String() string {
	var d string
	switch s.ev.Kind {
	case EvCommand:
		d = "command " + string(s.ev.Cmd)
	case EvInputs:
		d = fmt.Sprintf("inputs %+v", s.ev.Inputs)
	case EvTick:
		d = "tick"
	case EvStart:
		d = fmt.Sprintf("start %+v", s.ev.Inputs)
	case EvOutputFailed:
		d = "output failed"
	}
	if s.late {
		d += " (late)"
	}
	if s.reason != "" {
		d += " refused: " + string(s.reason)
	}
	return fmt.Sprintf("%v: %s -> %s %s motor=%v alarm=%v", s.at, d, s.after.State, s.after.Fault, s.motor, s.after.Alarm)
}

func newWorld(t testing.TB, p Params, travel time.Duration, pick func(int) int) *world {
	return &world{t: t, p: p, travel: travel, pick: pick, m: NewMachine(p), now: t0}
}

func (w *world) fatalf(format string, args ...any) {
	w.t.Helper()
	var lines []string
	for i := max(0, w.n-len(w.trail)); i < w.n; i++ {
		lines = append(lines, w.trail[i%len(w.trail)].String())
	}
	w.t.Fatalf("at %v: %s\nlast steps:\n  %s", w.now.Sub(t0), fmt.Sprintf(format, args...), strings.Join(lines, "\n  "))
}

func (w *world) note(ev Event, late bool, reason Reason) {
	if w.trail == nil {
		w.trail = make([]trailStep, 30)
	}
	w.trail[w.n%len(w.trail)] = trailStep{w.now.Sub(t0), ev, late, reason, w.m.Status(), w.m.Outputs().Motor}
	w.n++
}

// physical returns the inputs the switches and sensor show now.
func (w *world) physical() Inputs {
	return Inputs{
		OpenLimit:   w.pos >= w.travel || w.stuckOpen,
		ClosedLimit: w.pos <= 0 || w.stuckClosed,
		Obstructed:  w.obstructed,
	}
}

// move runs the physics from now to at with the motor as it is now.
func (w *world) move(at time.Time) {
	dt := at.Sub(w.now)
	if w.jammed {
		dt = 0
	}
	switch w.m.Outputs().Motor {
	case DirOpen:
		w.pos = min(w.pos+dt, w.travel)
	case DirClose:
		w.pos = max(w.pos-dt, 0)
	}
	w.now = at
}

// limitHit returns when the moving gate next reaches a limit.
func (w *world) limitHit() (time.Time, bool) {
	if w.jammed {
		return time.Time{}, false
	}
	switch w.m.Outputs().Motor {
	case DirOpen:
		if w.pos < w.travel {
			return w.now.Add(w.travel - w.pos), true
		}
	case DirClose:
		if w.pos > 0 {
			return w.now.Add(w.pos), true
		}
	}
	return time.Time{}, false
}

// step applies one event at w.now and checks the invariants.
func (w *world) step(ev Event, jump bool) {
	w.t.Helper()
	ev.At = w.now
	prev := w.m
	next, err := w.m.Step(ev)
	w.m = next
	var re *RefusedError
	if err != nil {
		if ev.Kind != EvCommand || !errors.As(err, &re) {
			w.note(ev, jump, "")
			w.fatalf("%v: error %v, want only *RefusedError on commands", ev.Kind, err)
		}
	}
	if re != nil {
		w.note(ev, jump, re.Reason)
		// A refused command changes nothing beyond what time did.
		ticked, _ := prev.Step(Event{At: w.now, Kind: EvTick})
		if next != ticked {
			w.fatalf("refused %s changed the machine: got %+v %+v, want %+v %+v", ev.Cmd, next.Status(), next.Outputs(), ticked.Status(), ticked.Outputs())
		}
		switch re.Reason {
		case ReasonObstructed:
			if ev.Cmd != CmdClose || !prev.Inputs().Obstructed {
				w.fatalf("%s refused as obstructed, but not a close while obstructed", ev.Cmd)
			}
		case ReasonFault:
			if in := prev.Inputs(); !in.OpenLimit || !in.ClosedLimit {
				w.fatalf("%s refused as fault without a limit conflict", ev.Cmd)
			}
		case ReasonUnknown:
			for _, c := range Commands {
				if ev.Cmd == c {
					w.fatalf("%s refused as unknown", ev.Cmd)
				}
			}
		}
	} else {
		w.note(ev, jump, "")
		if ev.Kind == EvCommand && ev.Cmd == CmdClose && prev.Inputs().Obstructed {
			w.fatalf("close accepted while obstructed")
		}
	}
	w.check(prev, ev, err, jump)
}

func (w *world) check(prev Machine, ev Event, err error, jump bool) {
	w.t.Helper()
	m, at := w.m, w.now
	st, out, in := m.Status(), m.Outputs(), m.Inputs()

	if out.Siren != st.Alarm {
		w.fatalf("siren %v, alarm %v", out.Siren, st.Alarm)
	}
	// Invariant 4. (A relay that fails meanwhile may report gpio instead:
	// the document has room for one fault, and both keep the motor off.)
	if in.OpenLimit && in.ClosedLimit && (out.Motor != DirNone || st.Moving || st.State != Faulted || (st.Fault != FaultLimitConflict && st.Fault != FaultGPIO)) {
		w.fatalf("both limits active: state %s fault %q motor %v moving %v, want fault limit_conflict, motor off", st.State, st.Fault, out.Motor, st.Moving)
	}
	// Invariant 3: never closing into an obstruction, not even pending.
	if in.Obstructed && (out.Motor == DirClose || st.State == Closing) {
		w.fatalf("obstructed but state %s motor %v", st.State, out.Motor)
	}
	if (st.Fault != NoFault) != (st.State == Faulted) {
		w.fatalf("state %s with fault %q", st.State, st.Fault)
	}
	if st.Moving != (st.State == Opening || st.State == Closing) {
		w.fatalf("state %s but moving %v", st.State, st.Moving)
	}
	if (out.Motor == DirOpen && st.State != Opening) || (out.Motor == DirClose && st.State != Closing) {
		w.fatalf("motor %v in state %s", out.Motor, st.State)
	}
	if d, ok := m.Deadline(); ok && !d.After(at) {
		w.fatalf("deadline %v not after the step", d.Sub(t0))
	}
	// Invariant 8: fault is left only by open, close or stop, or by inputs
	// that make sense.
	if ps := prev.Status(); ps.State == Faulted && st.State != Faulted {
		okCmd := ev.Kind == EvCommand && err == nil && (ev.Cmd == CmdOpen || ev.Cmd == CmdClose || ev.Cmd == CmdStop)
		okIn := ev.Kind == EvInputs && in.OpenLimit != in.ClosedLimit
		if !okCmd && !okIn {
			w.fatalf("fault %s left to %s by %v", ps.Fault, st.State, ev.Kind)
		}
	}
	// Invariant 5.
	if ps, pin := prev.Status(), prev.Inputs(); w.p.AlarmOnForcedOpen && ev.Kind == EvInputs && ps.State == Closed &&
		pin.ClosedLimit && !in.ClosedLimit && !in.OpenLimit && !st.Alarm {
		w.fatalf("forced open from closed without alarm")
	}
	// auto_close is cancelled by stop until the gate is opened again.
	rearmed := (ev.Kind == EvCommand && err == nil && ev.Cmd == CmdOpen) || (in.OpenLimit && !prev.Inputs().OpenLimit)
	if w.stopped && !rearmed && st.Cause == CauseAutoClose && st.Since.Equal(at) {
		w.fatalf("auto_close after stop")
	}
	switch {
	case ev.Kind == EvCommand && err == nil && ev.Cmd == CmdStop && st.State == Open:
		w.stopped = true
	case rearmed || st.State != Open:
		w.stopped = false
	}
	// Invariant 2: travel_timeout (and its alarm).
	if ev.Kind != EvStart && prev.Outputs().Motor != DirNone && out.Motor == DirNone && at.Sub(w.onAt) >= w.p.TravelTimeout &&
		(st.Fault != FaultTravel || !st.Alarm) && !jump {
		w.fatalf("motor ran %v without a travel_timeout fault and alarm", at.Sub(w.onAt))
	}

	// Invariant 1 and 2, from the outputs alone.
	if out.Motor != w.motor {
		if w.motor != DirNone {
			if out.Motor != DirNone && !jump && w.p.ReverseDelay > 0 {
				w.fatalf("motor went %v -> %v with no off time between", w.motor, out.Motor)
			}
			w.lastOn, w.offAt, w.offExact = w.motor, at, !jump
		}
		if out.Motor != DirNone {
			if w.lastOn != DirNone && w.lastOn != out.Motor && w.offExact && !jump && at.Sub(w.offAt) < w.p.ReverseDelay {
				w.fatalf("reversal %v -> %v after %v off, want at least %v", w.lastOn, out.Motor, at.Sub(w.offAt), w.p.ReverseDelay)
			}
			w.onAt = at
		}
		w.motor = out.Motor
	} else if out.Motor != DirNone && st.Since.Equal(at) {
		w.onAt = at // a fresh motion in the same direction
	}
	if out.Motor != DirNone && at.Sub(w.onAt) >= w.p.TravelTimeout {
		w.fatalf("motor %v on for %v, travel_timeout is %v", out.Motor, at.Sub(w.onAt), w.p.TravelTimeout)
	}
}

// sendInputs steps EvInputs if what the switches show differs from what the
// machine saw (or, now and then, when it does not: a repeated edge).
func (w *world) sendInputs(force, late bool) {
	if ph := w.physical(); force || ph != w.m.Inputs() {
		w.step(Event{Kind: EvInputs, Inputs: ph}, late)
	}
}

// advance lets dt pass like the owner does: a tick at every deadline and an
// input edge whenever the gate reaches a limit. late skips the ticks, as an
// owner that was held up would: the gate keeps moving meanwhile, and the
// steps that follow see deadlines expire late, so checks that need exact
// times are relaxed for them.
func (w *world) advance(dt time.Duration, late bool) {
	target := w.now.Add(dt)
	for {
		next, kind := target, EvTick
		if d, ok := w.m.Deadline(); ok && !late && d.Before(next) {
			next = d
		}
		if h, ok := w.limitHit(); ok && h.Before(next) {
			next, kind = h, EvInputs
		}
		w.move(next)
		if kind == EvInputs {
			w.sendInputs(false, late)
			continue
		}
		if next.Equal(target) {
			w.step(Event{Kind: EvTick}, late)
			return
		}
		w.step(Event{Kind: EvTick}, false)
	}
}

// op does one random thing to the world.
func (w *world) op() {
	switch n := w.pick(100); {
	case n < 25:
		cmds := []Command{CmdOpen, CmdClose, CmdStop, CmdAlarm, CmdSilence, CmdOpen, CmdClose, "jump"}
		w.step(Event{Kind: EvCommand, Cmd: cmds[w.pick(len(cmds))], Cause: CauseMQTT}, false)
	case n < 35:
		w.obstructed = !w.obstructed
		w.sendInputs(false, false)
	case n < 37:
		w.stuckOpen = !w.stuckOpen
		w.sendInputs(false, false)
	case n < 39:
		w.stuckClosed = !w.stuckClosed
		w.sendInputs(false, false)
	case n < 41:
		w.jammed = !w.jammed
	case n < 43: // pushed by hand
		w.pos = time.Duration(w.pick(5)) * w.travel / 4
		w.sendInputs(false, false)
	case n < 44:
		w.sendInputs(true, false)
	case n < 45:
		w.step(Event{Kind: EvOutputFailed, Err: errors.New("gpio: broken")}, false)
	case n < 47:
		w.advance(time.Duration(w.pick(200))*time.Second, true)
	case n < 60: // short: bounces, the reverse delay, pulses
		w.advance(time.Duration(w.pick(1000)+1)*time.Millisecond, false)
	default:
		w.advance(time.Duration(w.pick(40_000)+1)*time.Millisecond, false)
	}
}

// start puts the gate somewhere and starts the machine.
func (w *world) start() {
	w.pos = time.Duration(w.pick(3)) * w.travel / 2
	w.obstructed = w.pick(4) == 0
	w.stuckOpen = w.pick(20) == 0
	w.step(Event{Kind: EvStart, Inputs: w.physical()}, false)
}

var propertyParams = []struct {
	p      Params
	travel time.Duration
}{
	{testParams, 8 * time.Second},
	{Params{TravelTimeout: 5 * time.Second, ReverseDelay: 2 * time.Second, AutoClose: 10 * time.Second, AlarmDuration: 0, AlarmOnForcedOpen: true}, 8 * time.Second},
	{Params{TravelTimeout: 30 * time.Second, ReverseDelay: 0, AutoClose: 3 * time.Second, AlarmDuration: 5 * time.Second}, 2 * time.Second},
	{Params{TravelTimeout: 20 * time.Second, ReverseDelay: 300 * time.Millisecond, AutoClose: 15 * time.Second, AlarmDuration: 60 * time.Second, AlarmOnForcedOpen: true}, 12 * time.Second},
}

func TestMachineProperties(t *testing.T) {
	steps := 20_000
	if testing.Short() {
		steps = 2_000
	}
	for seed := uint64(1); seed <= 8; seed++ {
		pp := propertyParams[int(seed)%len(propertyParams)]
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 0x9a7e))
			w := newWorld(t, pp.p, pp.travel, r.IntN)
			defer func() {
				if t.Failed() {
					t.Logf("reproduce with seed %d, params %+v, travel %v", seed, pp.p, pp.travel)
				}
			}()
			w.start()
			seen := map[State]bool{}
			for range steps {
				w.op()
				seen[w.m.Status().State] = true
			}
			// The walk must reach every state, or it tests less than it seems.
			for _, s := range []State{Closed, Opening, Open, Closing, Stopped, Faulted} {
				if !seen[s] {
					t.Errorf("seed %d: state %s never reached in %d steps", seed, s, steps)
				}
			}
		})
	}
}

// FuzzMachine decodes bytes into a start and a sequence of operations (see
// world.op) and checks the invariants after every step.
func FuzzMachine(f *testing.F) {
	f.Add(uint8(0), []byte{})
	f.Add(uint8(1), []byte{0, 10, 99, 30, 0, 1, 99, 60, 26, 99, 99, 99})
	f.Add(uint8(2), []byte{10, 50, 5, 7, 99, 99, 36, 40, 0, 1, 2, 3, 4, 44, 46, 99})
	f.Add(uint8(3), []byte{37, 38, 99, 0, 26, 99, 45, 59, 59, 0, 1, 99})
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		// Long inputs add time, not cases: TestMachineProperties walks far.
		data = data[:min(len(data), 2048)]
		pp := propertyParams[int(which)%len(propertyParams)]
		i := 0
		pick := func(n int) int {
			if i >= len(data) {
				return 0
			}
			b := int(data[i])
			i++
			if n > 256 && i < len(data) {
				b = b<<8 | int(data[i])
				i++
			}
			return b % n
		}
		w := newWorld(t, pp.p, pp.travel, pick)
		w.start()
		for i < len(data) {
			w.op()
		}
	})
}
