package sim_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"periph.io/x/conn/v3/gpio"

	"rocksaying.tw/gated/internal/gate"
	"rocksaying.tw/gated/internal/sim"
)

// The photo eye with a test output ([gpio] obstruction_test): its own
// helpers, as the rest of the package's tests are being rewritten.

// eyeRig is a simulated gate with a testable photo eye, its obstruction
// input set up as gated sets it up (the pull that holds an open contact
// inactive, both edges).
type eyeRig struct {
	s   *sim.Gate
	clk *clockwork.FakeClock
	cfg sim.Config
	in  gpio.PinIn
	out gpio.PinOut
}

func newEyeRig(t *testing.T, cfg sim.Config) *eyeRig {
	t.Helper()
	cfg.HasObstruction, cfg.HasObstructionTest = true, true
	clk := clockwork.NewFakeClockAt(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC))
	s := sim.New(cfg, clk)
	r := &eyeRig{s: s, clk: clk, cfg: cfg, in: s.Pins().Obstruction, out: s.ObstructionTest()}
	if r.out == nil {
		t.Fatal("ObstructionTest() = nil with HasObstructionTest")
	}
	pull := gpio.PullDown
	if cfg.InputsActiveLow {
		pull = gpio.PullUp
	}
	if err := r.in.In(pull, gpio.BothEdges); err != nil {
		t.Fatal(err)
	}
	return r
}

// power switches the transmitter on or off, at the level the wiring asks for.
func (r *eyeRig) power(t *testing.T, on bool) {
	t.Helper()
	if err := r.out.Out(gpio.Level(on != r.cfg.OutputsActiveLow)); err != nil {
		t.Fatalf("obstruction_test Out: %v", err)
	}
}

func (r *eyeRig) control(t *testing.T, w string) {
	t.Helper()
	if err := r.s.Control(w); err != nil {
		t.Fatalf("Control(%q): %v", w, err)
	}
}

// active reports whether gated would read the obstruction input as active
// (obstructed): the line at its active level, with the sensor's contact
// open when normally closed.
func (r *eyeRig) active() bool {
	contact := r.in.Read() == gpio.Level(!r.cfg.InputsActiveLow)
	return contact != r.cfg.ObstructionNormallyClosed
}

func TestEyeFollowsItsTransmitter(t *testing.T) {
	for _, lowIn := range []bool{false, true} {
		for _, nc := range []bool{false, true} {
			for _, lowOut := range []bool{false, true} {
				cfg := sim.Config{InputsActiveLow: lowIn, ObstructionNormallyClosed: nc, OutputsActiveLow: lowOut}
				t.Run(fmt.Sprintf("inputs_active_low=%v nc=%v outputs_active_low=%v", lowIn, nc, lowOut), func(t *testing.T) {
					r := newEyeRig(t, cfg)
					if !r.active() {
						t.Error("transmitter off at start: obstruction inactive, want active (the beam is cut)")
					}
					for _, st := range []struct {
						power, obstructed, want bool
					}{
						{true, false, false},
						{false, false, true},
						{true, true, true},
						{false, true, true},
						{true, false, false},
					} {
						w := map[bool]string{true: "obstruct", false: "clear"}[st.obstructed]
						r.control(t, w)
						r.power(t, st.power)
						if got := r.active(); got != st.want {
							t.Errorf("transmitter on %v, %s: obstruction active %v, want %v", st.power, w, got, st.want)
						}
						if sn := r.s.Snapshot(); sn.EyePower != st.power || sn.Obstructed != st.obstructed {
							t.Errorf("snapshot EyePower %v Obstructed %v, want %v %v", sn.EyePower, sn.Obstructed, st.power, st.obstructed)
						}
					}
				})
			}
		}
	}
}

