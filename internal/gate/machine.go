package gate

// A little over 450 lines: the state machine's transitions are one switch per event, which
// reads best whole; the pre-close rules it calls are in warning.go, selftest.go and strikes.go.

import (
	"fmt"
	"time"
)

// Dir is a motor direction; DirNone is the motor off.
type Dir int8

// Motor directions.
const (
	DirNone Dir = iota
	DirOpen
	DirClose
)

func (d Dir) String() string {
	switch d {
	case DirOpen:
		return "open"
	case DirClose:
		return "close"
	}
	return "off"
}

// Inputs are the debounced, logical inputs: true means active (a limit
// reached, the beam obstructed), whatever the wiring.
type Inputs struct {
	OpenLimit   bool
	ClosedLimit bool
	Obstructed  bool
}

// Params are the rules the machine follows, from the [gate] section.
type Params struct {
	TravelTimeout     time.Duration
	ReverseDelay      time.Duration
	AutoClose         time.Duration // 0 = off
	AlarmDuration     time.Duration // 0 = until silenced
	AlarmOnForcedOpen bool

	// The pre-close sequence (warning.go, selftest.go).
	WarnBeforeClose   time.Duration // warning before an automatic close
	WarnOnRemoteClose bool          // and before a close from MQTT, D-Bus or the web
	EyeTest           time.Duration // each half of the photo-eye self-test waits this long; 0: no test
}

// MachineEventKind says what a MachineEvent carries.
type MachineEventKind int8

// Machine event kinds.
const (
	MachineStart        MachineEventKind = iota // Inputs holds the inputs at start-up
	MachineCommand                              // Cmd and Cause
	MachineInputs                               // Inputs changed
	MachineTick                                 // time passed: deadlines up to At expire
	MachineOutputFailed                         // an output could not be driven
)

// MachineEvent is something that happens to the machine, with its time.
// Every event first expires the deadlines up to its time. The Controller
// makes them from what happens to the gate's lines.
type MachineEvent struct {
	At     time.Time
	Kind   MachineEventKind
	Cmd    Command
	Cause  Cause
	Inputs Inputs
}

// Outputs are what the machine wants energised.
type Outputs struct {
	Motor   Dir
	Siren   bool
	Warning bool // the pre-close warning
	EyeOff  bool // the photo eye's transmitter switched off by the self-test
}

// Machine is the gate's state machine: states, motions, deadlines and the
// alarm, on logical inputs. It is a value: Step returns the next one and
// never changes the receiver, so a test can feed events and compare outputs
// without goroutines or clocks. The Controller wraps it with what lies
// between it and the pins.
type Machine struct {
	p Params

	state State
	fault Fault
	cause Cause
	since time.Time
	in    Inputs

	motor     Dir       // energised now
	pending   Dir       // waiting for the reverse delay to pass
	pendingAt time.Time // when pending may start
	lastDir   Dir       // last direction energised
	lastOff   time.Time // when it was switched off
	travelBy  time.Time // the running motion must reach its limit by then

	alarm      bool
	alarmUntil time.Time // zero: until silenced

	autoCloseAt time.Time // zero: no automatic close pending

	pre       preClose // self-test and warning before a close (warning.go)
	strikes   int      // obstruction reversals in a row during automatic closes (strikes.go)
	suspended bool     // two strikes: no automatic close until a person commands the gate
	eyeBad    bool     // the last self-test failed: no automatic close until one passes
	testFail  bool     // the last self-test to end failed (selftest.go)
	count     Counters // counters.go
}

// NewMachine returns a machine that has not started: feed it MachineStart
// first.
func NewMachine(p Params) Machine {
	return Machine{p: p, state: Unknown, cause: CauseStartup}
}

// Status returns the status document's gate fields (Gate and Seq are the
// owner's).
func (m Machine) Status() Status {
	return Status{
		State:      m.state,
		Moving:     m.motor != DirNone || m.pending != DirNone,
		Alarm:      m.alarm,
		Obstructed: m.in.Obstructed && !m.Testing(), // the self-test cuts the beam on purpose
		Fault:      m.fault,
		Cause:      m.cause,
		Since:      m.since,

		Warning:      m.pre.phase == preWarn,
		AutoClose:    m.autoCloseState(),
		Openings:     m.count.Openings,
		Obstructions: m.count.Obstructions,
		Faults:       m.count.Faults,
		TwoStrikes:   m.suspended,
	}
}

