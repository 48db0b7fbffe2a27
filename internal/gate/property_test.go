package gate

// Long on purpose: the invariants of SPEC.md checked after every round of the random walk are
// one function, endRound, so that each invariant reads next to the others it interacts with.

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
)

// checker holds what the checks need across a world's rounds. The checks
// are SPEC.md's invariants, on what the controller does: the lines it
// drives (as the relays really are), the statuses it publishes and the
// answers it gives. Invariant 6 (exit) is the shell's and has its own test.
type checker struct {
	last       Status // the last published
	roundEv    Event  // the event that began the round
	replied    bool
	failures   bool // an output failed in this round
	replyErr   error
	gaveUp     bool                  // the round ended on a failed drive
	stable     [NumInputs]gpio.Level // the debounced lines as the round began
	stopped    bool                  // a stop cancelled auto_close and nothing re-armed it
	autoClosed bool                  // an automatic close started in this round
	seen       map[State]bool
	posAt      time.Time // when the published position last changed

	held        int       // closes answered later (Defer) and not yet answered
	strikes     int       // obstruction reversals in a row during automatic closes
	closeStart  time.Time // the machine's since of the last close motion checked
	lastAutoSeq uint64
	struckOut   bool // two strikes were reached: the walk tried the rule
}

func (w *world) beginRound(ev Event) {
	if ev.Kind == EvTick {
		w.wake = time.Time{} // the timer that brought it is spent
	}
	w.roundEv, w.replied, w.failures, w.replyErr, w.autoClosed = ev, false, false, nil, false
	for i := range w.c.deb {
		w.stable[i] = w.c.deb[i].stable
	}
}

// action checks one action as the shell carries it out.
func (w *world) action(a Action, ev Event) {
	if ev.Kind == EvDriven && len(ev.Failed) > 0 {
		w.failures = true
	}
	switch a := a.(type) {
	case SetOutput:
		if !w.c.has[a.Output] {
			w.fatalf("%s driven, but it is not fitted", a.Output)
		}
	case Wake:
		if !a.At.IsZero() && !a.At.After(w.now) {
			w.fatalf("wake at %v, not after the round", a.At.Sub(t0))
		}
		w.wake = a.At
	case Publish:
		w.publish(a.Status)
	case Defer:
		if w.roundEv.Kind != EvCommand || w.replied || !closing(w.roundEv.Cmd) || !w.fit.ObstructionTest {
			w.fatalf("a defer in a round of %v %s (replied before: %v)", w.roundEv.Kind, w.roundEv.Cmd, w.replied)
		}
		w.replied = true
		w.held++
	case Reply:
		if a.Later {
			w.heldReply(a)
			break
		}
		if w.roundEv.Kind != EvCommand || w.replied {
			w.fatalf("a reply in a round of %v (replied before: %v)", w.roundEv.Kind, w.replied)
		}
		w.replied = true
		w.reply(a)
	}
}

