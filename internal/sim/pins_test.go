package sim_test

// The simulated gate seen through its pins: edges, waits, wiring, pulls.

import (
	"testing"
	"testing/synctest"
	"time"

	"periph.io/x/conn/v3/gpio"

	"rocksaying.tw/gated/internal/sim"
)

// TestEdgeFromTimer checks the model is event-driven: a crossing wakes a
// waiter through the clock's timer, with nobody reading the pins.
func TestEdgeFromTimer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := sim.Config{InputsActiveLow: true}
		s, clk := newSim(t, cfg)
		closed := s.Pins().ClosedLimit
		inputs(t, cfg, closed)
		set(t, cfg, s.Pins().MotorOpen, true)
		got := make(chan bool)
		go func() { got <- closed.WaitForEdge(time.Hour) }()
		synctest.Wait() // the waiter waits
		clk.Advance(travel / 10)
		if !<-got {
			t.Fatalf("WaitForEdge: got false, want true")
		}
		if l := closed.Read(); l != gpio.High {
			t.Errorf("closed limit after release: got %v, want High (inactive, active-low)", l)
		}
	})
}

func TestWaitForEdge(t *testing.T) {
	// Each subtest runs in a synctest bubble: synctest.Wait returns once the
	// waiter is blocked, and a waiter that never returns is a deadlock the
	// bubble reports.
	wait := func(c <-chan bool) bool { return <-c }
	t.Run("timeout", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			cfg := sim.Config{HasObstruction: true}
			s, clk := newSim(t, cfg)
			p := s.Pins().Obstruction
			inputs(t, cfg, p)
			got := make(chan bool, 1)
			go func() { got <- p.WaitForEdge(time.Second) }()
			synctest.Wait()
			clk.Advance(999 * time.Millisecond)
			select {
			case ok := <-got:
				t.Fatalf("WaitForEdge(1s) returned %v after 999ms, want it still waiting", ok)
			default:
			}
			clk.Advance(time.Millisecond)
			if wait(got) {
				t.Error("WaitForEdge(1s) with no edge: got true, want false")
			}
			if p.WaitForEdge(0) {
				t.Error("WaitForEdge(0) with no edge: got true, want false")
			}
		})
	})
	t.Run("edge while waiting", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			cfg := sim.Config{HasObstruction: true}
			s, _ := newSim(t, cfg)
			p := s.Pins().Obstruction
			inputs(t, cfg, p)
			got := make(chan bool, 1)
			go func() { got <- p.WaitForEdge(time.Second) }()
			synctest.Wait()
			if err := s.Control("obstruct"); err != nil {
				t.Fatal(err)
			}
			if !wait(got) {
				t.Error("WaitForEdge(1s) with an edge: got false, want true")
			}
		})
	})
	t.Run("pending edge", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			cfg := sim.Config{HasObstruction: true}
			s, _ := newSim(t, cfg)
			p := s.Pins().Obstruction
			inputs(t, cfg, p)
			for _, c := range []string{"obstruct", "clear"} {
				if err := s.Control(c); err != nil {
					t.Fatal(err)
				}
			}
			if !p.WaitForEdge(0) {
				t.Error("WaitForEdge(0) after two edges: got false, want true")
			}
			if p.WaitForEdge(0) {
				t.Error("second WaitForEdge(0): got true, want false (edges do not accumulate)")
			}
		})
	})
	t.Run("In ends a wait", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			cfg := sim.Config{HasObstruction: true}
			s, _ := newSim(t, cfg)
			p := s.Pins().Obstruction
			inputs(t, cfg, p)
			if err := s.Control("obstruct"); err != nil {
				t.Fatal(err)
			}
			inputs(t, cfg, p) // discards the pending edge
			got := make(chan bool, 1)
			go func() { got <- p.WaitForEdge(time.Hour) }()
			synctest.Wait()
			inputs(t, cfg, p)
			if wait(got) {
				t.Error("WaitForEdge ended by In: got true, want false")
			}
		})
	})
	t.Run("no timeout", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			cfg := sim.Config{HasObstruction: true}
			s, _ := newSim(t, cfg)
			p := s.Pins().Obstruction
			inputs(t, cfg, p)
			got := make(chan bool, 1)
			go func() { got <- p.WaitForEdge(-1) }()
			if err := s.Control("obstruct"); err != nil {
				t.Fatal(err)
			}
			if !wait(got) {
				t.Error("WaitForEdge(-1) with an edge: got false, want true")
			}
		})
	})
	t.Run("Halt ends a wait", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			cfg := sim.Config{HasObstruction: true}
			s, _ := newSim(t, cfg)
			p := s.Pins().Obstruction
			inputs(t, cfg, p)
			got := make(chan bool, 1)
			go func() { got <- p.WaitForEdge(time.Hour) }()
			synctest.Wait()
			if err := p.Halt(); err != nil {
				t.Fatal(err)
			}
			if wait(got) {
				t.Error("WaitForEdge ended by Halt: got true, want false")
			}
		})
	})
	t.Run("rising only", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			cfg := sim.Config{HasObstruction: true} // active high, normally open
			s, _ := newSim(t, cfg)
			p := s.Pins().Obstruction
			if err := p.In(gpio.PullDown, gpio.RisingEdge); err != nil {
				t.Fatal(err)
			}
			for _, tc := range []struct {
				control string
				edge    bool
			}{{"obstruct", true}, {"clear", false}, {"obstruct", true}} {
				if err := s.Control(tc.control); err != nil {
					t.Fatal(err)
				}
				if got := p.WaitForEdge(0); got != tc.edge {
					t.Errorf("after %s: got edge %v, want %v", tc.control, got, tc.edge)
				}
			}
		})
	})
	t.Run("bad In", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s, _ := newSim(t, sim.Config{})
			if err := s.Pins().OpenLimit.In(gpio.PullUp, gpio.Edge(7)); err == nil {
				t.Error("In with edge 7: got no error")
			}
			if err := s.Pins().OpenLimit.In(gpio.Pull(9), gpio.BothEdges); err == nil {
				t.Error("In with pull 9: got no error")
			}
		})
	})
}

