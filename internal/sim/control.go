// The /sim control words (Control) and the output failures (FailOutputs, FailOutput).

package sim

import (
	"fmt"
	"strings"
)

// Controls are the words Control accepts: what <prefix>/sim takes.
var Controls = []string{"obstruct", "clear", "force_open", "jam", "unjam", "eye_stuck", "eye_ok"}

// Control acts on the gate from outside, as a person or the weather would:
//
//   - "obstruct", "clear": something enters or leaves the photo eye's beam
//     (an error if the gate has no obstruction sensor);
//   - "eye_stuck": the photo eye's receiver sticks: it keeps reporting the
//     beam as it reports it now, whatever its transmitter or the beam do,
//     so a self-test fails and an obstruction goes unseen; "eye_ok": it
//     works again (both an error if the gate has no obstruction sensor);
//   - "force_open": the leaf is pushed off its closed limit to ForcedOpen (an
//     error if it is not on its closed limit);
//   - "jam": the leaf sticks; a driven motor runs but moves nothing;
//   - "unjam": it moves freely again.
//
// Words are case-insensitive and surrounding space is ignored. Any other word
// is an error naming the valid ones, and changes nothing.
func (s *Gate) Control(cmd string) error {
	w := strings.ToLower(strings.TrimSpace(cmd))
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance(s.clk.Now())
	defer s.settle() // before the unlock: defers run last in, first out
	switch w {
	case "obstruct", "clear":
		if s.ins[inObstruction] == nil {
			return fmt.Errorf("sim: %s: the simulated gate has no obstruction sensor", w)
		}
		s.obstructed = w == "obstruct"
	case "eye_stuck", "eye_ok":
		if s.ins[inObstruction] == nil {
			return fmt.Errorf("sim: %s: the simulated gate has no obstruction sensor", w)
		}
		if w == "eye_ok" {
			s.eyeStuck = false
		} else {
			s.eyeCut, s.eyeStuck = s.beamCut(), true // again: what it reports stuck
		}
	case "force_open":
		if s.pos > s.band {
			return fmt.Errorf("sim: force_open: the gate is not on its closed limit (position %.3f)", s.position())
		}
		s.pos = int64(ForcedOpen * float64(s.span))
	case "jam", "unjam":
		s.jammed = w == "jam"
	default:
		const shown = 32
		if len(cmd) > shown {
			cmd = cmd[:shown] + "…"
		}
		return fmt.Errorf("sim: unknown control %q: want one of %s", cmd, strings.Join(Controls, ", "))
	}
	s.log.Debug("sim control", "control", w, "position", s.position())
	return nil
}

// FailOutputs makes every output's Out fail (true), leaving the relays as
// they were, like a dead relay board or driver; false makes them work again.
func (s *Gate) FailOutputs(fail bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.failOut {
		s.failOut[i] = fail
	}
}

// FailOutput makes one output's Out fail (true) or work again (false), named
// as in [gpio]: motor_open, motor_close, motor_stop, siren or
// obstruction_test. A failing output keeps its relay as it was: a relay that
// cannot be released stays energised, like a welded contact or a dead driver
// transistor.
func (s *Gate) FailOutput(name string, fail bool) error {
	for i, n := range outputNames {
		if n == name {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.failOut[i] = fail
			return nil
		}
	}
	return fmt.Errorf("sim: no output %q: want one of %s", name, strings.Join(outputNames[:], ", "))
}
