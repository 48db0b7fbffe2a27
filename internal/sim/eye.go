// The input lines' levels: the limit switches' contacts and the photo eye.

package sim

import (
	"periph.io/x/conn/v3/gpio"
)

// lineLevel is the level on an input line. A closed contact drives the line
// to its active level; an open one leaves it to the pull resistor, so an
// active-low input needs a pull-up (gated asks for one), and with no pull set
// an external resistor holds the inactive level.
func (s *Gate) lineLevel(p *InPin) gpio.Level {
	var contact bool
	switch p.idx {
	case inOpen:
		contact = s.openContact()
	case inClosed:
		contact = s.closedContact()
	case inObstruction:
		// A normally-closed sensor's contact is closed while the beam is clear.
		contact = s.beamCut() != s.cfg.ObstructionNormallyClosed
	}
	active := gpio.Level(!s.cfg.InputsActiveLow)
	if contact {
		return active
	}
	switch p.pull {
	case gpio.PullUp:
		return gpio.High
	case gpio.PullDown:
		return gpio.Low
	}
	return !active
}

// beamCut is what the photo eye's receiver reports: the beam cut by
// something in it or by its transmitter being unpowered, or, while it is
// stuck, what it reported when it stuck.
func (s *Gate) beamCut() bool {
	if s.eyeStuck {
		return s.eyeCut
	}
	return s.obstructed || (s.outs[outEye] != nil && !s.relay[outEye])
}
