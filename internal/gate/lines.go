package gate

import (
	"time"

	"periph.io/x/conn/v3/gpio"
)

// Input names one of the gate's input lines.
type Input int8

// The input lines. The limits are always fitted; the obstruction sensor is
// optional (Fitted).
const (
	InOpenLimit Input = iota
	InClosedLimit
	InObstruction
	NumInputs
)

var inputNames = [NumInputs]string{"open_limit", "closed_limit", "obstruction"}

func (i Input) String() string {
	if i >= 0 && i < NumInputs {
		return inputNames[i]
	}
	return "input?"
}

// Output names one of the gate's output lines, as [gpio] names it. New
// outputs (a warning light, the photo eye's test output) are new names here:
// the controller drives every fitted output the same way.
type Output int8

// The output lines. Both motor outputs are always fitted; the others are
// optional (Fitted).
const (
	OutMotorOpen  Output = iota
	OutMotorClose        // with OutMotorOpen and OutMotorStop: the motor lines
	OutMotorStop         // pulse mode: the operator's stop input
	OutSiren
	OutWarning // the pre-close warning light or buzzer
	OutEyeTest // powers the photo eye's transmitter: on but during its self-test
	NumOutputs
)

var outputNames = [NumOutputs]string{"motor_open", "motor_close", "motor_stop", "siren", "warning", "obstruction_test"}

func (o Output) String() string {
	if o >= 0 && o < NumOutputs {
		return outputNames[o]
	}
	return "output?"
}

// motor reports whether o moves the gate: at most one motor line is on at a
// time (invariant 1).
func (o Output) motor() bool { return o == OutMotorOpen || o == OutMotorClose || o == OutMotorStop }

// Fitted says which optional lines a gate has.
type Fitted struct {
	Obstruction     bool
	MotorStop       bool
	Siren           bool
	Warning         bool
	ObstructionTest bool
}

// Fitted returns which optional pins are set.
func (p Pins) Fitted() Fitted {
	return Fitted{Obstruction: p.Obstruction != nil, MotorStop: p.MotorStop != nil, Siren: p.Siren != nil,
		Warning: p.Warning != nil, ObstructionTest: p.ObstructionTest != nil}
}

func (f Fitted) outputs() [NumOutputs]bool {
	return [NumOutputs]bool{OutMotorOpen: true, OutMotorClose: true, OutMotorStop: f.MotorStop, OutSiren: f.Siren,
		OutWarning: f.Warning, OutEyeTest: f.ObstructionTest}
}

// line is what the controller knows of an output line.
type line struct {
	on bool
	// unknown: the last Out on the line failed, so it may be in either
	// state (a relay that could not be released may still be energised).
	// The controller drives it again at every chance.
	unknown bool
	// offAt: when the line was last switched off from on or unknown; zero
	// if it never was.
	offAt time.Time
}

func (l line) knownOn() bool { return l.on && !l.unknown }

// debouncer accepts a level once it has held for the debounce time. periph's
// gpioutil.Debounce ignores its debounce argument, so this is ours.
type debouncer struct {
	stable  gpio.Level
	cand    gpio.Level
	pending bool
	at      time.Time // when cand becomes stable
}

func (d *debouncer) edge(l gpio.Level, now time.Time, wait time.Duration) {
	if l == d.stable {
		d.pending = false
		return
	}
	if !d.pending || l != d.cand {
		d.cand, d.at, d.pending = l, now.Add(wait), true
	}
}

// settle commits the candidate level once it has held long enough, and
// reports whether it did.
func (d *debouncer) settle(now time.Time) bool {
	if !d.pending || now.Before(d.at) {
		return false
	}
	d.pending, d.stable = false, d.cand
	return true
}
