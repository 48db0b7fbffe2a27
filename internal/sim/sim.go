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
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/pin"

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

// Controls are the words Control accepts: what <prefix>/sim takes.
var Controls = []string{"obstruct", "clear", "force_open", "jam", "unjam", "eye_stuck", "eye_ok"}

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
		const max = 32
		if len(cmd) > max {
			cmd = cmd[:max] + "…"
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

func (s *Gate) position() float64 { return float64(s.pos) / float64(s.span) }

func (s *Gate) openContact() bool   { return s.pos >= s.span-s.band }
func (s *Gate) closedContact() bool { return s.pos <= s.band }

// drive is the direction the motor is driven now.
func (s *Gate) drive() gate.Dir {
	if s.cfg.Pulse {
		return s.op
	}
	switch o, c := s.relay[outOpen], s.relay[outClose]; {
	case o && !c:
		return gate.DirOpen
	case c && !o:
		return gate.DirClose
	}
	return gate.DirNone // off, or a short: a reversing contactor pair cuts out
}

func (s *Gate) moving(d gate.Dir) bool {
	if s.jammed {
		return false
	}
	return (d == gate.DirOpen && s.pos < s.span) || (d == gate.DirClose && s.pos > 0)
}

// advance brings the model from s.at to now, handling the operator's own
// events (the end of a reverse pause, reaching an end) at their own times.
func (s *Gate) advance(now time.Time) {
	for {
		pending := s.opPending != gate.DirNone && !s.opPendingAt.After(now)
		to := now
		if pending {
			to = s.opPendingAt
		}
		s.move(to)
		if !pending {
			return
		}
		s.op, s.opPending = s.opPending, gate.DirNone
		s.noteMotor(s.at)
		s.stopAtEnd(s.at)
	}
}

// move moves the leaf at the current drive from s.at to t.
func (s *Gate) move(t time.Time) {
	d := int64(t.Sub(s.at))
	if d <= 0 {
		return
	}
	from := s.at
	s.at = t
	dir := s.drive()
	if s.jammed || dir == gate.DirNone {
		return
	}
	var room int64
	if dir == gate.DirOpen {
		room = s.span - s.pos
		s.pos += min(d, room)
	} else {
		room = s.pos
		s.pos -= min(d, room)
	}
	if d >= room {
		s.stopAtEnd(from.Add(time.Duration(room)))
	}
}

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

func (s *Gate) noteMotor(at time.Time) {
	if d := s.drive(); d != s.motor {
		// A stop at INFO, with the simulator's own position: what a person
		// trying position commands in -demo compares with gated's estimate.
		lvl := slog.LevelDebug
		if d == gate.DirNone {
			lvl = slog.LevelInfo
		}
		s.log.Log(context.Background(), lvl, "sim motor", "motor", d, "position", s.position(), "percent", fmt.Sprintf("%.1f", 100*s.position()))
		s.motor, s.motorSince = d, at
	}
}

// settle updates the input lines (signalling their edges) and sets the timer
// for the next event. Call it, under mu, after every change.
func (s *Gate) settle() {
	for _, p := range s.ins {
		if p == nil {
			continue
		}
		l := s.lineLevel(p)
		if l == p.level {
			continue
		}
		p.level = l
		s.log.Debug("sim input", "pin", p.name, "level", l, "position", s.position())
		if p.edge == gpio.BothEdges || (p.edge == gpio.RisingEdge && l == gpio.High) || (p.edge == gpio.FallingEdge && l == gpio.Low) {
			select {
			case p.edges <- struct{}{}:
			default: // an edge is already pending: edges do not accumulate
			}
		}
	}
	s.schedule()
}

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

func (s *Gate) outLevel(on bool) gpio.Level { return gpio.Level(on != s.cfg.OutputsActiveLow) }

// schedule sets the timer for the next event: a switch crossing, an end
// reached, or the end of the operator's reverse pause.
func (s *Gate) schedule() {
	next := int64(-1)
	consider := func(d int64) {
		if d > 0 && (next < 0 || d < next) {
			next = d
		}
	}
	if s.opPending != gate.DirNone {
		consider(max(int64(s.opPendingAt.Sub(s.at)), 1))
	}
	switch dir := s.drive(); {
	case s.jammed:
	case dir == gate.DirOpen:
		for _, b := range [...]int64{s.band + 1, s.span - s.band, s.span} {
			consider(b - s.pos)
		}
	case dir == gate.DirClose:
		for _, b := range [...]int64{s.span - s.band - 1, s.band, 0} {
			consider(s.pos - b)
		}
	}
	if next < 0 {
		s.stopTimer()
		return
	}
	wake := s.at.Add(time.Duration(next))
	if s.timer != nil && wake.Equal(s.wakeAt) {
		return
	}
	s.stopTimer()
	gen := s.gen
	s.wakeAt = wake
	s.timer = s.clk.AfterFunc(s.clk.Until(wake), func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if gen != s.gen {
			return // replaced while it fired
		}
		s.timer = nil
		s.advance(s.clk.Now())
		s.settle()
	})
}

