package sim_test

// A little over 450 lines: the simulated gate's behaviour table, one case a row.

import (
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/jonboulle/clockwork"
	"periph.io/x/conn/v3/gpio"

	"rocksaying.tw/gated/internal/gate"
	"rocksaying.tw/gated/internal/sim"
)

var epoch = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// travel is the test gate's travel time: 10 s, so 1% of travel is 100 ms.
const travel = 10 * time.Second

func newSim(t *testing.T, cfg sim.Config) (*sim.Gate, *clockwork.FakeClock) {
	t.Helper()
	clk := clockwork.NewFakeClockAt(epoch)
	if cfg.TravelTime == 0 {
		cfg.TravelTime = travel
	}
	return sim.New(cfg, clk), clk
}

// set energises (on) or releases an output, at the level its wiring asks for.
func set(t *testing.T, cfg sim.Config, p gpio.PinOut, on bool) {
	t.Helper()
	if err := p.Out(gpio.Level(on != cfg.OutputsActiveLow)); err != nil {
		t.Fatalf("%s.Out: %v", p, err)
	}
}

// pulse makes and breaks a contact, as gated does in pulse mode.
func pulse(t *testing.T, cfg sim.Config, clk *clockwork.FakeClock, p gpio.PinOut) {
	t.Helper()
	set(t, cfg, p, true)
	clk.Advance(500 * time.Millisecond)
	set(t, cfg, p, false)
}

func near(got, want float64) bool { return math.Abs(got-want) < 1e-9 }

// inputs sets up the limit inputs as gated does: the pull that keeps an open
// contact inactive, both edges.
func inputs(t *testing.T, cfg sim.Config, pins ...gpio.PinIn) {
	t.Helper()
	pull := gpio.PullDown
	if cfg.InputsActiveLow {
		pull = gpio.PullUp
	}
	for _, p := range pins {
		if err := p.In(pull, gpio.BothEdges); err != nil {
			t.Fatalf("%s.In: %v", p, err)
		}
	}
}

func TestTravelTime(t *testing.T) {
	for _, tc := range []struct {
		name     string
		start    float64
		dir      gate.Dir
		half, at float64 // positions after travel/2 and after travel
	}{
		{"open", 0, gate.DirOpen, 0.5, 1},
		{"close", 1, gate.DirClose, 0.5, 0},
		{"open from a quarter", 0.25, gate.DirOpen, 0.75, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := sim.Config{Start: tc.start, OutputsActiveLow: true}
			s, clk := newSim(t, cfg)
			p := s.Pins().MotorOpen
			if tc.dir == gate.DirClose {
				p = s.Pins().MotorClose
			}
			set(t, cfg, p, true)
			clk.Advance(travel / 2)
			sn := s.Snapshot()
			if !near(sn.Position, tc.half) || sn.Motor != tc.dir || !sn.Moving {
				t.Errorf("after half the travel time: got position %v motor %v moving %v, want %v %v true", sn.Position, sn.Motor, sn.Moving, tc.half, tc.dir)
			}
			clk.Advance(travel)
			sn = s.Snapshot()
			// Hold mode: the motor stays driven against the end stop.
			if !near(sn.Position, tc.at) || sn.Motor != tc.dir || sn.Moving {
				t.Errorf("after the travel time: got position %v motor %v moving %v, want %v %v false", sn.Position, sn.Motor, sn.Moving, tc.at, tc.dir)
			}
			set(t, cfg, p, false)
			if sn := s.Snapshot(); sn.Motor != gate.DirNone || !sn.MotorSince.Equal(clk.Now()) {
				t.Errorf("after release: got motor %v since %v, want off since %v", sn.Motor, sn.MotorSince, clk.Now())
			}
		})
	}
}

