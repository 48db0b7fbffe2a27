package gatetest

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/pin"

	"rocksaying.tw/gated/internal/gate"
)

// InPin is an input line held by a switch the test works: Set changes the
// level and makes an edge. Unlike periph's gpiotest.Pin, In does not let the
// pull change the level (the switch holds it), and WaitForEdge waits on the
// pin's clock with a timer it stops, so a fake clock's waiters are exactly
// the waits in progress. It implements gpio.PinIn.
type InPin struct {
	N   string
	clk clockwork.Clock

	edges chan struct{} // one edge not yet waited for; edges do not accumulate

	mu    sync.Mutex
	level gpio.Level
	pull  gpio.Pull
	halt  chan struct{} // closed by In and Halt to end the waits in progress
}

// NewInPin returns an input line at level l whose waits run on clk (nil:
// the real clock).
func NewInPin(name string, clk clockwork.Clock, l gpio.Level) *InPin {
	if clk == nil {
		clk = clockwork.NewRealClock()
	}
	return &InPin{N: name, clk: clk, edges: make(chan struct{}, 1), level: l, halt: make(chan struct{})}
}

// Set drives the line to l, as a switch would; a change is an edge.
func (p *InPin) Set(l gpio.Level) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.level == l {
		return
	}
	p.level = l
	select {
	case p.edges <- struct{}{}:
	default:
	}
}

// SetQuietly drives the line to l with no edge: an edge the driver missed
// (periph/host#78), which only a fresh Read sees.
func (p *InPin) SetQuietly(l gpio.Level) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.level = l
}

// String implements conn.Resource.
func (p *InPin) String() string { return p.N }

// Halt implements conn.Resource: it ends the waits in progress.
func (p *InPin) Halt() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	close(p.halt)
	p.halt = make(chan struct{})
	return nil
}

// Name implements pin.Pin.
func (p *InPin) Name() string { return p.N }

// Number implements pin.Pin.
func (p *InPin) Number() int { return -1 }

// Function implements pin.Pin.
func (p *InPin) Function() string { return string(gpio.IN) }

// In implements gpio.PinIn: it records the pull, drops a pending edge and
// ends the waits in progress.
func (p *InPin) In(pull gpio.Pull, _ gpio.Edge) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pull = pull
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
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.level
}