func TestObstructionWiring(t *testing.T) {
	for _, tc := range []struct {
		lowActive, nc, obstructed bool
		want                      gpio.Level
	}{
		// Normally closed: the contact is closed (line active) while clear.
		{false, true, false, gpio.High},
		{false, true, true, gpio.Low},
		{true, true, false, gpio.Low},
		{true, true, true, gpio.High},
		// Normally open: the contact closes when obstructed.
		{false, false, false, gpio.Low},
		{false, false, true, gpio.High},
		{true, false, false, gpio.High},
		{true, false, true, gpio.Low},
	} {
		cfg := sim.Config{HasObstruction: true, InputsActiveLow: tc.lowActive, ObstructionNormallyClosed: tc.nc}
		s, _ := newSim(t, cfg)
		p := s.Pins().Obstruction
		inputs(t, cfg, p)
		if tc.obstructed {
			if err := s.Control("obstruct"); err != nil {
				t.Fatal(err)
			}
		}
		if got := p.Read(); got != tc.want {
			t.Errorf("active-low %v, normally closed %v, obstructed %v: got %v, want %v", tc.lowActive, tc.nc, tc.obstructed, got, tc.want)
		}
		if got := s.Snapshot().Obstructed; got != tc.obstructed {
			t.Errorf("snapshot obstructed: got %v, want %v", got, tc.obstructed)
		}
	}
}

// TestPull checks that an open contact leaves the line to the pull resistor,
// so a gate that asks for the wrong pull reads a switch that is not there.
func TestPull(t *testing.T) {
	for _, tc := range []struct {
		pull gpio.Pull
		want gpio.Level
	}{
		{gpio.PullUp, gpio.High},
		{gpio.PullDown, gpio.Low},
		{gpio.Float, gpio.High}, // an external resistor holds the inactive level
	} {
		cfg := sim.Config{InputsActiveLow: true, Start: 0.5}
		s, _ := newSim(t, cfg)
		p := s.Pins().OpenLimit
		if err := p.In(tc.pull, gpio.BothEdges); err != nil {
			t.Fatal(err)
		}
		if got := p.Read(); got != tc.want {
			t.Errorf("open contact, active low, %v: got %v, want %v", tc.pull, got, tc.want)
		}
		if got := p.Pull(); got != tc.pull {
			t.Errorf("Pull: got %v, want %v", got, tc.pull)
		}
	}
}

// TestRealClock runs the model on the real clock, as gated -simulate does:
// the open limit's edge comes from the simulator's own timer. The bubble's
// clock stands in for the wall clock, so nothing waits for it.
func TestRealClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := sim.Config{TravelTime: 50 * time.Millisecond}
		s := sim.New(cfg, nil)
		open := s.Pins().OpenLimit
		inputs(t, cfg, open)
		start := time.Now()
		set(t, cfg, s.Pins().MotorOpen, true)
		if !open.WaitForEdge(5 * time.Second) {
			t.Fatal("no edge on the open limit within 5s")
		}
		took := time.Since(start)
		if l := open.Read(); l != gpio.High {
			t.Errorf("open limit after its edge: got %v, want High", l)
		}
		if want := time.Duration(float64(cfg.TravelTime) * (1 - sim.LimitBand)); took != want {
			t.Errorf("open limit tripped after %v, want %v", took, want)
		}
	})
}