func (s *Gate) stopTimer() {
	s.gen++
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
}

// setRelay energises or releases one output and lets the motor or the
// operator react.
func (s *Gate) setRelay(i output, on bool) {
	if s.relay[i] == on {
		return
	}
	s.relay[i] = on
	s.log.Debug("sim output", "pin", outputNames[i], "on", on, "position", s.position())
	if on {
		s.contacts[i]++
		if (i == outOpen || i == outClose) && s.relay[outOpen] && s.relay[outClose] {
			s.shorts++
			s.log.Warn("sim: both motor outputs energised", "shorts", s.shorts)
		}
		if s.cfg.Pulse {
			s.operatorContact(i)
		}
	}
	s.noteMotor(s.at)
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

// InPin is one of the gate's input lines: a limit switch or the obstruction
// sensor. It implements gpio.PinIn and pin.PinFunc.
type InPin struct {
	s     *Gate
	idx   input
	name  string
	edges chan struct{} // holds one edge not yet waited for

	// Under s.mu.
	pull  gpio.Pull
	edge  gpio.Edge
	level gpio.Level
	halt  chan struct{} // closed by In and Halt to end the waits in progress
}

// String implements conn.Resource.
func (p *InPin) String() string { return p.name }

// Name implements pin.Pin.
func (p *InPin) Name() string { return p.name }

// Number implements pin.Pin.
func (p *InPin) Number() int { return int(p.idx) }

// Function implements pin.Pin.
func (p *InPin) Function() string { return string(p.Func()) }

// Func implements pin.PinFunc.
func (p *InPin) Func() pin.Func {
	if p.Read() {
		return gpio.IN_HIGH
	}
	return gpio.IN_LOW
}

// SupportedFuncs implements pin.PinFunc.
func (p *InPin) SupportedFuncs() []pin.Func { return []pin.Func{gpio.IN} }

// SetFunc implements pin.PinFunc; an input stays an input.
func (p *InPin) SetFunc(f pin.Func) error {
	if f == gpio.IN {
		return nil
	}
	return fmt.Errorf("sim %s: cannot set function %s: the line is an input", p.name, f)
}

// Halt implements conn.Resource: it ends a WaitForEdge in progress, which
// returns false.
func (p *InPin) Halt() error {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	close(p.halt)
	p.halt = make(chan struct{})
	return nil
}

// In implements gpio.PinIn. The pull decides the level of an open contact;
// edge says which edges WaitForEdge reports. It discards a pending edge and
// ends a WaitForEdge in progress.
func (p *InPin) In(pull gpio.Pull, edge gpio.Edge) error {
	if pull > gpio.PullUp {
		return fmt.Errorf("sim %s: unknown pull %d", p.name, pull)
	}
	if edge < gpio.NoEdge || edge > gpio.BothEdges {
		return fmt.Errorf("sim %s: unknown edge %d", p.name, edge)
	}
	s := p.s
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance(s.clk.Now())
	s.settle()
	if pull != gpio.PullNoChange {
		p.pull = pull
	}
	p.edge = edge
	p.level = s.lineLevel(p)
	select {
	case <-p.edges:
	default:
	}
	close(p.halt)
	p.halt = make(chan struct{})
	return nil
}

// Read implements gpio.PinIn.
func (p *InPin) Read() gpio.Level {
	s := p.s
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance(s.clk.Now())
	s.settle()
	return p.level
}

// WaitForEdge implements gpio.PinIn. It returns true at once if an edge of
// the kind In asked for happened since the last call, else it waits for one:
// up to timeout on the gate's clock, or, for a negative timeout, until an
// edge, In or Halt. It returns false on timeout or when In or Halt ended the
// wait. Edges do not accumulate: several since the last call count as one.
func (p *InPin) WaitForEdge(timeout time.Duration) bool {
	s := p.s
	s.mu.Lock()
	s.advance(s.clk.Now())
	s.settle()
	halt := p.halt
	s.mu.Unlock()
	select {
	case <-p.edges:
		return true
	default:
	}
	if timeout == 0 {
		return false
	}
	var tc <-chan time.Time
	if timeout > 0 {
		t := s.clk.NewTimer(timeout)
		defer t.Stop()
		tc = t.Chan()
	}
	select {
	case <-p.edges:
		return true
	case <-halt:
		return false
	case <-tc:
		return false
	}
}

// Pull implements gpio.PinIn.
func (p *InPin) Pull() gpio.Pull {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	return p.pull
}

// DefaultPull implements gpio.PinIn: the simulated lines have no pull until
// In sets one.
func (p *InPin) DefaultPull() gpio.Pull { return gpio.PullNoChange }

// OutPin is one of the gate's outputs: a motor or siren relay, or one of a
// pulse-mode operator's inputs. It implements gpio.PinOut and pin.PinFunc.
type OutPin struct {
	s    *Gate
	idx  output
	name string

	level gpio.Level // under s.mu
}

// String implements conn.Resource.
func (p *OutPin) String() string { return p.name }

// Name implements pin.Pin.
func (p *OutPin) Name() string { return p.name }

// Number implements pin.Pin.
func (p *OutPin) Number() int { return int(numInputs) + int(p.idx) }

// Function implements pin.Pin.
func (p *OutPin) Function() string { return string(p.Func()) }

// Func implements pin.PinFunc.
func (p *OutPin) Func() pin.Func {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	if p.level {
		return gpio.OUT_HIGH
	}
	return gpio.OUT_LOW
}

// SupportedFuncs implements pin.PinFunc.
func (p *OutPin) SupportedFuncs() []pin.Func { return []pin.Func{gpio.OUT} }

// SetFunc implements pin.PinFunc; an output stays an output.
func (p *OutPin) SetFunc(f pin.Func) error {
	if f == gpio.OUT {
		return nil
	}
	return fmt.Errorf("sim %s: cannot set function %s: the line is an output", p.name, f)
}

// Halt implements conn.Resource. It has no effect: an output keeps its level
// until Out changes it, as on a real GPIO line.
func (p *OutPin) Halt() error { return nil }

// Out implements gpio.PinOut: l energises the output when it is the active
// level (High, or Low with OutputsActiveLow). On an output made to fail it
// fails and changes nothing.
func (p *OutPin) Out(l gpio.Level) error {
	s := p.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failOut[p.idx] {
		return fmt.Errorf("sim %s: %w", p.name, ErrOutputFailed)
	}
	s.advance(s.clk.Now())
	p.level = l
	s.setRelay(p.idx, bool(l) != s.cfg.OutputsActiveLow)
	s.settle()
	return nil
}

// PWM implements gpio.PinOut; relays are on or off, so it always fails.
func (p *OutPin) PWM(duty gpio.Duty, f physic.Frequency) error {
	return fmt.Errorf("sim %s: PWM %s at %s: not supported by a relay output", p.name, duty, f)
}

// ErrOutputFailed is the error of Out on an output made to fail by
// FailOutputs or FailOutput.
var ErrOutputFailed = errors.New("simulated output failure")

var (
	_ gpio.PinIn  = (*InPin)(nil)
	_ gpio.PinOut = (*OutPin)(nil)
	_ pin.PinFunc = (*InPin)(nil)
	_ pin.PinFunc = (*OutPin)(nil)
)
