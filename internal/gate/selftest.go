package gate

import (
	"log/slog"
	"time"
)

// The photo-eye self-test (UL 325 since 2016: external entrapment sensors
// are monitored, not just read). An eye whose receiver is stuck reporting
// "clear" would let the gate close on a person; switching the transmitter
// off must make the receiver report the beam cut, and switching it on again
// must clear it. Each half succeeds as soon as the (debounced) input
// follows, and fails if it has not after EyeTest, which the controller sets
// to obstruction_test_time plus the debounce time.
//
// A failed test refuses the close (ReasonSensorTest), puts the gate in fault
// sensor_test with the alarm, and keeps automatic closing off until a test
// passes: only a person's close runs one then.

// Testing reports whether the self-test is running. The controller holds
// the answer to a close until it is over.
func (m Machine) Testing() bool { return m.pre.phase == preEyeOff || m.pre.phase == preEyeOn }

// TestFailed reports whether the last self-test to end failed; a test cut
// short by stop, open or a limit switch did not.
func (m Machine) TestFailed() bool { return m.testFail }

// testInput follows the obstruction input during the test.
func (m *Machine) testInput(at time.Time) {
	switch {
	case m.pre.phase == preEyeOff && m.in.Obstructed && !at.After(m.pre.begun):
		// Seen in the instant the close began, before the transmitter
		// was switched off: a real obstruction (a late tick can bring the
		// timer and an input that settled before it together). The
		// close is off, as for an obstruction during the warning.
		m.obstructedWarning(at)
	case m.pre.phase == preEyeOff && m.in.Obstructed:
		m.pre.phase, m.pre.until = preEyeOn, at.Add(m.p.EyeTest)
	case m.pre.phase == preEyeOn && !m.in.Obstructed:
		m.testFail, m.eyeBad = false, false
		m.warn(at)
	}
}

// testFailed: the input did not follow the transmitter in time.
func (m *Machine) testFailed(at time.Time) {
	m.pre = preClose{}
	m.testFail, m.eyeBad = true, true
	m.motorOff(at)
	m.autoCloseAt = time.Time{}
	m.enter(Faulted, at, CauseInput)
	m.fault = FaultSensorTest
	m.raiseAlarm(at)
}

// answerHeld answers the closes that waited for the self-test, once it is
// over: refused if it failed, else accepted (the status says what came of
// them: a warning, a motion, or nothing if stop or open cut the test short).
func (c *Controller) answerHeld(acts []Action) []Action {
	if len(c.held) == 0 || c.m.Testing() {
		return acts
	}
	var err error
	switch {
	case c.m.TestFailed():
		err = &RefusedError{Reason: ReasonSensorTest, Msg: "the photo eye failed its self-test: check the sensor and its wiring"}
	case c.roundErr != nil:
		// The test was cut short by outputs that did not follow (the
		// gate is in fault gpio): not ok.
		err = &RefusedError{Reason: ReasonFault, Msg: "the gate's outputs failed: " + c.roundErr.Error()}
	}
	for _, r := range c.held {
		acts = append(acts, Reply{Cmd: r.cmd, Cause: r.cause, Who: r.who, Target: r.target, Status: c.last, Err: err, Later: true})
	}
	c.held = nil
	return acts
}

// logSuspension logs when automatic closing is suspended or resumes.
func (c *Controller) logSuspension(acts []Action) []Action {
	strikes, eye := c.m.Suspended()
	switch {
	case strikes && !c.toldStrikes:
		acts = append(acts, Log{Level: slog.LevelWarn, Msg: "two obstruction reversals in a row during automatic closes: auto_close suspended until a person commands the gate"})
	case !strikes && c.toldStrikes:
		acts = append(acts, Log{Level: slog.LevelInfo, Msg: "auto_close resumed: a person commanded the gate"})
	}
	switch {
	case eye && !c.toldEye:
		acts = append(acts, Log{Level: slog.LevelError, Msg: "the photo eye failed its self-test: gate in fault, auto_close off until a test passes"})
	case !eye && c.toldEye:
		acts = append(acts, Log{Level: slog.LevelInfo, Msg: "the photo eye passed its self-test"})
	}
	c.toldStrikes, c.toldEye = strikes, eye
	return acts
}
