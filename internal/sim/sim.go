// Package sim is a simulated gate behind periph's pin interfaces: a leaf that
// a motor moves end to end in Config.TravelTime and that trips its limit
// switches as a real one would. In hold mode the gate's outputs are the motor
// relays; in pulse mode they are the push-button inputs of a simulated gate
// operator. gated -simulate and -demo, and the tests, run the real gate
// package against it, in real or in fake (clockwork) time.
//
// The model is event-driven: it keeps the position at the time of its last
// change and the speed since, works out when the next switch changes or the
// operator acts, and sets one clock timer (clk.AfterFunc) for that moment.
// Every call (a Read, an Out, a Control, a Snapshot) first brings the model up
// to the clock's present, so a late timer never shows a stale switch.
package sim

import (
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	"periph.io/x/conn/v3/gpio"

	"rocksaying.tw/gated/internal/gate"
)

// Defaults for the zero values of Config.
const (
	DefaultTravelTime   = 8 * time.Second        // as [sim] travel_time
	DefaultReversePause = 300 * time.Millisecond // the operator's own pause before reversing
)

// Where the switches sit, as fractions of the travel.
const (
	// LimitBand is how far from its end a limit switch is active: the closed
	// limit at Position <= LimitBand, the open limit at Position >= 1-LimitBand.
	LimitBand = 0.005
	// ForcedOpen is where force_open leaves the leaf: off the closed limit,
	// as far as a person or a car pushes an unlocked gate.
	ForcedOpen = 0.05
)

// Config describes the simulated gate and how it is wired. The wiring fields
// mean what they mean in gated's [gpio] section, so a gate configured like
// the simulator reads and drives it correctly.
type Config struct {
	// TravelTime is how long the motor takes end to end; <= 0 means
	// DefaultTravelTime.
	TravelTime time.Duration
	// Pulse: the outputs are an operator's open, close and stop push-button
	// inputs (gated's output_mode = "pulse"), not motor relays.
	Pulse bool

	InputsActiveLow           bool // a closed switch pulls the line low
	OutputsActiveLow          bool // a relay (or contact) is energised by a low line
	ObstructionNormallyClosed bool // the sensor's contact is closed while the beam is clear

	HasObstruction bool // an obstruction sensor (photo eye) is fitted
	HasStop        bool // a stop output (pulse mode; in hold mode it is wired to nothing)
	HasSiren       bool // a siren relay is fitted

	// HasObstructionTest: an output powers the photo eye's transmitter
	// ([gpio] obstruction_test), so that gated can test the eye. With the
	// output off the beam is cut: the obstruction input reads active.
	HasObstructionTest bool

	// Start is the initial position, 0 = closed .. 1 = open; it is clamped
	// to [0, 1].
	Start float64

	// ReversePause is the operator's own pause before it reverses (pulse
	// mode); 0 means DefaultReversePause, a negative value reverses at once.
	ReversePause time.Duration

	// Log, if set, gets a debug line for every relay, contact and switch
	// change; nil logs nothing.
	Log *slog.Logger
}

// Snapshot is what the simulated gate is doing, at At.
type Snapshot struct {
	At       time.Time
	Position float64 // 0 = closed .. 1 = open
	// Motor is the direction the motor is driven: in hold mode the one
	// energised relay (DirNone when neither or both are), in pulse mode the
	// direction the operator runs. A jammed gate, or one held against its
	// end, has a driven motor that does not move it.
	Motor      gate.Dir
	MotorSince time.Time // when Motor last changed
	Moving     bool      // the leaf is actually moving

	OpenLimit, ClosedLimit bool // the limit switches' contacts are closed
	Jammed, Obstructed     bool

	// The outputs, as the simulator interprets their levels (per
	// OutputsActiveLow): true is energised (a relay pulled in, a contact
	// made). EyePower is the photo eye's transmitter output.
	MotorOpen, MotorClose, MotorStop, Siren, EyePower bool
	// EyeStuck: the photo eye's receiver is stuck (Control "eye_stuck").
	EyeStuck bool

	// Shorts counts the times both motor outputs were energised together
	// (invariant 1); in pulse mode, both of the operator's open and close
	// contacts made together. In hold mode the motor does not move while
	// both are energised.
	Shorts int
	// OpenContacts, CloseContacts and StopContacts count the times each
	// motor output was energised (in pulse mode: the pulses the operator saw).
	OpenContacts, CloseContacts, StopContacts int
}

type input int8

const (
	inOpen input = iota
	inClosed
	inObstruction
	numInputs
)

var inputNames = [numInputs]string{"open_limit", "closed_limit", "obstruction"}

type output int8

const (
	outOpen output = iota
	outClose
	outStop
	outSiren
	outEye // the photo eye's transmitter
	numOutputs
)

var outputNames = [numOutputs]string{"motor_open", "motor_close", "motor_stop", "siren", "obstruction_test"}

