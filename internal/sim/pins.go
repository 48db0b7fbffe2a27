// The pins: InPin (limit switches, photo eye) and OutPin (relays, operator inputs).

package sim

import (
	"errors"
	"fmt"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/pin"
)

func (s *Gate) outLevel(on bool) gpio.Level { return gpio.Level(on != s.cfg.OutputsActiveLow) }

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
