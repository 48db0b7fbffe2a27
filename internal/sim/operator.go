// The pulse-mode operator: its reaction to a contact and its stop at an end.

package sim

import (
	"time"

	"rocksaying.tw/gated/internal/gate"
)

// stopAtEnd stops the operator (pulse mode) that has reached the end it runs
// to: a real operator has limit switches (or a stall sensor) of its own. In
// hold mode the motor stays driven against the end stop until the gate
// releases its relay.
func (s *Gate) stopAtEnd(at time.Time) {
	if !s.cfg.Pulse {
		return
	}
	if (s.op == gate.DirOpen && s.pos == s.span) || (s.op == gate.DirClose && s.pos == 0) {
		s.op = gate.DirNone
		s.noteMotor(at)
	}
}

// operatorContact is the operator seeing a contact made on one of its
// inputs. It behaves like common slide and swing operators with separate
// open, close and stop inputs:
//   - stop stops it, and while stop is held it ignores open and close;
//   - open (close) starts it that way, and is ignored while it already runs
//     that way, while the other contact is still made, or at that end;
//   - open (close) while it runs the other way stops it, and it sets off the
//     new way after its reverse pause (Config.ReversePause), so its motor
//     never reverses under load; a contact during the pause changes where
//     it will go.
//
// It has no safety inputs of its own: every safety reaction seen in
// simulation is gated's.
func (s *Gate) operatorContact(i output) {
	if i == outStop {
		s.op, s.opPending = gate.DirNone, gate.DirNone
		return
	}
	if i != outOpen && i != outClose {
		return
	}
	dir, other, end := gate.DirOpen, gate.DirClose, s.span
	if i == outClose {
		dir, other, end = gate.DirClose, gate.DirOpen, 0
	}
	switch {
	case s.relay[outStop], s.relay[outOpen] && s.relay[outClose]:
	case s.op == dir:
	case s.opPending != gate.DirNone:
		s.opPending = dir
	case s.op == other:
		s.op = gate.DirNone
		if s.cfg.ReversePause < 0 {
			s.op = dir
		} else {
			s.opPending, s.opPendingAt = dir, s.at.Add(s.cfg.ReversePause)
		}
	case s.pos == end:
	default:
		s.op = dir
	}
}
