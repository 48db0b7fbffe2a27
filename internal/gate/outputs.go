package gate

import "time"

// The controller's output plan: which lines to drive, in which batch. The
// controller keeps the lines' levels itself and never reads them back: Read
// on an output line turns it into an input.

// want returns what every output line should be now.
func (c *Controller) want() [NumOutputs]bool {
	var w [NumOutputs]bool
	out := c.m.Outputs()
	// Without a warning pin the siren warns (SPEC.md: warning = "" is the
	// siren pin). The photo eye's transmitter is on but while the
	// self-test switches it off.
	w[OutSiren] = out.Siren || (out.Warning && !c.has[OutWarning])
	w[OutWarning] = out.Warning
	w[OutEyeTest] = !out.EyeOff
	if c.cfg.OutputMode == Pulse {
		if c.pulse.active {
			w[c.pulse.out] = true
		}
		return w
	}
	switch out.Motor {
	case DirOpen:
		w[OutMotorOpen] = true
	case DirClose:
		w[OutMotorClose] = true
	}
	return w
}

// sets returns the SetOutput actions of the next batch at time at, and
// takes them as done: what failed comes back with EvDriven. A line that
// failed before is driven again, so a relay board that answers again gets
// the state the gate wants. A line that must wait sets c.holdUntil if it
// waits for a time rather than for another batch.
func (c *Controller) sets(at time.Time) []Action {
	want := c.want()
	before := c.out
	c.holdUntil = time.Time{}
	var acts []Action
	for o := range NumOutputs {
		l := before[o]
		if !c.has[o] || (!l.unknown && l.on == want[o]) {
			continue
		}
		if want[o] {
			if ok, until := c.mayEnergise(o, before, at); !ok {
				if !until.IsZero() && (c.holdUntil.IsZero() || until.Before(c.holdUntil)) {
					c.holdUntil = until
				}
				continue
			}
		}
		acts = append(acts, SetOutput{Output: o, On: want[o]})
		next := line{on: want[o], offAt: l.offAt}
		if !want[o] && (l.on || l.unknown) {
			next.offAt = at
		}
		c.out[o] = next
	}
	return acts
}

// mayEnergise reports whether line o may be switched on at time at, the
// lines being as in before (what the previous batches did, not this one),
// and if not, until when it must wait (zero: until another batch).
//
// Invariant 1: a motor direction (or a pulse-mode contact) only while every
// other motor line is known to be off, so a release that failed is never
// followed by the other direction; and in hold mode, only reverse_delay
// after the other direction was switched off, counted from when its relay
// was released rather than from when the machine stopped the motor: a late
// tick or a relay that answered only at a later retry leaves the motor
// running longer than the machine knows. Stop is the exception: gate
// operators obey it over open and close, so it is made even next to a
// contact that could not be released, though one still known to be made is
// released first.
func (c *Controller) mayEnergise(o Output, before [NumOutputs]line, at time.Time) (bool, time.Time) {
	if !o.motor() {
		return true, time.Time{}
	}
	for x := range NumOutputs {
		if x == o || !x.motor() || !c.has[x] {
			continue
		}
		if before[x].knownOn() || (before[x].unknown && o != OutMotorStop) {
			return false, time.Time{}
		}
	}
	if c.cfg.OutputMode == Hold && o != OutMotorStop {
		other := OutMotorClose
		if o == OutMotorClose {
			other = OutMotorOpen
		}
		if off := before[other].offAt; !off.IsZero() {
			if until := off.Add(c.cfg.Params.ReverseDelay); at.Before(until) {
				return false, until
			}
		}
	}
	return true, time.Time{}
}

// startPulse, in pulse mode, makes the contact for the direction the machine
// wants when it is not the one last sent: open, close, or stop for none.
// A contact still made is released first (its pulse cut short), and the new
// one is made in the batch after that release worked, so two contacts never
// overlap.
func (c *Controller) startPulse(at time.Time) {
	dir := c.m.Outputs().Motor
	if c.cfg.OutputMode != Pulse || dir == c.opDir {
		return
	}
	o := OutMotorStop
	switch dir {
	case DirOpen:
		o = OutMotorOpen
	case DirClose:
		o = OutMotorClose
	}
	if c.pulse.active && c.pulse.out != o {
		c.pulse.active = false
	}
	if !c.has[o] {
		// No stop input: the operator stops at its own limits.
		c.opDir = dir
		return
	}
	if ok, _ := c.mayEnergise(o, c.out, at); !ok {
		return
	}
	c.pulse = pulse{active: true, out: o, until: at.Add(c.cfg.PulseWidth)}
	c.opDir = dir
}