// Outputs returns what should be energised now.
func (m Machine) Outputs() Outputs {
	return Outputs{Motor: m.motor, Siren: m.alarm, Warning: m.pre.phase == preWarn, EyeOff: m.pre.phase == preEyeOff}
}

// Inputs returns the inputs the machine last saw.
func (m Machine) Inputs() Inputs { return m.in }

// Deadline returns the earliest time at which the machine wants a MachineTick,
// and false if it waits for nothing.
func (m Machine) Deadline() (time.Time, bool) {
	var d time.Time
	consider := func(t time.Time) {
		if !t.IsZero() && (d.IsZero() || t.Before(d)) {
			d = t
		}
	}
	if m.pending != DirNone {
		consider(m.pendingAt)
	}
	if m.motor != DirNone {
		consider(m.travelBy)
	}
	if m.alarm {
		consider(m.alarmUntil)
	}
	consider(m.autoCloseAt)
	if m.pre.phase != preNone {
		consider(m.pre.until)
	}
	return d, !d.IsZero()
}

// Step applies one event. It returns the next machine and, for
// MachineCommand, a *RefusedError if the command was refused (then nothing
// moved because of it).
func (m Machine) Step(ev MachineEvent) (Machine, error) {
	m.expire(ev.At)
	switch ev.Kind {
	case MachineStart:
		m.start(ev)
	case MachineCommand:
		// Not "return m, m.command(ev)": Go leaves unspecified whether m is
		// read before or after the call changes it.
		err := m.command(ev)
		return m, err
	case MachineInputs:
		m.inputs(ev)
	case MachineTick:
	case MachineOutputFailed:
		// A relay that cannot be driven may be stuck on: everything off and
		// the alarm on, so a person looks at it.
		m.motorOff(ev.At)
		m.cancelClose()
		if m.state == Faulted && m.fault == FaultGPIO {
			break // still failing: the fault, its time and the alarm stand
		}
		m.enter(Faulted, ev.At, CauseInput)
		m.fault = FaultGPIO
		m.autoCloseAt = time.Time{}
		m.raiseAlarm(ev.At)
	}
	return m, nil
}

func (m *Machine) start(ev MachineEvent) {
	m.in = ev.Inputs
	switch {
	case m.in.OpenLimit && m.in.ClosedLimit:
		m.enter(Faulted, ev.At, CauseStartup)
		m.fault = FaultLimitConflict
	case m.in.ClosedLimit:
		m.enter(Closed, ev.At, CauseStartup)
	case m.in.OpenLimit:
		m.enter(Open, ev.At, CauseStartup)
		m.scheduleAutoClose(ev.At)
	default:
		m.enter(Unknown, ev.At, CauseStartup)
	}
}

// enter changes the state; it leaves the fault as it is.
func (m *Machine) enter(s State, at time.Time, c Cause) {
	if s == Faulted && m.state != Faulted {
		m.count.Faults++
	}
	m.state, m.since, m.cause = s, at, c
	if s != Faulted {
		m.fault = NoFault
	}
}

func (m *Machine) conflict() bool { return m.in.OpenLimit && m.in.ClosedLimit }