func (w *world) publish(st Status) {
	prev := w.last
	if st.Seq != prev.Seq+1 {
		w.fatalf("published seq %d after %d", st.Seq, prev.Seq)
	}
	if prev.Seq > 0 && st.sameAs(prev) {
		w.fatalf("published the same status twice: %s", st.JSON())
	}
	if (st.Fault != NoFault) != (st.State == Faulted) || st.Moving != (st.State == Opening || st.State == Closing) {
		w.fatalf("status makes no sense: %s", st.JSON())
	}
	if w.seen == nil {
		w.seen = map[State]bool{}
	}
	w.seen[st.State] = true
	w.last = st
	// SPEC.md "Position": while moving, the position at most once a second.
	if st.PositionKnown && (st.Position < 0 || st.Position > 100) {
		w.fatalf("position %d", st.Position)
	}
	if st.Position != prev.Position || st.PositionKnown != prev.PositionKnown {
		// (A stop, even one before a reversal, publishes at once.)
		if w.c.m.Outputs().Motor != DirNone && prev.Moving && prev.Seq > 0 && w.now.Sub(w.posAt) < time.Second {
			w.fatalf("position published %v after the last one, while moving", w.now.Sub(w.posAt))
		}
		w.posAt = w.now
	}
	if prev.Seq == 0 {
		return
	}
	ev := w.roundEv
	// Invariant 2: a travel timeout is a fault with the alarm (which a
	// late tick may find over already).
	alarmOver := w.cfg.Params.AlarmDuration > 0 && w.now.Sub(st.Since) >= w.cfg.Params.AlarmDuration
	if st.Fault == FaultTravel && prev.Fault != FaultTravel && ((!st.Alarm && !alarmOver) || st.Cause != CauseTimeout) {
		w.fatalf("travel_timeout without the alarm, or not caused by timeout: %s", st.JSON())
	}
	// Invariant 3: an obstruction while closing re-opens (or a limit or a
	// fault that came with it stops the gate).
	if prev.State == Closing && st.Obstructed && !prev.Obstructed && st.State != Opening && st.State != Open && st.State != Closed && st.State != Faulted {
		w.fatalf("obstructed while closing, then %s", st.State)
	}
	// Invariant 5.
	if w.cfg.Params.AlarmOnForcedOpen && prev.State == Closed && st.State == Stopped && st.Cause == CauseInput && !st.Alarm {
		w.fatalf("forced open from closed without the alarm")
	}
	// Invariant 8: fault is left only by open, close or stop, or by inputs
	// that make sense.
	if prev.State == Faulted && st.State != Faulted {
		in := w.c.m.Inputs()
		okCmd := ev.Kind == EvCommand && (ev.Cmd == CmdOpen || ev.Cmd == CmdClose || ev.Cmd == CmdStop ||
			(ev.Cmd == CmdPosition && (ev.Target == 0 || ev.Target == 100)))
		if !okCmd && in.OpenLimit == in.ClosedLimit {
			w.fatalf("fault %s left to %s by %v", prev.Fault, st.State, ev.Kind)
		}
	}
	if st.Cause == CauseAutoClose && st.Since.Equal(w.now) {
		w.autoClosed = true
	}
	// Two strikes: reversals of automatic closes in a row, counted from
	// the statuses.
	switch {
	case prev.State == Closing && prev.Cause == CauseAutoClose && st.State == Opening && st.Cause == CauseInput:
		w.strikes++
	case prev.State == Closing && prev.Cause == CauseAutoClose && st.State == Closed:
		w.strikes = 0
	}
	if st.Warning && st.State != prev.State && prev.Seq > 0 && !prev.Warning {
		w.fatalf("the warning changed the state: %s after %s", st.JSON(), prev.JSON())
	}
	if st.Warning && st.Moving {
		w.fatalf("warning while moving: %s", st.JSON())
	}
}

// heldReply checks the answer to a close that waited for the self-test.
func (w *world) heldReply(r Reply) {
	if w.held == 0 {
		w.fatalf("a held reply with none held")
	}
	w.held--
	if r.Status != w.last {
		w.fatalf("held reply with status %s, the last published is %s", r.Status.JSON(), w.last.JSON())
	}
	if r.Err != nil && reasonOf(r.Err) != ReasonSensorTest && (reasonOf(r.Err) != ReasonFault || !w.failures) {
		w.fatalf("held close refused with %v, status %s", r.Err, r.Status.JSON())
	}
}

func (w *world) reply(r Reply) {
	if r.Status != w.last {
		w.fatalf("reply with status %s, the last published is %s", r.Status.JSON(), w.last.JSON())
	}
	w.replyErr = r.Err
	if r.Err == nil {
		// Invariants 3 and 4 for commands.
		if r.Cmd == CmdClose && r.Status.Obstructed {
			w.fatalf("close accepted while obstructed")
		}
		if r.Cmd == CmdPosition && (w.roundEv.Target < 0 || w.roundEv.Target > 100) {
			w.fatalf("position %d accepted", w.roundEv.Target)
		}
		if in := w.c.m.Inputs(); in.OpenLimit && in.ClosedLimit && (r.Cmd == CmdOpen || r.Cmd == CmdClose) {
			w.fatalf("%s accepted with both limits active", r.Cmd)
		}
		return
	}
	switch reasonOf(r.Err) {
	case ReasonObstructed:
		if (r.Cmd != CmdClose && r.Cmd != CmdPosition) || !w.c.m.Inputs().Obstructed {
			w.fatalf("%s refused as obstructed, but not a close while obstructed", r.Cmd)
		}
	case ReasonFault:
		if (r.Cmd == CmdPosition || r.Cmd == CmdPedestrian) && r.Status.State == Faulted {
			break
		}
		if in := w.c.m.Inputs(); (!in.OpenLimit || !in.ClosedLimit) && !w.failures {
			w.fatalf("%s refused as fault with neither a limit conflict nor an output failing", r.Cmd)
		}
	case ReasonPositionUnknown:
		// Only a position between the ends waits for the estimate.
		if r.Cmd != CmdPosition && r.Cmd != CmdPedestrian {
			w.fatalf("%s refused as position_unknown", r.Cmd)
		}
		if t := w.roundEv.Target; r.Cmd == CmdPosition && (t <= 0 || t >= 100) {
			w.fatalf("position %d refused as position_unknown", t)
		}
		if _, ok := w.c.pos.est.Position(w.now); ok && len(w.c.pos.est.Samples().Open) > 0 && len(w.c.pos.est.Samples().Close) > 0 {
			w.fatalf("%s refused as position_unknown, the position is known with both travel times", r.Cmd)
		}
	case ReasonRange:
		if t := w.roundEv.Target; r.Cmd != CmdPosition || (t >= 0 && t <= 100) {
			w.fatalf("%s %d refused as out of range", r.Cmd, t)
		}
	case ReasonUnknown:
		if r.Cmd == CmdPedestrian && w.cfg.PedestrianPosition == 0 {
			break
		}
		for _, c := range Commands {
			if r.Cmd == c {
				w.fatalf("%s refused as unknown", r.Cmd)
			}
		}
	default:
		w.fatalf("%s refused with %v", r.Cmd, r.Err)
	}
}