// WaitForEdge implements gpio.PinIn: true at once if an edge happened since
// the last call, else it waits for one up to timeout on the pin's clock
// (for ever if negative). False on timeout, In or Halt.
func (p *InPin) WaitForEdge(timeout time.Duration) bool {
	select {
	case <-p.edges:
		return true
	default:
	}
	if timeout == 0 {
		return false
	}
	p.mu.Lock()
	halt := p.halt
	p.mu.Unlock()
	var tc <-chan time.Time
	if timeout > 0 {
		t := p.clk.NewTimer(timeout)
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

// Pull implements gpio.PinIn: the pull In asked for.
func (p *InPin) Pull() gpio.Pull {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pull
}

// DefaultPull implements gpio.PinIn.
func (p *InPin) DefaultPull() gpio.Pull { return gpio.PullNoChange }

// OutPin is an output line that keeps the level it was last driven to and
// fails on demand, keeping its level then, like a relay that cannot be
// released. It implements gpio.PinOut.
type OutPin struct {
	N string

	mu    sync.Mutex
	level gpio.Level
	fail  error
	once  bool // fail only the next Out
	rec   *Recorder
}

// NewOutPin returns an output line at level l; rec, if set, sees every
// level it is driven to.
func NewOutPin(name string, l gpio.Level, rec *Recorder) *OutPin {
	return &OutPin{N: name, level: l, rec: rec}
}

// ErrRelay is the error of a failing OutPin unless Fail was given another.
var ErrRelay = errors.New("gatetest: relay driver not answering")

// Fail makes every Out fail with err (nil: ErrRelay) until Repair.
func (p *OutPin) Fail(err error) { p.setFail(err, false) }

// FailOnce makes the next Out fail with err (nil: ErrRelay).
func (p *OutPin) FailOnce(err error) { p.setFail(err, true) }

// Repair makes Out work again.
func (p *OutPin) Repair() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fail, p.once = nil, false
}

func (p *OutPin) setFail(err error, once bool) {
	if err == nil {
		err = ErrRelay
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fail, p.once = err, once
}

// Out implements gpio.PinOut.
func (p *OutPin) Out(l gpio.Level) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.fail; err != nil {
		if p.once {
			p.fail, p.once = nil, false
		}
		return err
	}
	p.level = l
	if p.rec != nil {
		p.rec.note(p.N, l)
	}
	return nil
}

// Read returns the level the line was last driven to (a test's look at the
// relay; the gate never reads an output back).
func (p *OutPin) Read() gpio.Level {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.level
}

// String implements conn.Resource.
func (p *OutPin) String() string { return p.N }

// Halt implements conn.Resource; an output keeps its level.
func (p *OutPin) Halt() error { return nil }

// Name implements pin.Pin.
func (p *OutPin) Name() string { return p.N }

// Number implements pin.Pin.
func (p *OutPin) Number() int { return -1 }

// Function implements pin.Pin.
func (p *OutPin) Function() string { return string(gpio.OUT) }

// PWM implements gpio.PinOut; a relay is on or off.
func (p *OutPin) PWM(gpio.Duty, physic.Frequency) error {
	return fmt.Errorf("gatetest %s: PWM: a relay is on or off", p.N)
}

// Recorder sees every level the OutPins sharing it are driven to, in order.
type Recorder struct {
	mu       sync.Mutex
	level    map[string]gpio.Level
	log      []string
	together []string // "a+b": a made active while b was
	watch    map[string]bool
	active   gpio.Level
}

// NewRecorder returns a recorder that notes every moment at which two of the
// lines named in exclusive are at level active together (invariant 1 for
// the motor lines).
func NewRecorder(active gpio.Level, exclusive ...string) *Recorder {
	r := &Recorder{level: map[string]gpio.Level{}, watch: map[string]bool{}, active: active}
	for _, n := range exclusive {
		r.watch[n] = true
	}
	return r
}

func (r *Recorder) note(name string, l gpio.Level) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.level[name] = l
	r.log = append(r.log, fmt.Sprintf("%s=%v", name, l))
	if !r.watch[name] || l != r.active {
		return
	}
	for n, o := range r.level {
		if n != name && r.watch[n] && o == r.active {
			r.together = append(r.together, name+"+"+n)
		}
	}
}

// Together returns the moments two exclusive lines were active together.
func (r *Recorder) Together() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.together...)
}

// Log returns every level driven, as "name=level", in order.
func (r *Recorder) Log() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.log...)
}

// Lines is a full set of fake lines for a gate, outputs recorded by Rec.
type Lines struct {
	OpenLimit, ClosedLimit, Obstruction     *InPin
	MotorOpen, MotorClose, MotorStop, Siren *OutPin
	Rec                                     *Recorder
}

// NewLines returns input lines at level in and output lines at level out,
// with waits on clk; Rec watches the three motor lines for level active.
func NewLines(clk clockwork.Clock, in, out, active gpio.Level) *Lines {
	rec := NewRecorder(active, "motor_open", "motor_close", "motor_stop")
	return &Lines{
		OpenLimit:   NewInPin("open_limit", clk, in),
		ClosedLimit: NewInPin("closed_limit", clk, in),
		Obstruction: NewInPin("obstruction", clk, in),
		MotorOpen:   NewOutPin("motor_open", out, rec),
		MotorClose:  NewOutPin("motor_close", out, rec),
		MotorStop:   NewOutPin("motor_stop", out, rec),
		Siren:       NewOutPin("siren", out, rec),
		Rec:         rec,
	}
}

// Pins returns every line as the gate's pins.
func (l *Lines) Pins() gate.Pins {
	return gate.Pins{
		OpenLimit: l.OpenLimit, ClosedLimit: l.ClosedLimit, Obstruction: l.Obstruction,
		MotorOpen: l.MotorOpen, MotorClose: l.MotorClose, MotorStop: l.MotorStop, Siren: l.Siren,
	}
}

var (
	_ gpio.PinIn  = (*InPin)(nil)
	_ gpio.PinOut = (*OutPin)(nil)
	_ pin.Pin     = (*OutPin)(nil)
)