func TestLimitSwitches(t *testing.T) {
	band := time.Duration(sim.LimitBand * float64(travel))
	for _, lowActive := range []bool{false, true} {
		cfg := sim.Config{InputsActiveLow: lowActive}
		active := gpio.Level(!lowActive)
		s, clk := newSim(t, cfg)
		pins := s.Pins()
		inputs(t, cfg, pins.OpenLimit, pins.ClosedLimit)
		steps := []struct {
			at             time.Duration // since the motor started opening
			closed, opened bool
		}{
			{0, true, false},
			{band, true, false},
			{band + 1, false, false},
			{travel / 2, false, false},
			{travel - band - 1, false, false},
			{travel - band, false, true},
			{travel, false, true},
		}
		set(t, cfg, pins.MotorOpen, true)
		start := clk.Now()
		for _, st := range steps {
			clk.Advance(start.Add(st.at).Sub(clk.Now()))
			gotC, gotO := pins.ClosedLimit.Read() == active, pins.OpenLimit.Read() == active
			if gotC != st.closed || gotO != st.opened {
				t.Errorf("active-low %v, opening for %v: got closed %v open %v, want %v %v", lowActive, st.at, gotC, gotO, st.closed, st.opened)
			}
		}
		// And back: the switches release and trip at the same positions.
		set(t, cfg, pins.MotorOpen, false)
		set(t, cfg, pins.MotorClose, true)
		start = clk.Now()
		for i := len(steps) - 1; i >= 0; i-- {
			st := steps[i]
			clk.Advance(start.Add(travel - st.at).Sub(clk.Now()))
			gotC, gotO := pins.ClosedLimit.Read() == active, pins.OpenLimit.Read() == active
			if gotC != st.closed || gotO != st.opened {
				t.Errorf("active-low %v, closing at %v of travel: got closed %v open %v, want %v %v", lowActive, st.at, gotC, gotO, st.closed, st.opened)
			}
		}
	}
}