// checkOut checks a relay about to change.
func (w *world) checkOut(s SetOutput) {
	o := s.Output
	if !s.On || !o.motor() {
		return
	}
	in := w.c.m.Inputs()
	if in.OpenLimit && in.ClosedLimit && o != OutMotorStop {
		w.fatalf("%s switched on with both limits active (invariant 4)", o)
	}
	if o == OutMotorClose && w.c.m.state == Closing && !w.c.m.since.Equal(w.closeStart) {
		w.closeStart = w.c.m.since
		w.closeStarts()
	}
	if in.Obstructed && o == OutMotorClose {
		w.fatalf("%s switched on while obstructed (invariant 3)", o)
	}
	for x := range NumOutputs {
		if x == o || !x.motor() || !w.relay[x] {
			continue
		}
		// Invariant 1. Stop may be made next to a contact that could not be
		// released: operators obey stop first.
		if !(w.cfg.OutputMode == Pulse && o == OutMotorStop && w.lastFailed[x]) {
			w.fatalf("%s switched on while %s is on (invariant 1)", o, x)
		}
	}
	rd := w.cfg.Params.ReverseDelay
	switch {
	case w.cfg.OutputMode == Hold && o == OutMotorStop:
		w.fatalf("motor_stop switched on in hold mode")
	case w.cfg.OutputMode == Hold:
		other := OutMotorOpen + OutMotorClose - o
		if off := w.offAt[other]; !off.IsZero() && w.now.Sub(off) < rd {
			w.fatalf("%s switched on %v after %s was released, want at least reverse_delay %v (invariant 1)", o, w.now.Sub(off), other, rd)
		}
	case o != OutMotorStop:
		last := w.lastContact
		if last >= 0 && last != o && !w.onAt[last].Before(w.lateUntil) && w.now.Sub(w.onAt[last]) < rd {
			w.fatalf("%s contact %v after the %s contact, want at least reverse_delay %v (invariant 1)", o, w.now.Sub(w.onAt[last]), last, rd)
		}
		w.lastContact = o
	}
}