func (m *Machine) command(ev MachineEvent) error {
	at := ev.At
	switch ev.Cmd {
	case CmdOpen, CmdClose:
		if m.conflict() {
			return &RefusedError{Reason: ReasonFault, Msg: "both limit switches are active: check the switches and their wiring"}
		}
		if ev.Cmd == CmdClose && m.in.Obstructed {
			// Invariant 3: never close into an obstruction.
			return &RefusedError{Reason: ReasonObstructed, Msg: "the obstruction sensor is active: clear the gateway before closing"}
		}
		m.personCommands()
		if ev.Cmd == CmdOpen {
			m.cancelClose()
		}
		dir, target, limit := DirOpen, Open, m.in.OpenLimit
		if ev.Cmd == CmdClose {
			dir, target, limit = DirClose, Closed, m.in.ClosedLimit
		}
		m.autoCloseAt = time.Time{}
		if limit {
			// Already there: nothing to move.
			m.motorOff(at)
			if m.state != target {
				m.enter(target, at, ev.Cause)
			}
			if target == Open {
				m.scheduleAutoClose(at)
			}
			return nil
		}
		if (dir == DirOpen && m.state == Opening) || (dir == DirClose && (m.state == Closing || m.pre.phase != preNone)) {
			return nil // already on its way, or testing and warning first: not a second time
		}
		if dir == DirClose {
			m.beginClose(at, ev.Cause)
			return nil
		}
		m.cancelClose()
		m.startMotion(dir, at, ev.Cause)
	case CmdStop:
		m.personCommands()
		m.autoCloseAt = time.Time{}
		m.cancelClose()
		moving := m.motor != DirNone || m.pending != DirNone
		m.motorOff(at)
		if m.conflict() {
			return nil // stays in fault: the inputs still make no sense
		}
		next := m.restingState()
		if moving || m.state == Faulted || m.state != next {
			m.enter(next, at, ev.Cause)
		}
	case CmdAlarm:
		m.raiseAlarm(at)
	case CmdSilence:
		m.alarm, m.alarmUntil = false, time.Time{}
	default:
		return &RefusedError{Reason: ReasonUnknown, Msg: fmt.Sprintf("unknown command %q", ev.Cmd)}
	}
	return nil
}

// restingState is the state of a gate that is not moving, from its limits.
func (m *Machine) restingState() State {
	switch {
	case m.in.ClosedLimit:
		return Closed
	case m.in.OpenLimit:
		return Open
	}
	return Stopped
}

// startMotion sets off towards dir. Invariant 1: the other direction is
// switched off first, and a reversal waits reverse_delay so the motor stops
// before it is driven the other way (protects motor, gearbox and relays).
func (m *Machine) startMotion(dir Dir, at time.Time, c Cause) {
	state := Opening
	if dir == DirClose {
		state = Closing
	}
	m.enter(state, at, c)
	m.autoCloseAt = time.Time{}
	if dir == DirOpen {
		m.count.Openings++
	}
	if m.motor == dir {
		return
	}
	m.motorOff(at)
	if m.lastDir != DirNone && m.lastDir != dir && at.Before(m.lastOff.Add(m.p.ReverseDelay)) {
		m.pending, m.pendingAt = dir, m.lastOff.Add(m.p.ReverseDelay)
		return
	}
	m.energise(dir, at)
}

func (m *Machine) energise(dir Dir, at time.Time) {
	m.motor, m.pending, m.pendingAt = dir, DirNone, time.Time{}
	m.travelBy = at.Add(m.p.TravelTimeout)
}

func (m *Machine) motorOff(at time.Time) {
	if m.motor != DirNone {
		m.lastDir, m.lastOff = m.motor, at
	}
	m.motor, m.pending, m.pendingAt, m.travelBy = DirNone, DirNone, time.Time{}, time.Time{}
}

func (m *Machine) raiseAlarm(at time.Time) {
	m.alarm = true
	m.alarmUntil = time.Time{}
	if m.p.AlarmDuration > 0 {
		m.alarmUntil = at.Add(m.p.AlarmDuration)
	}
}

func (m *Machine) scheduleAutoClose(at time.Time) {
	if m.p.AutoClose > 0 && !m.suspended && !m.eyeBad {
		m.autoCloseAt = at.Add(m.p.AutoClose)
	}
}

