package gate

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"rocksaying.tw/gated/internal/position"
)

// TestPositionFollowsTheGate walks a gate (world_test.go's, whose leaf
// position is the truth) through 500 random commands, position commands
// among them, with stops, reversals and obstructions, and checks after
// every operation that a known position is within ±5 % of the truth
// (issue 13). Pushes by hand, jams and stuck switches are left out: nothing
// can follow them by dead reckoning, and the estimate says unknown then.
func TestPositionFollowsTheGate(t *testing.T) {
	for _, tc := range []struct {
		name string
		pc   propertyConfig
	}{
		{"hold", propertyConfigs[0]},
		{"pulse with a stop input", propertyConfigs[2]},
		{"hold, configured times", propertyConfig{Config{Params: testParams, OutputMode: Hold, Debounce: 30 * ms, Position: position.Config{OpenTime: 8 * time.Second, CloseTime: 8 * time.Second}},
			Fitted{Obstruction: true, Siren: true}, 8 * time.Second}},
	} {
		for seed := uint64(1); seed <= 4; seed++ {
			t.Run(fmt.Sprintf("%s/seed=%d", tc.name, seed), func(t *testing.T) {
				r := rand.New(rand.NewPCG(seed, 0x13))
				w := newWorld(t, tc.pc, r.IntN)
				w.pos = 0 // start closed, so the position is known
				w.start()
				checked, between := 0, 0
				for cmds := 0; cmds < 500; {
					switch n := r.IntN(10); {
					case n < 4:
						w.command()
						cmds++
					case n < 5:
						w.obstructed = !w.obstructed
						w.sync()
					default:
						w.advance(time.Duration(r.IntN(int(w.travel/ms)))*ms, false)
					}
					got, ok := w.c.pos.est.Position(w.now)
					if !ok {
						continue
					}
					truth := float64(w.pos) * 100 / float64(w.travel)
					if d := float64(got) - truth; d > 5 || d < -5 {
						w.fatalf("position %d, the gate is at %.1f %%", got, truth)
					}
					checked++
					if got > 0 && got < 100 {
						between++
					}
					// A stopped gate publishes its position.
					if st := w.last; !st.Moving && w.c.m.Outputs().Motor == DirNone && (!st.PositionKnown || st.Position != got) {
						w.fatalf("stopped, published position %v (known %v), estimate %d", st.Position, st.PositionKnown, got)
					}
				}
				if between < 50 {
					t.Errorf("only %d checks between the limits (%d in all): the walk tests too little", between, checked)
				}
			})
		}
	}
}

// TestPositionCommand steps a controller through position commands: the
// motor stops when the estimate reaches the target, at the computed time.
func TestPositionCommand(t *testing.T) {
	s := time.Second
	cfg := ctlConfig()
	cfg.Position = position.Config{OpenTime: 10 * s, CloseTime: 10 * s}
	cfg.PedestrianPosition = 30
	type step struct {
		at      time.Duration
		ev      Event
		reason  Reason // of the reply; "" = accepted
		state   State
		pos     int // -1: unknown
		wakeMax time.Duration
	}
	posEv := func(n int) Event { return Event{Kind: EvCommand, Cmd: CmdPosition, Target: n, Cause: CauseMQTT} }
	for _, tc := range []struct {
		name  string
		cfg   Config
		start Event
		steps []step
	}{
		{"from unknown: refused", cfg, begin(false, false, false), []step{
			{at: s, ev: posEv(40), reason: ReasonPositionUnknown, state: Unknown, pos: -1},
			{at: s, ev: posEv(101), reason: ReasonRange, state: Unknown, pos: -1},
			{at: s, ev: posEv(100), state: Opening, pos: -1},
		}},
		{"closed to 40: stops at 4s", cfg, begin(false, true, false), []step{
			{at: s, ev: posEv(40), state: Opening, pos: 0, wakeMax: 2 * s},
			{at: 2 * s, ev: lineEv(InClosedLimit, false), state: Opening, pos: 0},
			{at: 2*s + 30*ms, ev: tickEv(), state: Opening, pos: 10},
			{at: 3*s + 30*ms, ev: tickEv(), state: Opening, pos: 20, wakeMax: 4*s + 30*ms},
			{at: 4*s + 30*ms, ev: tickEv(), state: Opening, pos: 30, wakeMax: 5 * s},
			{at: 5 * s, ev: tickEv(), state: Stopped, pos: 40},
			// Back to 25: closing, 1.5s.
			{at: 10 * s, ev: posEv(25), state: Closing, pos: 40, wakeMax: 11 * s},
			{at: 11 * s, ev: tickEv(), state: Closing, pos: 30, wakeMax: 11*s + 500*ms},
			{at: 11*s + 500*ms, ev: tickEv(), state: Stopped, pos: 25},
			{at: 12 * s, ev: do(CmdPedestrian), state: Opening, pos: 25},
			{at: 12*s + 500*ms, ev: tickEv(), state: Stopped, pos: 30},
		}},
		{"closing to 20 while obstructed: refused; an obstruction reverses", cfg, begin(true, false, false), []step{
			{at: s, ev: lineEv(InObstruction, true), state: Open, pos: 100},
			{at: s + 30*ms, ev: tickEv(), state: Open, pos: 100},
			{at: 2 * s, ev: posEv(20), reason: ReasonObstructed, state: Open, pos: 100},
			{at: 2 * s, ev: lineEv(InObstruction, false)},
			{at: 3 * s, ev: posEv(20), state: Closing, pos: 100},
			{at: 4 * s, ev: lineEv(InOpenLimit, false)},
			{at: 5 * s, ev: lineEv(InObstruction, true)},
			{at: 5*s + 30*ms, ev: tickEv(), state: Opening, pos: 80},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewController(tc.cfg, fitAll)
			c, _ = c.Step(Event{At: t0, Kind: tc.start.Kind, Levels: tc.start.Levels})
			for i, st := range tc.steps {
				ev := st.ev
				ev.At = t0.Add(st.at)
				var acts []Action
				var reply *Reply
				for {
					c, acts = c.Step(ev)
					driven := false
					for _, a := range acts {
						switch a := a.(type) {
						case SetOutput:
							driven = true
						case Reply:
							reply = &a
						}
					}
					if !driven {
						break
					}
					ev = Event{At: ev.At, Kind: EvDriven}
				}
				if reply != nil && reasonOf(reply.Err) != st.reason {
					t.Fatalf("step %d: reply %v, want %q", i, reply.Err, st.reason)
				}
				if st.state == "" {
					continue
				}
				got := c.Status()
				pos := got.Position
				if !got.PositionKnown {
					pos = -1
				}
				if got.State != st.state || pos != st.pos {
					t.Fatalf("step %d: %s, want state %s position %d", i, got.JSON(), st.state, st.pos)
				}
				if st.wakeMax > 0 && (c.deadline().IsZero() || c.deadline().After(t0.Add(st.wakeMax))) {
					t.Fatalf("step %d: wake at %v, want by %v", i, c.deadline().Sub(t0), st.wakeMax)
				}
			}
		})
	}
}