// endRound checks the state a round leaves.
func (w *world) endRound(before Controller) {
	st, in := w.last, w.c.m.Inputs()
	if w.roundEv.Kind == EvCommand && !w.replied {
		w.fatalf("command %s not answered", w.roundEv.Cmd)
	}
	if d := w.c.deadline(); !d.Equal(w.wake) {
		w.fatalf("controller waits for %v, its last Wake was for %v", d.Sub(t0), w.wake.Sub(t0))
	}
	if w.c.Status() != st {
		w.fatalf("Status() %s, last published %s", w.c.Status().JSON(), st.JSON())
	}
	if w.fit.Siren && !w.failing[OutSiren] && !w.lastFailed[OutSiren] && w.relay[OutSiren] != (st.Alarm || (st.Warning && !w.fit.Warning)) {
		w.fatalf("siren %v, alarm %v", w.relay[OutSiren], st.Alarm)
	}
	// SPEC.md "Position": a change of the position the throttle holds back
	// goes out within a second.
	if pos, known := w.c.pos.est.Position(w.now); known != st.PositionKnown || (known && pos != st.Position) {
		if d := w.c.deadline(); d.IsZero() || d.After(w.now.Add(time.Second)) {
			w.fatalf("position %d (known %v) held back, published %d (known %v), next wake %v", pos, known, st.Position, st.PositionKnown, d.Sub(t0))
		}
	}
	// Invariant 4.
	if in.OpenLimit && in.ClosedLimit && (st.State != Faulted || st.Moving || (st.Fault != FaultLimitConflict && st.Fault != FaultGPIO)) {
		w.fatalf("both limits active: %s, want fault limit_conflict, not moving", st.JSON())
	}
	// Invariant 3: never closing into an obstruction.
	if in.Obstructed && st.State == Closing {
		w.fatalf("obstructed but closing")
	}
	want := w.c.want()
	for o := range NumOutputs {
		if w.cfg.OutputMode == Hold && o.motor() && w.relay[o] && !want[o] && !w.lastFailed[o] && !w.failing[o] {
			w.fatalf("%s on, not wanted", o)
		}
		// A line that failed is driven again at every round: once its relay
		// answers, a line to switch off is off (unless the round ran out of
		// drives on another failure).
		if w.c.has[o] && w.lastFailed[o] && !w.failing[o] && !w.failOnce[o] && !want[o] && !w.gaveUp {
			w.fatalf("%s failed before and answers now, but was not switched off again", o)
		}
	}
	// Invariant 2: every motion ends by travel_timeout (after the reverse
	// delay) at the latest.
	tt, rd := w.cfg.Params.TravelTimeout, w.cfg.Params.ReverseDelay
	if st.Moving && w.now.Sub(st.Since) > rd+tt {
		w.fatalf("%s for %v, travel_timeout %v", st.State, w.now.Sub(st.Since), tt)
	}
	for _, o := range []Output{OutMotorOpen, OutMotorClose} {
		if w.cfg.OutputMode == Hold && w.relay[o] && !w.lastFailed[o] && w.now.Sub(w.onAt[o]) > tt {
			w.fatalf("%s on for %v, travel_timeout %v", o, w.now.Sub(w.onAt[o]), tt)
		}
	}
	// Debouncing: a level is taken once the line has shown it for the
	// debounce time, and not before.
	for i := range NumInputs {
		if !w.fitted(i) {
			continue
		}
		l := w.c.deb[i].stable
		if l != w.stable[i] {
			since := w.changed[i] // the line shows l since then
			if w.sent[i] != l {
				// It changed again at this round's edge, which the
				// controller took after settling the level before it.
				if w.roundEv.Kind != EvEdge || w.roundEv.Input != i {
					w.fatalf("%s taken as %v, the line shows %v", i, l, w.sent[i])
				}
				since = w.prevChanged[i]
			}
			if w.now.Sub(since) < w.cfg.Debounce {
				w.fatalf("%s taken as %v, shown by the line for %v only", i, l, w.now.Sub(since))
			}
		}
		if w.sent[i] != l && w.now.Sub(w.changed[i]) >= w.cfg.Debounce {
			w.fatalf("%s still %v, the line shows %v since %v", i, l, w.sent[i], w.changed[i].Sub(t0))
		}
	}
	// Two strikes: no automatic close until a person's command.
	ev := w.roundEv
	if ev.Kind == EvCommand && w.replyErr == nil && (ev.Cmd == CmdOpen || ev.Cmd == CmdClose || ev.Cmd == CmdStop || ev.Cmd == CmdPosition || ev.Cmd == CmdPedestrian) {
		w.strikes = 0
	}
	if st.Seq != w.lastAutoSeq && st.Cause == CauseAutoClose && st.State == Closing && w.strikes >= 2 {
		w.fatalf("an automatic close after %d reversals in a row and no command", w.strikes)
	}
	if st.Cause == CauseAutoClose {
		w.lastAutoSeq = st.Seq
	}
	if w.strikes >= 2 {
		w.struckOut = true
	}
	if w.strikes >= 2 && st.AutoClose != AutoCloseSuspended {
		w.fatalf("%d reversals in a row, auto_close %q", w.strikes, st.AutoClose)
	}
	// auto_close is cancelled by stop until the gate is opened again.
	accepted := ev.Kind == EvCommand && w.replyErr == nil
	rearmed := (accepted && (ev.Cmd == CmdOpen || (ev.Cmd == CmdPosition && ev.Target == 100))) || (in.OpenLimit && !before.m.Inputs().OpenLimit)
	if w.stopped && !rearmed && w.autoClosed {
		w.fatalf("auto_close after stop")
	}
	switch {
	case accepted && ev.Cmd == CmdStop && st.State == Open:
		w.stopped = true
	case rearmed || st.State != Open:
		w.stopped = false
	}
	// Invariant 7: a refused command changes nothing beyond what time did.
	if w.roundEv.Kind == EvCommand && !w.failures && w.replyErr != nil {
		ticked, _ := before.Step(Event{At: w.now, Kind: EvTick})
		if ticked.m != w.c.m {
			w.fatalf("refused %s changed the machine: %+v, want %+v", w.roundEv.Cmd, w.c.m.Status(), ticked.m.Status())
		}
	}
}

