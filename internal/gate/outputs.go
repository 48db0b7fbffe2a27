package gate

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"periph.io/x/conn/v3/gpio"
)

// outputs drives the output pins from the machine's Outputs. Levels are kept
// here, never read back: Read on an output line turns it into an input.
type outputs struct {
	cfg  *Config
	pins *Pins
	log  *slog.Logger

	motor Dir  // what the motor outputs were last driven to; dirUnknown after a failure
	siren bool // siren relay state
	// sirenUnknown: driving the siren failed, so its relay may be in either
	// state; the next set drives it again.
	sirenUnknown bool

	pulsePin  gpio.PinOut // pulse mode: the pin held for the current pulse
	pulseEnd_ time.Time
}

func (o *outputs) level(on bool) gpio.Level { return gpio.Level(on != o.cfg.OutputsActiveLow) }

func (o *outputs) out(name string, p gpio.PinOut, on bool) error {
	if p == nil {
		return nil
	}
	if err := p.Out(o.level(on)); err != nil {
		return fmt.Errorf("gpio %s %s: %w", name, p, err)
	}
	return nil
}

// dirUnknown is o.motor after driving the motor outputs failed: a relay may
// be in either state, so the next set drives them all again, whatever the
// machine wants.
const dirUnknown Dir = -1

// set drives the outputs to want. Invariant 1: whatever is switched on, the
// other direction is switched off first, in the same call, and nothing is
// switched on unless both directions were switched off: a relay that could
// not be released may still be energised. An output that failed is driven
// again on the next call, so a relay board that answers again gets the state
// the machine wants.
func (o *outputs) set(want Outputs, now time.Time) error {
	var errs []error
	if want.Motor != o.motor {
		var err error
		if o.cfg.OutputMode == Pulse {
			err = o.pulse(want.Motor, now)
		} else {
			// Off first, then on: the two directions never overlap.
			err = errors.Join(
				o.out("motor_open", o.pins.MotorOpen, false),
				o.out("motor_close", o.pins.MotorClose, false))
			switch {
			case err != nil:
			case want.Motor == DirOpen:
				err = o.out("motor_open", o.pins.MotorOpen, true)
			case want.Motor == DirClose:
				err = o.out("motor_close", o.pins.MotorClose, true)
			}
		}
		o.motor = want.Motor
		if err != nil {
			o.motor = dirUnknown
			errs = append(errs, err)
		}
	}
	if want.Siren != o.siren || o.sirenUnknown {
		err := o.out("siren", o.pins.Siren, want.Siren)
		o.siren, o.sirenUnknown = want.Siren, err != nil
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// pulse gives the operator a momentary contact on the input for dir. A pulse
// in progress is ended first, so two contacts never overlap.
func (o *outputs) pulse(dir Dir, now time.Time) error {
	err := o.endPulse(now.Add(time.Duration(1 << 62)))
	if err != nil && dir != DirNone {
		// The last contact may still be made: making another could give
		// the operator open and close at once. Stop may still be tried.
		return err
	}
	var name string
	var p gpio.PinOut
	switch dir {
	case DirOpen:
		name, p = "motor_open", o.pins.MotorOpen
	case DirClose:
		name, p = "motor_close", o.pins.MotorClose
	default:
		name, p = "motor_stop", o.pins.MotorStop
	}
	if p == nil {
		return err // no stop input: the operator stops at its own limits
	}
	o.pulsePin, o.pulseEnd_ = p, now.Add(o.cfg.PulseWidth)
	return errors.Join(err, o.out(name, p, true))
}

// pulseEnd returns when the current pulse ends.
func (o *outputs) pulseEnd() (time.Time, bool) { return o.pulseEnd_, o.pulsePin != nil }

// endPulse releases the pulse contact if its time is up by now.
func (o *outputs) endPulse(now time.Time) error {
	if o.pulsePin == nil || now.Before(o.pulseEnd_) {
		return nil
	}
	p := o.pulsePin
	o.pulsePin = nil
	return o.out("pulse", p, false)
}

// allOff switches every output off, trying each even if one fails.
func (o *outputs) allOff() error {
	o.pulsePin = nil
	o.motor, o.siren, o.sirenUnknown = DirNone, false, false
	return errors.Join(
		o.out("motor_open", o.pins.MotorOpen, false),
		o.out("motor_close", o.pins.MotorClose, false),
		o.out("motor_stop", o.pins.MotorStop, false),
		o.out("siren", o.pins.Siren, false))
}