func TestJam(t *testing.T) {
	cfg := sim.Config{}
	s, clk := newSim(t, cfg)
	set(t, cfg, s.Pins().MotorOpen, true)
	clk.Advance(travel / 4)
	if err := s.Control("jam"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(travel)
	sn := s.Snapshot()
	if !near(sn.Position, 0.25) || sn.Motor != gate.DirOpen || sn.Moving || !sn.Jammed {
		t.Errorf("jammed: got position %v motor %v moving %v jammed %v, want 0.25 open false true", sn.Position, sn.Motor, sn.Moving, sn.Jammed)
	}
	if err := s.Control("unjam"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(travel / 4)
	if sn := s.Snapshot(); !near(sn.Position, 0.5) || !sn.Moving || sn.Jammed {
		t.Errorf("unjammed: got position %v moving %v jammed %v, want 0.5 true false", sn.Position, sn.Moving, sn.Jammed)
	}
}

func TestForceOpen(t *testing.T) {
	cfg := sim.Config{InputsActiveLow: true}
	s, _ := newSim(t, cfg)
	closed := s.Pins().ClosedLimit
	inputs(t, cfg, closed)
	if l := closed.Read(); l != gpio.Low {
		t.Fatalf("closed limit at 0: got %v, want Low (active)", l)
	}
	if err := s.Control("FORCE_OPEN "); err != nil {
		t.Fatal(err)
	}
	if l := closed.Read(); l != gpio.High {
		t.Errorf("closed limit after force_open: got %v, want High (released)", l)
	}
	if !closed.WaitForEdge(0) {
		t.Error("force_open: got no edge on the closed limit")
	}
	if p := s.Snapshot().Position; !near(p, sim.ForcedOpen) {
		t.Errorf("position after force_open: got %v, want %v", p, sim.ForcedOpen)
	}
	if err := s.Control("force_open"); err == nil || !strings.Contains(err.Error(), "not on its closed limit") {
		t.Errorf("force_open off the closed limit: got %v, want an error saying it is not on its closed limit", err)
	}
}

func TestControlErrors(t *testing.T) {
	s, _ := newSim(t, sim.Config{Start: 0.5})
	for _, c := range []string{"", "open", "obstructed", strings.Repeat("x", 100)} {
		err := s.Control(c)
		if err == nil {
			t.Errorf("Control(%q): got no error", c)
			continue
		}
		for _, w := range sim.Controls {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Control(%q): got %q, want it to name %q", c, err, w)
			}
		}
		if len(err.Error()) > 200 {
			t.Errorf("Control(long): got a %d-byte error, want it shortened", len(err.Error()))
		}
	}
	for _, c := range []string{"obstruct", "clear"} {
		if err := s.Control(c); err == nil || !strings.Contains(err.Error(), "no obstruction sensor") {
			t.Errorf("Control(%q) without a sensor: got %v, want an error saying there is no sensor", c, err)
		}
	}
	if sn := s.Snapshot(); !near(sn.Position, 0.5) || sn.Obstructed || sn.Jammed {
		t.Errorf("after bad controls: got %+v, want nothing changed", sn)
	}
}

func TestShorts(t *testing.T) {
	cfg := sim.Config{Start: 0.5}
	s, clk := newSim(t, cfg)
	pins := s.Pins()
	set(t, cfg, pins.MotorOpen, true)
	set(t, cfg, pins.MotorClose, true)
	clk.Advance(time.Second)
	sn := s.Snapshot()
	if sn.Shorts != 1 || sn.Motor != gate.DirNone || !near(sn.Position, 0.5) {
		t.Errorf("both relays: got shorts %d motor %v position %v, want 1 off 0.5", sn.Shorts, sn.Motor, sn.Position)
	}
	set(t, cfg, pins.MotorClose, false)
	clk.Advance(time.Second)
	if sn := s.Snapshot(); sn.Motor != gate.DirOpen || !near(sn.Position, 0.6) {
		t.Errorf("close released: got motor %v position %v, want open 0.6", sn.Motor, sn.Position)
	}
	set(t, cfg, pins.MotorClose, true)
	set(t, cfg, pins.MotorClose, true) // no change: not another short
	if got := s.Snapshot().Shorts; got != 2 {
		t.Errorf("shorts: got %d, want 2", got)
	}
	set(t, cfg, pins.MotorOpen, false)
	set(t, cfg, pins.MotorClose, false)
	set(t, cfg, pins.MotorClose, true)
	set(t, cfg, pins.MotorClose, false)
	set(t, cfg, pins.MotorOpen, true)
	if got := s.Snapshot().Shorts; got != 2 {
		t.Errorf("shorts after clean switching: got %d, want 2", got)
	}
}

func TestOutputs(t *testing.T) {
	for _, lowActive := range []bool{false, true} {
		cfg := sim.Config{OutputsActiveLow: lowActive, HasSiren: true, HasStop: true}
		s, _ := newSim(t, cfg)
		pins := s.Pins()
		if sn := s.Snapshot(); sn.MotorOpen || sn.MotorClose || sn.MotorStop || sn.Siren {
			t.Errorf("active-low %v, at start: got %+v, want every output off", lowActive, sn)
		}
		if err := pins.Siren.Out(gpio.Low); err != nil {
			t.Fatal(err)
		}
		if got := s.Snapshot().Siren; got != lowActive {
			t.Errorf("active-low %v, siren at Low: got energised %v, want %v", lowActive, got, lowActive)
		}
		if err := pins.Siren.PWM(gpio.DutyHalf, 0); err == nil {
			t.Error("PWM: got no error")
		}
		if got := pins.Siren.(*sim.OutPin).Func(); got != "Out/Low" {
			t.Errorf("Func: got %q, want Out/Low", got)
		}
	}
}

func TestFailOutputs(t *testing.T) {
	cfg := sim.Config{}
	s, clk := newSim(t, cfg)
	p := s.Pins().MotorOpen
	s.FailOutputs(true)
	err := p.Out(gpio.High)
	if !errors.Is(err, sim.ErrOutputFailed) || !strings.Contains(err.Error(), p.String()) {
		t.Errorf("Out while failing: got %v, want ErrOutputFailed naming %s", err, p)
	}
	clk.Advance(time.Second)
	if sn := s.Snapshot(); sn.MotorOpen || sn.Position != 0 {
		t.Errorf("after a failed Out: got relay %v position %v, want nothing changed", sn.MotorOpen, sn.Position)
	}
	s.FailOutputs(false)
	set(t, cfg, p, true)
	if !s.Snapshot().MotorOpen {
		t.Error("Out after FailOutputs(false): relay not energised")
	}
}

func TestFailOutput(t *testing.T) {
	cfg := sim.Config{HasSiren: true}
	s, _ := newSim(t, cfg)
	pins := s.Pins()
	set(t, cfg, pins.MotorClose, true)
	if err := s.FailOutput("motor_close", true); err != nil {
		t.Fatal(err)
	}
	if err := pins.MotorClose.Out(gpio.Low); !errors.Is(err, sim.ErrOutputFailed) {
		t.Errorf("releasing a failed relay: got %v, want ErrOutputFailed", err)
	}
	set(t, cfg, pins.Siren, true) // the others still work
	if sn := s.Snapshot(); !sn.MotorClose || !sn.Siren {
		t.Errorf("got motor_close %v siren %v, want both energised (the failed relay stuck on)", sn.MotorClose, sn.Siren)
	}
	if err := s.FailOutput("motor_closed", true); err == nil || !strings.Contains(err.Error(), "motor_close, motor_stop") {
		t.Errorf("FailOutput of a bad name: got %v, want an error naming the outputs", err)
	}
	if err := s.FailOutput("motor_close", false); err != nil {
		t.Fatal(err)
	}
	set(t, cfg, pins.MotorClose, false)
	if s.Snapshot().MotorClose {
		t.Error("after FailOutput(false): relay still energised")
	}
}

func TestPins(t *testing.T) {
	s, _ := newSim(t, sim.Config{})
	pins := s.Pins()
	if pins.Obstruction != nil || pins.MotorStop != nil || pins.Siren != nil {
		t.Errorf("absent pins: got %v %v %v, want nil interfaces", pins.Obstruction, pins.MotorStop, pins.Siren)
	}
	if pins.OpenLimit == nil || pins.ClosedLimit == nil || pins.MotorOpen == nil || pins.MotorClose == nil {
		t.Fatalf("required pins missing: %+v", pins)
	}
	s, _ = newSim(t, sim.Config{HasObstruction: true, HasStop: true, HasSiren: true})
	pins = s.Pins()
	seen := map[string]bool{}
	for _, name := range []string{pins.OpenLimit.Name(), pins.ClosedLimit.Name(), pins.Obstruction.Name(), pins.MotorOpen.Name(), pins.MotorClose.Name(), pins.MotorStop.Name(), pins.Siren.Name()} {
		if seen[name] || !strings.HasPrefix(name, "sim.") {
			t.Errorf("pin name %q: want unique names starting sim.", name)
		}
		seen[name] = true
	}
}

func TestPulseOperator(t *testing.T) {
	cfg := sim.Config{Pulse: true, HasStop: true, ReversePause: 300 * time.Millisecond}
	s, clk := newSim(t, cfg)
	pins := s.Pins()

	check := func(what string, pos float64, motor gate.Dir) {
		t.Helper()
		sn := s.Snapshot()
		if !near(sn.Position, pos) || sn.Motor != motor {
			t.Errorf("%s: got position %v motor %v, want %v %v", what, sn.Position, sn.Motor, pos, motor)
		}
	}
	pulse(t, cfg, clk, pins.MotorOpen) // 0.5 s of a 10 s travel
	check("open pulse", 0.05, gate.DirOpen)
	clk.Advance(travel)
	check("open end", 1, gate.DirNone) // the operator stops at its limit
	pulse(t, cfg, clk, pins.MotorOpen)
	check("open pulse at the open end", 1, gate.DirNone)

	pulse(t, cfg, clk, pins.MotorClose)
	check("close pulse", 0.95, gate.DirClose)
	clk.Advance(travel / 2)
	check("closing", 0.45, gate.DirClose)
	pulse(t, cfg, clk, pins.MotorStop)
	check("stop pulse", 0.45, gate.DirNone)

	// A reversal: the operator stops, pauses, then runs the other way.
	pulse(t, cfg, clk, pins.MotorClose)
	check("close again", 0.40, gate.DirClose)
	set(t, cfg, pins.MotorOpen, true)
	check("open while closing", 0.40, gate.DirNone)
	clk.Advance(300 * time.Millisecond)
	set(t, cfg, pins.MotorOpen, false)
	clk.Advance(200 * time.Millisecond)
	check("after the reverse pause", 0.42, gate.DirOpen)

	// Stop held inhibits the operator.
	set(t, cfg, pins.MotorStop, true)
	check("stop made", 0.42, gate.DirNone)
	pulse(t, cfg, clk, pins.MotorOpen)
	check("open while stop held", 0.42, gate.DirNone)
	set(t, cfg, pins.MotorStop, false)

	// Closes to the end and stops there, by itself.
	pulse(t, cfg, clk, pins.MotorClose)
	clk.Advance(travel)
	check("closed end", 0, gate.DirNone)
	sn := s.Snapshot()
	if sn.Shorts != 0 || sn.OpenContacts != 4 || sn.CloseContacts != 3 || sn.StopContacts != 2 {
		t.Errorf("contacts: got shorts %d open %d close %d stop %d, want 0 4 3 2", sn.Shorts, sn.OpenContacts, sn.CloseContacts, sn.StopContacts)
	}
}

// TestPulseOperatorEnd checks the operator's end-of-travel stop is an
// event: the open limit trips and the operator stops with nobody reading.
func TestPulseOperatorEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := sim.Config{Pulse: true, InputsActiveLow: true}
		s, clk := newSim(t, cfg)
		open := s.Pins().OpenLimit
		inputs(t, cfg, open)
		pulse(t, cfg, clk, s.Pins().MotorOpen)
		got := make(chan bool)
		go func() { got <- open.WaitForEdge(time.Hour) }()
		synctest.Wait()
		clk.Advance(travel)
		if !<-got {
			t.Fatal("no edge on the open limit")
		}
		sn := s.Snapshot()
		if sn.Motor != gate.DirNone || !sn.OpenLimit || !sn.MotorSince.Equal(epoch.Add(travel)) {
			t.Errorf("at the open end: got motor %v open limit %v since %v, want off true %v", sn.Motor, sn.OpenLimit, sn.MotorSince, epoch.Add(travel))
		}
	})
}