type propertyConfig struct {
	cfg    Config
	fit    Fitted
	travel time.Duration
}

var propertyConfigs = []propertyConfig{
	{Config{Params: testParams, InputsActiveLow: true, ObstructionNormallyClosed: true, OutputMode: Hold, PulseWidth: 500 * ms, Debounce: 30 * ms},
		Fitted{Obstruction: true, Siren: true}, 8 * time.Second},
	{Config{Params: Params{TravelTimeout: 5 * time.Second, ReverseDelay: 2 * time.Second, AutoClose: 10 * time.Second, AlarmOnForcedOpen: true, WarnBeforeClose: 5 * time.Second},
		OutputMode: Hold, Debounce: 0}, Fitted{Obstruction: true, MotorStop: true, Siren: true, Warning: true}, 8 * time.Second},
	{Config{Params: Params{TravelTimeout: 30 * time.Second, AutoClose: 3 * time.Second, AlarmDuration: 5 * time.Second},
		InputsActiveLow: true, OutputMode: Pulse, PulseWidth: 500 * ms, Debounce: 30 * ms}, fitAll, 2 * time.Second},
	{Config{Params: Params{TravelTimeout: 20 * time.Second, ReverseDelay: 300 * ms, AutoClose: 15 * time.Second, AlarmDuration: 60 * time.Second, AlarmOnForcedOpen: true},
		ObstructionNormallyClosed: true, OutputMode: Pulse, PulseWidth: time.Second, Debounce: 10 * ms}, Fitted{Obstruction: true, Siren: true}, 12 * time.Second},
	// Warned automatic closes, the siren warning; a tested photo eye.
	{Config{Params: Params{TravelTimeout: 20 * time.Second, ReverseDelay: 500 * ms, AutoClose: 10 * time.Second, AlarmDuration: 30 * time.Second, AlarmOnForcedOpen: true, WarnBeforeClose: 5 * time.Second},
		InputsActiveLow: true, ObstructionNormallyClosed: true, OutputMode: Hold, Debounce: 30 * ms, ObstructionTestTime: 100 * ms},
		Fitted{Obstruction: true, Siren: true, ObstructionTest: true}, 8 * time.Second},
	// Pulse mode with a warning light, remote closes warned too.
	{Config{Params: Params{TravelTimeout: 15 * time.Second, ReverseDelay: 300 * ms, AutoClose: 3 * time.Second, AlarmDuration: 10 * time.Second, WarnBeforeClose: 5 * time.Second, WarnOnRemoteClose: true},
		OutputMode: Pulse, PulseWidth: 500 * ms, Debounce: 10 * ms, ObstructionTestTime: 50 * ms},
		Fitted{Obstruction: true, Siren: true, Warning: true, MotorStop: true, ObstructionTest: true}, 6 * time.Second},
	// A gate slower than its travel_timeout: every full run times out.
	{Config{Params: Params{TravelTimeout: 10 * time.Second, ReverseDelay: time.Second, AlarmDuration: 20 * time.Second}, OutputMode: Hold, Debounce: 50 * ms},
		Fitted{}, 12 * time.Second},
}

