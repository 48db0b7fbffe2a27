package gate

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
)

// world plays the shell and the hardware around a whole Controller: a gate
// whose leaf moves at travel speed (in hold mode when one motor relay is
// energised, in pulse mode as an operator sent by contacts) and trips its
// limit switches, input lines that bounce, and relays that fail on demand (a
// relay whose Out fails stays as it was). Its physics is loose enough to
// produce both realistic inputs and absurd ones (stuck switches, both
// limits, a gate pushed by hand, a jam). property_test.go drives it at
// random and checks SPEC.md's invariants on what the controller does.
type world struct {
	t      testing.TB
	cfg    Config
	fit    Fitted
	travel time.Duration // end to end
	pick   func(n int) int

	c    Controller
	now  time.Time
	wake time.Time // the Wake in force; zero: none

	// The gate.
	pos                    time.Duration // 0 closed .. travel open
	jammed                 bool
	stuckOpen, stuckClosed bool // the switch reads active whatever the gate does
	obstructed             bool
	eyeStuck               bool            // the photo eye's receiver ignores its transmitter
	eyeCut, eyePassed      bool            // self-test seen by the world: cut while off; then clear while on
	chatter                [NumInputs]bool // a bouncing contact: the line reads the other level
	operator               Dir             // pulse mode: where the operator runs
	sent                   [NumInputs]gpio.Level
	changed, prevChanged   [NumInputs]time.Time // when each line last changed level, and the time before
	relay                  [NumOutputs]bool     // energised
	failing, failOnce      [NumOutputs]bool     // Out fails always, or once
	lastFailed             [NumOutputs]bool     // the last Out on the line failed
	onAt, offAt            [NumOutputs]time.Time
	lastContact            Output    // pulse mode: the last open or close contact made
	lateUntil              time.Time // ticks were held back until then: exact-time checks relax before it
	checker                          // property_test.go
	trail                  []trailStep
	n                      int
	quiet                  bool // sound hardware and few commands: automatic closes run their course
}

// trailStep is formatted only when a check fails: formatting every step
// would make the fuzzer crawl.
type trailStep struct {
	at   time.Time
	ev   Event
	acts []Action
}

func newWorld(t testing.TB, pc propertyConfig, pick func(int) int) *world {
	return &world{t: t, cfg: pc.cfg, fit: pc.fit, travel: pc.travel, pick: pick, c: NewController(pc.cfg, pc.fit), now: t0, lastContact: -1}
}

func (w *world) fatalf(format string, args ...any) {
	w.t.Helper()
	var lines []string
	for i := max(0, w.n-len(w.trail)); i < w.n; i++ {
		s := w.trail[i%len(w.trail)]
		d := fmt.Sprintf("%v: %v", s.at.Sub(t0), s.ev.Kind)
		switch s.ev.Kind {
		case EvCommand:
			d += " " + string(s.ev.Cmd)
		case EvEdge:
			d += fmt.Sprintf(" %s %v", s.ev.Input, s.ev.Level)
		case EvDriven:
			for _, f := range s.ev.Failed {
				d += " " + f.Output.String() + " failed"
			}
		}
		for _, a := range s.acts {
			d += "; " + show(a)
		}
		lines = append(lines, d)
	}
	w.t.Fatalf("at %v: %s\nlast steps:\n  %s", w.now.Sub(t0), fmt.Sprintf(format, args...), strings.Join(lines, "\n  "))
}

func (w *world) note(ev Event, acts []Action) {
	if w.trail == nil {
		w.trail = make([]trailStep, 40)
	}
	w.trail[w.n%len(w.trail)] = trailStep{w.now, ev, acts}
	w.n++
}

// band is how far from an end a limit switch is active.
func (w *world) band() time.Duration { return w.travel / 100 }

// active is an input's logical state now; raw is its line level.
func (w *world) active(i Input) bool {
	switch i {
	case InOpenLimit:
		return w.pos >= w.travel-w.band() || w.stuckOpen
	case InClosedLimit:
		return w.pos <= w.band() || w.stuckClosed
	}
	// With a test output, the beam is cut while the transmitter is off
	// (unless the receiver is stuck).
	cut := w.obstructed || (w.fit.ObstructionTest && !w.relay[OutEyeTest] && !w.eyeStuck)
	return cut != w.cfg.ObstructionNormallyClosed
}

// eyeSeen follows the photo eye's self-test as the hardware sees it: the
// beam cut while the transmitter was off, then clear once it is on again.
func (w *world) eyeSeen() {
	if !w.fit.ObstructionTest {
		return
	}
	// The line as the controller reads it, bounces included: a bounce
	// that lasts the debounce time is a level.
	cut := (bool(w.raw(InObstruction)) != w.cfg.InputsActiveLow) != w.cfg.ObstructionNormallyClosed
	switch {
	case !w.relay[OutEyeTest] && cut:
		w.eyeCut = true
	case w.relay[OutEyeTest] && !cut && w.eyeCut:
		w.eyeCut, w.eyePassed = false, true
	}
}