// expire handles every deadline up to at, earliest first, each at its own
// time.
func (m *Machine) expire(at time.Time) {
	for i := 0; i < 16; i++ { // each pass clears or moves a deadline; 16 is ample
		d, ok := m.Deadline()
		if !ok || d.After(at) {
			return
		}
		switch {
		case m.pending != DirNone && !m.pendingAt.After(d):
			m.energise(m.pending, m.pendingAt)
		case m.motor != DirNone && !m.travelBy.After(d):
			// Invariant 2: a motion that does not reach its limit in time
			// means a jam, a broken switch or a slipping clutch.
			m.motorOff(d)
			m.enter(Faulted, d, CauseTimeout)
			m.fault = FaultTravel
			m.raiseAlarm(d)
		case m.alarm && !m.alarmUntil.IsZero() && !m.alarmUntil.After(d):
			m.alarm, m.alarmUntil = false, time.Time{}
		case m.pre.phase != preNone && !m.pre.until.After(d):
			m.preDeadline(d)
		case !m.autoCloseAt.IsZero() && !m.autoCloseAt.After(d):
			m.autoCloseAt = time.Time{}
			switch {
			case m.state != Open:
			case m.in.Obstructed:
				// Wait for a clear gateway. The inputs cannot change before
				// at, so skip the restarts up to at in one go: a late event
				// must not leave a deadline in the past.
				gap := at.Sub(d)
				m.autoCloseAt = d.Add(gap - gap%m.p.AutoClose).Add(m.p.AutoClose)
			default:
				// A warning or a self-test starts at the time of the event,
				// not of the deadline: a tick that comes late must not
				// shorten (or skip) the warning by its lateness.
				from := d
				if m.p.EyeTest > 0 || m.warnFor(CauseAutoClose) > 0 {
					from = at
				}
				m.beginClose(from, CauseAutoClose)
			}
		}
	}
}

func (m *Machine) inputs(ev MachineEvent) {
	at, old, in := ev.At, m.in, ev.Inputs
	m.in = in
	limitsChanged := old.OpenLimit != in.OpenLimit || old.ClosedLimit != in.ClosedLimit

	// Invariant 4: both limits at once is a broken switch or wiring; no
	// motion can be trusted.
	if m.conflict() {
		m.motorOff(at)
		m.autoCloseAt = time.Time{}
		m.cancelClose()
		if m.fault != FaultLimitConflict {
			m.enter(Faulted, at, CauseInput)
			m.fault = FaultLimitConflict
		}
		return
	}
	if m.state == Faulted {
		// Invariant 8: fault is left when the inputs make sense again.
		if limitsChanged && in.OpenLimit != in.ClosedLimit {
			m.motorOff(at)
			m.enter(m.restingState(), at, CauseInput)
			if m.state == Open {
				m.scheduleAutoClose(at)
			}
		}
		return
	}

	if limitsChanged {
		// Pushed by hand, or a limit reached: a close still being tested
		// or warned of was asked of a gate that is no longer where it was.
		m.cancelClose()
	}
	if m.Testing() {
		// The self-test cuts the beam itself: it is not an obstruction.
		m.testInput(at)
	} else if in.Obstructed != old.Obstructed {
		if in.Obstructed && m.state == Closing {
			// Invariant 3: an obstruction while closing stops and re-opens.
			m.count.Obstructions++
			m.strike()
			m.startMotion(DirOpen, at, CauseInput)
		}
		if in.Obstructed && m.pre.phase == preWarn {
			m.obstructedWarning(at)
		}
		if m.state == Open && !m.autoCloseAt.IsZero() {
			// The timer restarts on obstruction; one that stop cancelled
			// stays cancelled, or a passer-by would re-arm it.
			m.scheduleAutoClose(at)
		}
	}

	switch {
	case in.OpenLimit && !old.OpenLimit:
		// Reached open, or pushed there by hand, or (closing) a motor wired
		// the wrong way round: in every case the motor stops.
		m.motorOff(at)
		m.enter(Open, at, CauseInput)
		m.scheduleAutoClose(at)
	case in.ClosedLimit && !old.ClosedLimit:
		if m.state == Closing && m.cause == CauseAutoClose {
			m.strikes = 0 // an automatic close that worked: the strikes were not in a row
		}
		m.motorOff(at)
		m.enter(Closed, at, CauseInput)
		m.autoCloseAt = time.Time{}
	case !in.ClosedLimit && old.ClosedLimit && m.state == Closed:
		// Invariant 5: the gate left closed with no command of ours.
		m.enter(Stopped, at, CauseInput)
		if m.p.AlarmOnForcedOpen {
			m.raiseAlarm(at)
		}
	case !in.OpenLimit && old.OpenLimit && m.state == Open:
		m.enter(Stopped, at, CauseInput)
		m.autoCloseAt = time.Time{}
	}
}