func TestControllerProperties(t *testing.T) {
	steps := 20_000
	if testing.Short() {
		steps = 2_000
	}
	for seed := uint64(1); seed <= 20; seed++ {
		pc := propertyConfigs[int(seed)%len(propertyConfigs)]
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 0x9a7e))
			w := newWorld(t, pc, r.IntN)
			defer func() {
				if t.Failed() {
					t.Logf("reproduce with seed %d, config %+v, fitted %+v", seed, pc.cfg, pc.fit)
				}
			}()
			w.start()
			for range steps {
				w.op()
			}
			// The walk must reach every state, or it tests less than it seems.
			for _, s := range []State{Closed, Opening, Open, Closing, Stopped, Faulted} {
				if !w.seen[s] {
					t.Errorf("seed %d: state %s never reached in %d steps", seed, s, steps)
				}
			}
		})
	}
}

// FuzzController decodes bytes into a gate (which of propertyConfigs), a
// start and a sequence of operations (see world.op), and checks the
// invariants at every action and after every round.
func FuzzController(f *testing.F) {
	f.Add(uint8(0), []byte{})
	f.Add(uint8(1), []byte{0, 10, 99, 30, 0, 1, 99, 60, 26, 99, 99, 99})
	f.Add(uint8(2), []byte{10, 50, 5, 7, 99, 99, 36, 40, 0, 1, 2, 3, 4, 44, 46, 99})
	f.Add(uint8(3), []byte{37, 38, 99, 0, 26, 99, 45, 59, 59, 0, 1, 99})
	f.Add(uint8(4), []byte{0, 43, 1, 0, 2, 99, 43, 1, 0, 0, 99, 99})
	f.Add(uint8(4), []byte{0, 0, 0, 0, 99, 99, 99, 1, 0, 50, 99, 24, 99, 99, 36, 0, 99, 99}) // warned, tested closes
	f.Add(uint8(5), []byte{0, 0, 0, 1, 99, 6, 99, 99, 24, 99, 47, 10, 99, 99})
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		// Long inputs add time, not cases: TestControllerProperties walks far.
		data = data[:min(len(data), 2048)]
		pc := propertyConfigs[int(which)%len(propertyConfigs)]
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
		w := newWorld(t, pc, pick)
		w.start()
		for i < len(data) {
			w.op()
		}
	})
}

// closeStarts checks a close motion as its motor line goes on: the rules
// that must have held before it.
func (w *world) closeStarts() {
	m := w.c.m
	// The self-test: with a test output, no close motion without a test
	// that the hardware passed, one per close.
	if w.fit.ObstructionTest && w.fit.Obstruction {
		if !w.eyePassed {
			w.fatalf("a close motion with no passed self-test of the photo eye")
		}
		w.eyePassed = false
	}
	// The warning: an automatic close only after warn_before_close of the
	// warning output, on until the motion started.
	if m.cause != CauseAutoClose || m.p.WarnBeforeClose <= 0 {
		return
	}
	out := OutWarning
	if !w.fit.Warning {
		out = OutSiren
	}
	if !w.fit.Warning && !w.fit.Siren {
		return // nothing to warn with: the configuration is refused
	}
	on, off := w.onAt[out], w.offAt[out]
	if w.lastFailed[out] || w.failing[out] {
		return // a relay that did not answer: a fault, checked elsewhere
	}
	if !(w.relay[out] || !off.Before(m.since)) || on.IsZero() || m.since.Sub(on) < m.p.WarnBeforeClose {
		w.fatalf("automatic close at %v: %s on at %v, off at %v (relay %v), want on for %v before", m.since.Sub(t0), out, on.Sub(t0), off.Sub(t0), w.relay[out], m.p.WarnBeforeClose)
	}
}

// TestTwoStrikesProperty walks gates with auto_close where people seldom
// command them, so that automatic closes meet obstructions in a row: after
// two reversals no automatic close may start until a person's command.
func TestTwoStrikesProperty(t *testing.T) {
	steps := 20_000
	if testing.Short() {
		steps = 2_000
	}
	tried := 0
	for seed := uint64(1); seed <= 8; seed++ {
		for i, pc := range propertyConfigs {
			if pc.cfg.Params.AutoClose <= 0 {
				continue
			}
			t.Run(fmt.Sprintf("config=%d/seed=%d", i, seed), func(t *testing.T) {
				r := rand.New(rand.NewPCG(seed, 0x2571))
				w := newWorld(t, pc, r.IntN)
				w.quiet = true
				w.start()
				for range steps {
					w.op()
				}
				if w.struckOut {
					tried++
				}

			})
		}
	}
	if tried == 0 {
		t.Errorf("no walk reached two strikes: the rule was not tried")
	}
	t.Logf("%d walks reached two strikes", tried)
}