// A self-test as gated will run it: transmitter off, the input must go
// active (an edge), transmitter on, it must clear (an edge). A stuck eye
// fails it, and does not see an obstruction either.
func TestEyeSelfTest(t *testing.T) {
	cfg := sim.Config{InputsActiveLow: true, ObstructionNormallyClosed: true}
	r := newEyeRig(t, cfg)
	r.power(t, true)
	r.in.WaitForEdge(0) // the edge of switching it on at start
	selfTest := func() (off, on bool) {
		r.power(t, false)
		off = r.in.WaitForEdge(0) && r.active()
		r.clk.Advance(100 * time.Millisecond) // obstruction_test_time
		r.power(t, true)
		on = r.in.WaitForEdge(0) && !r.active()
		return off, on
	}
	if off, on := selfTest(); !off || !on {
		t.Errorf("working eye: active with the transmitter off %v, clear with it on %v; want both", off, on)
	}

	r.control(t, "eye_stuck")
	if off, on := selfTest(); off {
		t.Errorf("stuck eye: active with the transmitter off %v (on %v), want the test to fail", off, on)
	}
	r.control(t, "obstruct")
	if r.active() || r.in.WaitForEdge(0) {
		t.Error("stuck eye saw an obstruction")
	}
	if sn := r.s.Snapshot(); !sn.EyeStuck || !sn.Obstructed {
		t.Errorf("snapshot EyeStuck %v Obstructed %v, want both", sn.EyeStuck, sn.Obstructed)
	}

	r.control(t, "eye_ok")
	if !r.active() || !r.in.WaitForEdge(0) {
		t.Error("eye_ok: the eye does not report the obstruction in its beam")
	}
	r.control(t, "clear")
	if off, on := selfTest(); !off || !on {
		t.Errorf("eye_ok: active with the transmitter off %v, clear with it on %v; want both", off, on)
	}
	if sn := r.s.Snapshot(); sn.EyeStuck {
		t.Error("snapshot EyeStuck after eye_ok")
	}
}

// An eye that sticks while its transmitter is off (in the middle of a test)
// keeps reporting the beam cut.
func TestEyeStuckCut(t *testing.T) {
	r := newEyeRig(t, sim.Config{})
	r.power(t, false)
	r.control(t, "eye_stuck")
	r.control(t, "eye_stuck") // again: still what it reported when it stuck
	r.power(t, true)
	if !r.active() {
		t.Error("eye stuck with the beam cut reads clear once the transmitter is on")
	}
	r.control(t, "eye_ok")
	if r.active() {
		t.Error("eye_ok with the transmitter on and nothing in the beam: still active")
	}
}

// Without a test output the eye reports the beam alone, as before, and
// there is no test output; a gate without a sensor refuses the eye words.
func TestEyeWithoutTestOutput(t *testing.T) {
	s := sim.New(sim.Config{HasObstruction: true}, clockwork.NewFakeClock())
	if s.ObstructionTest() != nil {
		t.Error("ObstructionTest() is not nil without HasObstructionTest")
	}
	in := s.Pins().Obstruction
	if err := in.In(gpio.PullDown, gpio.BothEdges); err != nil {
		t.Fatal(err)
	}
	if in.Read() != gpio.Low {
		t.Error("no test output, beam clear: obstruction active")
	}
	if err := s.Control("eye_stuck"); err != nil {
		t.Fatal(err)
	}
	s.Control("obstruct")
	if in.Read() != gpio.Low {
		t.Error("stuck eye without a test output saw an obstruction")
	}

	bare := sim.New(sim.Config{}, clockwork.NewFakeClock())
	for _, w := range []string{"eye_stuck", "eye_ok"} {
		if err := bare.Control(w); err == nil || !strings.Contains(err.Error(), "no obstruction sensor") {
			t.Errorf("Control(%q) without a sensor: %v, want an error saying there is none", w, err)
		}
	}
	for _, w := range []string{"eye_stuck", "eye_ok"} {
		if !slices.Contains(sim.Controls, w) {
			t.Errorf("sim.Controls lacks %q", w)
		}
	}
	if err := bare.Control("eye"); err == nil || !strings.Contains(err.Error(), "eye_stuck, eye_ok") {
		t.Errorf("unknown control: %v, want the eye words named", err)
	}
}

// The test output is an output like the others: FailOutput makes it fail
// and leaves the transmitter as it was; it moves no motor, in pulse mode
// either.
func TestEyeOutput(t *testing.T) {
	r := newEyeRig(t, sim.Config{Pulse: true, HasStop: true, Start: 0.5})
	r.power(t, true)
	if err := r.s.FailOutput("obstruction_test", true); err != nil {
		t.Fatal(err)
	}
	if err := r.out.Out(gpio.Low); !errors.Is(err, sim.ErrOutputFailed) {
		t.Errorf("failed output: Out = %v, want ErrOutputFailed", err)
	}
	if sn := r.s.Snapshot(); !sn.EyePower || r.active() {
		t.Errorf("after a failed Out: EyePower %v, obstruction active %v; want the transmitter still on", sn.EyePower, r.active())
	}
	r.clk.Advance(time.Second)
	if sn := r.s.Snapshot(); sn.Motor != gate.DirNone || sn.Moving {
		t.Errorf("the test output moved the gate: motor %v moving %v", sn.Motor, sn.Moving)
	}
}