func (w *world) raw(i Input) gpio.Level {
	return gpio.Level(w.active(i) != w.cfg.InputsActiveLow != w.chatter[i])
}

func (w *world) fitted(i Input) bool { return i != InObstruction || w.fit.Obstruction }

// motor is the direction the leaf is driven.
func (w *world) motor() Dir {
	if w.cfg.OutputMode == Pulse {
		return w.operator
	}
	switch o, c := w.relay[OutMotorOpen], w.relay[OutMotorClose]; {
	case o && !c:
		return DirOpen
	case c && !o:
		return DirClose
	}
	return DirNone
}

// move runs the physics from now to at.
func (w *world) move(at time.Time) {
	dt := at.Sub(w.now)
	w.now = at
	if w.jammed {
		return
	}
	switch w.motor() {
	case DirOpen:
		w.pos = min(w.pos+dt, w.travel)
		if w.pos == w.travel && w.operator == DirOpen {
			w.operator = DirNone // an operator stops at its own limit
		}
	case DirClose:
		w.pos = max(w.pos-dt, 0)
		if w.pos == 0 && w.operator == DirClose {
			w.operator = DirNone
		}
	}
}

// crossing returns when the moving leaf next changes a switch or stops at
// an end.
func (w *world) crossing() (time.Time, bool) {
	if w.jammed {
		return time.Time{}, false
	}
	var marks []time.Duration
	switch w.motor() {
	case DirOpen:
		for _, m := range []time.Duration{w.band() + 1, w.travel - w.band(), w.travel} {
			marks = append(marks, m-w.pos)
		}
	case DirClose:
		for _, m := range []time.Duration{w.travel - w.band() - 1, w.band(), 0} {
			marks = append(marks, w.pos-m)
		}
	}
	var next time.Duration
	for _, d := range marks {
		if d > 0 && (next == 0 || d < next) {
			next = d
		}
	}
	return w.now.Add(next), next > 0
}

// sync sends an edge for every line whose level differs from the last one
// sent, as the shell's watchers do.
func (w *world) sync() {
	w.eyeSeen()
	for i := range NumInputs {
		if l := w.raw(i); w.fitted(i) && l != w.sent[i] {
			w.sent[i], w.changed[i], w.prevChanged[i] = l, w.now, w.changed[i]
			w.round(Event{Kind: EvEdge, Input: i, Level: l})
		}
	}
}

// start puts the gate somewhere and starts the controller.
func (w *world) start() {
	w.pos = time.Duration(w.pick(3)) * w.travel / 2
	w.obstructed = w.pick(4) == 0
	w.stuckOpen = w.pick(20) == 0
	var levels [NumInputs]gpio.Level
	for i := range NumInputs {
		levels[i] = w.raw(i)
		w.sent[i], w.changed[i] = levels[i], w.now.Add(-time.Hour)
	}
	w.round(Event{Kind: EvStart, Levels: levels})
}

// round feeds ev at the present time and carries out what the controller
// asks, as Gate.Run does, checking each action as it is carried out and the
// round once it ends.
func (w *world) round(ev Event) {
	w.t.Helper()
	ev.At = w.now
	before := w.c
	w.beginRound(ev)
	w.gaveUp = false
	for batch := 0; ; batch++ {
		if batch > 2*maxDrives+2 {
			w.fatalf("round of %v does not end", ev.Kind)
		}
		var acts []Action
		w.c, acts = w.c.Step(ev)
		w.note(ev, acts)
		var failed []OutputError
		driven := false
		for _, a := range acts {
			w.action(a, ev)
			if s, ok := a.(SetOutput); ok {
				driven = true
				if err := w.out(s); err != nil {
					failed = append(failed, OutputError{s.Output, err})
				}
			}
		}
		if !driven {
			break
		}
		ev = Event{At: w.now, Kind: EvDriven, Failed: failed}
		w.gaveUp = len(failed) > 0
	}
	w.endRound(before)
	if w.fit.ObstructionTest {
		w.sync() // the eye's transmitter may have changed the obstruction line
	}
}

var errRelay = errors.New("relay driver not answering")

// out is Out on an output line: it fails on demand, leaving the relay as
// it was; else it energises or releases it and lets the operator react.
func (w *world) out(s SetOutput) error {
	o := s.Output
	if w.failing[o] || w.failOnce[o] {
		w.failOnce[o] = false
		w.lastFailed[o] = true
		return errRelay
	}
	stuck := w.lastFailed[o]
	w.lastFailed[o] = false
	if w.relay[o] == s.On {
		if stuck && s.On {
			w.onAt[o] = w.now // stuck on until now: the controller's motion starts now
		}
		return nil
	}
	w.checkOut(s)
	w.relay[o] = s.On
	if o == OutEyeTest && !s.On {
		w.eyeCut = false // a new test begins
	}
	if !s.On {
		w.offAt[o] = w.now
		return nil
	}
	w.onAt[o] = w.now
	if w.cfg.OutputMode != Pulse || !o.motor() {
		return nil
	}
	// A common slide-gate operator: stop stops it and, held, inhibits it;
	// open (close) starts it that way unless another contact is held.
	switch {
	case o == OutMotorStop:
		w.operator = DirNone
	case w.relay[OutMotorStop], w.relay[OutMotorOpen] && w.relay[OutMotorClose]:
	case o == OutMotorOpen && w.pos < w.travel:
		w.operator = DirOpen
	case o == OutMotorClose && w.pos > 0:
		w.operator = DirClose
	}
	return nil
}

