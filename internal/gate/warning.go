package gate

import "time"

// The way to a close: the photo-eye self-test (selftest.go), then the
// pre-close warning, then the motor. The test comes first so that a close
// refused for a broken eye never sounds a warning, and so that the answer to
// a close can say whether it was refused (it waits for the test, a fraction
// of a second) without waiting for the warning (seconds).
//
// 16 CFR 1211.14 (UL 325's rule for automatic closing) asks for an audible
// and visual alarm at least 5 s before an unattended close: a person in the
// gateway gets the time to step out of it.

// prePhase is where a close is on its way to the motor.
type prePhase int8

const (
	preNone   prePhase = iota
	preEyeOff          // self-test: transmitter off, the input must go active
	preEyeOn           // self-test: transmitter on again, the input must clear
	preWarn            // the warning output is on
)

// preClose is a close waiting for its self-test or warning.
type preClose struct {
	phase prePhase
	until time.Time // the phase ends then: the warning is over, or the test failed
	cause Cause     // of the close
	begun time.Time // when the close began
}

// warnFor is how long the warning runs before a close with cause c.
func (m *Machine) warnFor(c Cause) time.Duration {
	switch c {
	case CauseAutoClose:
		return m.p.WarnBeforeClose
	case CauseMQTT, CauseDBus, CauseWeb:
		if m.p.WarnOnRemoteClose {
			return m.p.WarnBeforeClose
		}
	}
	return 0
}

// beginClose sets off towards closed: the self-test and the warning first,
// when there are any, else the motor at once. A gate that is moving stops
// while they run, so that it does not go on opening through the warning;
// one in fault leaves it, as it would for a close with no warning.
func (m *Machine) beginClose(at time.Time, c Cause) {
	if m.p.EyeTest <= 0 && m.warnFor(c) <= 0 {
		m.startMotion(DirClose, at, c)
		return
	}
	m.autoCloseAt = time.Time{}
	if moving := m.motor != DirNone || m.pending != DirNone; moving || m.state == Faulted {
		m.motorOff(at)
		m.enter(m.restingState(), at, c)
	}
	m.pre = preClose{cause: c, begun: at}
	if m.p.EyeTest > 0 {
		m.pre.phase, m.pre.until = preEyeOff, at.Add(m.p.EyeTest)
		return
	}
	m.warn(at)
}

// warn starts the warning, or the motor when this close has none.
func (m *Machine) warn(at time.Time) {
	c := m.pre.cause
	if w := m.warnFor(c); w > 0 {
		m.pre.phase, m.pre.until = preWarn, at.Add(w)
		return
	}
	m.pre = preClose{}
	m.startMotion(DirClose, at, c)
}

// cancelClose drops a close still on its way to the motor: stop, open, a
// limit switch that moved, a fault.
func (m *Machine) cancelClose() {
	if m.Testing() {
		m.testFail = false // the test did not fail: it was cut short
	}
	m.pre = preClose{}
}

// obstructedWarning: something entered the gateway during the warning.
// The close is off; an automatic one is tried again auto_close later, as
// when the gateway is obstructed at the time it falls due.
func (m *Machine) obstructedWarning(at time.Time) {
	auto := m.pre.cause == CauseAutoClose
	m.pre = preClose{}
	if auto && m.state == Open {
		m.scheduleAutoClose(at)
	}
}

// preDeadline ends the phase whose time is up at d.
func (m *Machine) preDeadline(d time.Time) {
	switch m.pre.phase {
	case preEyeOff, preEyeOn:
		m.testFailed(d)
	case preWarn:
		c := m.pre.cause
		m.pre = preClose{}
		m.startMotion(DirClose, d, c)
	}
}
