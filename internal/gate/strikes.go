package gate

import "time"

// Two strikes: a photo eye blocked by a parked car must not make the gate
// bounce off it every auto_close seconds forever. Two obstruction reversals
// in a row during automatic closes suspend automatic closing until a person
// commands the gate; an automatic close that reaches closed in between
// starts the count again.

// AutoCloseState is the status document's auto_close field.
type AutoCloseState string

// The auto_close values of SPEC.md.
const (
	AutoCloseOff       AutoCloseState = "off"       // auto_close not configured
	AutoCloseIdle      AutoCloseState = "idle"      // configured, no timer running
	AutoCloseArmed     AutoCloseState = "armed"     // the timer runs, or its close is being tested or warned of
	AutoCloseSuspended AutoCloseState = "suspended" // two strikes, or a failed self-test
)

// strikesToSuspend is how many reversals in a row suspend automatic closing.
const strikesToSuspend = 2

// strike counts an obstruction reversal; only those of automatic closes
// count.
func (m *Machine) strike() {
	if m.cause != CauseAutoClose {
		return
	}
	if m.strikes++; m.strikes >= strikesToSuspend {
		m.suspended = true
		m.autoCloseAt = time.Time{}
	}
}

// personCommands: an open, close or stop accepted from any source is a
// person at the gate, who lifts the suspension. (A refused one changes
// nothing, like every refused command.)
func (m *Machine) personCommands() { m.strikes, m.suspended = 0, false }

// Suspended reports whether automatic closing is suspended by two strikes
// (strikes) or by a failed self-test (eye).
func (m Machine) Suspended() (strikes, eye bool) { return m.suspended, m.eyeBad }

func (m Machine) autoCloseState() AutoCloseState {
	switch {
	case m.p.AutoClose <= 0:
		return AutoCloseOff
	case m.suspended || m.eyeBad:
		return AutoCloseSuspended
	case !m.autoCloseAt.IsZero() || (m.pre.phase != preNone && m.pre.cause == CauseAutoClose):
		return AutoCloseArmed
	}
	return AutoCloseIdle
}