// advance lets dt pass as the shell does: a tick at every Wake and an edge
// whenever a switch changes. late holds the ticks back to the end, as an
// owner held up would: the gate keeps moving meanwhile.
func (w *world) advance(dt time.Duration, late bool) {
	target := w.now.Add(dt)
	for n := 0; ; n++ {
		if n > 10_000 {
			w.fatalf("advancing %v does not end", dt)
		}
		next, tick := target, false
		if !late && !w.wake.IsZero() && !w.wake.After(next) {
			next, tick = w.wake, true
		}
		if h, ok := w.crossing(); ok && h.Before(next) {
			next, tick = h, false
		}
		w.move(next)
		w.sync()
		if tick {
			w.round(Event{Kind: EvTick})
			continue
		}
		if next.Equal(target) {
			if late && !w.wake.IsZero() && !w.wake.After(target) {
				w.lateUntil = target
				w.round(Event{Kind: EvTick})
			}
			return
		}
	}
}

// bounce makes a line read the other level for d, then come back.
func (w *world) bounce(i Input, d time.Duration) {
	if !w.fitted(i) {
		return
	}
	w.chatter[i] = true
	w.sync()
	w.advance(d, false)
	w.chatter[i] = false
	w.sync()
}

// late lets d pass with the owner held up: its ticks come late, and a
// motion command waits to be taken right after them.
func (w *world) late(d time.Duration) {
	w.advance(d, true)
	cmds := []Command{CmdOpen, CmdClose, CmdStop}
	w.round(Event{Kind: EvCommand, Cmd: cmds[w.pick(len(cmds))], Cause: CauseMQTT})
}

func (w *world) command() {
	cmds := []Command{CmdOpen, CmdClose, CmdStop, CmdAlarm, CmdSilence, CmdOpen, CmdClose, "jump", CmdPosition, CmdPosition, CmdPedestrian}
	ev := Event{Kind: EvCommand, Cmd: cmds[w.pick(len(cmds))], Cause: CauseMQTT}
	if ev.Cmd == CmdPosition {
		// Mostly in range, sometimes an end (close or open), now and then out of range.
		ev.Target = []int{w.pick(99) + 1, w.pick(99) + 1, 0, 100, 101 + w.pick(50)}[w.pick(5)]
	}
	w.round(ev)
}

// op does one random thing to the world.
func (w *world) op() {
	switch n := w.pick(100); {
	case w.quiet:
		// Sound hardware, few commands, obstructions coming and going.
		switch {
		case n < 3:
			w.command()
		case n < 25:
			w.obstructed = !w.obstructed
			w.sync()
		case n < 27:
			w.late(time.Duration(w.pick(30_000)+1) * ms)
		default:
			w.advance(time.Duration(w.pick(3_000)+1)*ms, false)
		}
	case n < 22:
		w.command()
	case n < 30:
		w.obstructed = !w.obstructed
		w.sync()
	case n < 32:
		w.stuckOpen = !w.stuckOpen
		w.sync()
	case n < 34:
		w.stuckClosed = !w.stuckClosed
		w.sync()
	case n < 36:
		w.jammed = !w.jammed
	case n < 37 && w.fit.ObstructionTest && (w.eyeStuck || w.pick(8) == 0):
		// A stuck eye, now and then, mended soon: most closes must be
		// able to pass their test, or the walk tests little else.
		w.eyeStuck = !w.eyeStuck
		w.sync()
	case n < 38: // pushed by hand
		w.pos = time.Duration(w.pick(5)) * w.travel / 4
		w.sync()
	case n < 42:
		w.bounce(Input(w.pick(int(NumInputs))), time.Duration(w.pick(int(2*w.cfg.Debounce/ms)+2))*ms)
	case n < 45:
		o := Output(w.pick(int(NumOutputs)))
		w.failing[o] = !w.failing[o]
	case n < 46:
		w.failOnce[Output(w.pick(int(NumOutputs)))] = true
	case n < 48:
		w.late(time.Duration(w.pick(200)) * time.Second)
	case n < 62: // short: bounces, the reverse delay, pulses
		w.advance(time.Duration(w.pick(1000)+1)*ms, false)
	case w.motor() != DirNone && w.pick(4) == 0:
		w.late(time.Duration(w.pick(40_000)+1) * ms)
	default:
		w.advance(time.Duration(w.pick(40_000)+1)*ms, false)
	}
}