func TestStartClamped(t *testing.T) {
	for _, tc := range []struct{ start, want float64 }{{-1, 0}, {2, 1}, {math.NaN(), 0}, {0.3, 0.3}} {
		s, _ := newSim(t, sim.Config{Start: tc.start})
		if got := s.Snapshot().Position; !near(got, tc.want) {
			t.Errorf("Start %v: got position %v, want %v", tc.start, got, tc.want)
		}
	}
}

// TestConcurrent is for the race detector: every entry point at once.
func TestConcurrent(t *testing.T) {
	cfg := sim.Config{HasObstruction: true, HasSiren: true, TravelTime: 100 * time.Millisecond}
	s, clk := newSim(t, cfg)
	pins := s.Pins()
	inputs(t, cfg, pins.OpenLimit, pins.ClosedLimit, pins.Obstruction)
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 200; j++ {
				switch (i + j) % 6 {
				case 0:
					_ = pins.MotorOpen.Out(gpio.Level(j%2 == 0))
				case 1:
					_ = pins.MotorClose.Out(gpio.Level(j%3 == 0))
				case 2:
					_ = s.Control([]string{"obstruct", "clear", "jam", "unjam"}[j%4])
				case 3:
					pins.OpenLimit.WaitForEdge(0)
					pins.ClosedLimit.Read()
				case 4:
					s.Snapshot()
				case 5:
					clk.Advance(3 * time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
}
