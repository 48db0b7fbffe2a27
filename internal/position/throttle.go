package position

import "time"

// Interval is the shortest time between two publications of the position
// while the gate moves (SPEC.md: at most once a second).
const Interval = time.Second

// Throttle applies SPEC.md's rule for publishing the position (the retained
// <prefix>/position topic and PropertiesChanged of Position): a change is
// published at once while the motor is off, at most once per Interval while
// it runs, and the position is always published when the motor stops. An
// unchanged position is not published again, except at a stop; since the
// estimate is whole percent, nothing goes out faster than the gate moves.
//
// The zero value publishes its first reading. It is a value, like the
// Estimator, used by the one goroutine that owns the gate.
type Throttle struct {
	sent      bool // something was published
	pos       int
	known     bool
	at        time.Time // when it was published
	wasMoving bool
}

// Publish reports whether the reading (pos, known), taken at `at` with the
// motor running (moving) or not, is to be published now; when it says yes
// it records the reading as published. While it holds a change back, call
// it again at Next: the owner's timer, or the next event, whichever comes
// first.
func (t *Throttle) Publish(pos int, known, moving bool, at time.Time) bool {
	stopped := t.wasMoving && !moving
	t.wasMoving = moving
	if !known {
		pos = 0 // one unknown, whatever pos says
	}
	changed := !t.sent || pos != t.pos || known != t.known
	switch {
	case stopped:
	case !changed:
		return false
	case moving && t.sent && at.Sub(t.at) < Interval:
		return false
	}
	t.sent, t.pos, t.known, t.at = true, pos, known, at
	return true
}

// Next returns when a change held back by Publish may go out.
func (t *Throttle) Next() time.Time { return t.at.Add(Interval) }

// Reset makes the next Publish say yes whatever the reading: for a fresh
// connection, or Home Assistant announcing it is online.
func (t *Throttle) Reset() { t.sent = false }