// Gate is a simulated gate. Its methods and its pins' methods may be called
// from any goroutine.
type Gate struct {
	cfg  Config
	clk  clockwork.Clock
	log  *slog.Logger
	span int64 // TravelTime in ns: positions are in ns of travel, so crossing times are exact
	band int64 // LimitBand of span

	ins  [numInputs]*InPin
	outs [numOutputs]*OutPin

	mu         sync.Mutex
	at         time.Time // the time pos is for
	pos        int64     // 0 (closed) .. span (open)
	relay      [numOutputs]bool
	contacts   [numOutputs]int
	shorts     int
	failOut    [numOutputs]bool
	jammed     bool
	obstructed bool // something is in the beam
	eyeStuck   bool // the receiver reports eyeCut, whatever the beam does
	eyeCut     bool

	op          gate.Dir // pulse mode: where the operator runs
	opPending   gate.Dir // pulse mode: where it runs after its reverse pause
	opPendingAt time.Time

	motor      gate.Dir // last seen drive(), for MotorSince and the log
	motorSince time.Time

	timer  clockwork.Timer
	wakeAt time.Time
	gen    uint64 // invalidates a timer that fires after it was replaced
}

// New returns a simulated gate at cfg.Start with every output off, on clock
// clk (nil: the real clock).
func New(cfg Config, clk clockwork.Clock) *Gate {
	if clk == nil {
		clk = clockwork.NewRealClock()
	}
	if cfg.TravelTime <= 0 {
		cfg.TravelTime = DefaultTravelTime
	}
	if cfg.ReversePause == 0 {
		cfg.ReversePause = DefaultReversePause
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Gate{cfg: cfg, clk: clk, log: log, span: int64(cfg.TravelTime)}
	s.band = int64(float64(s.span) * LimitBand)
	start := cfg.Start
	if math.IsNaN(start) {
		start = 0
	}
	s.pos = int64(math.Round(min(max(start, 0), 1) * float64(s.span)))
	s.at = clk.Now()
	s.motorSince = s.at
	for i := range s.ins {
		if input(i) == inObstruction && !cfg.HasObstruction {
			continue
		}
		p := &InPin{s: s, idx: input(i), name: "sim." + inputNames[i], edges: make(chan struct{}, 1), halt: make(chan struct{})}
		s.ins[i] = p
		p.level = s.lineLevel(p)
	}
	for i := range s.outs {
		if (output(i) == outStop && !cfg.HasStop) || (output(i) == outSiren && !cfg.HasSiren) ||
			(output(i) == outEye && !cfg.HasObstructionTest) {
			continue
		}
		s.outs[i] = &OutPin{s: s, idx: output(i), name: "sim." + outputNames[i], level: s.outLevel(false)}
	}
	return s
}

// Pins returns the gate's pins, the same ones on every call; the obstruction,
// stop and siren pins are nil when the gate has none.
func (s *Gate) Pins() gate.Pins {
	p := gate.Pins{
		OpenLimit:   s.ins[inOpen],
		ClosedLimit: s.ins[inClosed],
		MotorOpen:   s.outs[outOpen],
		MotorClose:  s.outs[outClose],
	}
	// Assigned only when present: a nil *InPin in an interface is not nil.
	if q := s.ins[inObstruction]; q != nil {
		p.Obstruction = q
	}
	if q := s.outs[outStop]; q != nil {
		p.MotorStop = q
	}
	if q := s.outs[outSiren]; q != nil {
		p.Siren = q
	}
	return p
}

// ObstructionTest returns the output that powers the photo eye's
// transmitter, the same one on every call; nil when Config.HasObstructionTest
// is false.
func (s *Gate) ObstructionTest() gpio.PinOut {
	if q := s.outs[outEye]; q != nil {
		return q
	}
	return nil // not a nil *OutPin in an interface
}

// Snapshot returns what the gate is doing now.
func (s *Gate) Snapshot() Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance(s.clk.Now())
	s.settle()
	d := s.drive()
	return Snapshot{
		At:            s.at,
		Position:      s.position(),
		Motor:         d,
		MotorSince:    s.motorSince,
		Moving:        s.moving(d),
		OpenLimit:     s.openContact(),
		ClosedLimit:   s.closedContact(),
		Jammed:        s.jammed,
		Obstructed:    s.obstructed,
		MotorOpen:     s.relay[outOpen],
		MotorClose:    s.relay[outClose],
		MotorStop:     s.relay[outStop],
		Siren:         s.relay[outSiren],
		EyePower:      s.relay[outEye],
		EyeStuck:      s.eyeStuck,
		Shorts:        s.shorts,
		OpenContacts:  s.contacts[outOpen],
		CloseContacts: s.contacts[outClose],
		StopContacts:  s.contacts[outStop],
	}
}
