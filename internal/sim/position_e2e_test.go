package sim_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"rocksaying.tw/gated/internal/gate"
	"rocksaying.tw/gated/internal/sim"
)

// TestPositionCommandStopsTheSimulator: after a full run each way has
// taught the gate its travel times, position 40 leaves the simulated gate
// stopped at 40 % ± 3 by the simulator's own position (issue 13), and the
// status says where it estimates it.
func TestPositionCommandStopsTheSimulator(t *testing.T) {
	for _, mode := range []gate.OutputMode{gate.Hold, gate.Pulse} {
		t.Run(string(mode), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				gcfg := gateConfig(mode)
				r := start(t, gcfg, simConfig(gcfg, 0))
				// Learn: closed → open → closed.
				r.must(gate.CmdOpen, gate.Opening)
				r.until("open", 2*simTravel, state(gate.Open))
				r.must(gate.CmdClose, gate.Closing)
				st, _ := r.until("closed", 2*simTravel, state(gate.Closed))
				if st.OpenTime == 0 || st.CloseTime == 0 {
					t.Fatalf("no travel time learned: %s", st.JSON())
				}
				for _, target := range []int{40, 75, 20} {
					st, err := r.g.Send(context.Background(), gate.Request{Cmd: gate.CmdPosition, Target: target, Cause: gate.CauseMQTT})
					synctest.Wait()
					if err != nil {
						t.Fatalf("position %d: %v", target, err)
					}
					if !st.Moving {
						t.Fatalf("position %d: %s, want moving", target, st.JSON())
					}
					st, sn := r.until("stopped", 2*simTravel, func(st gate.Status, sn sim.Snapshot) bool {
						return st.State == gate.Stopped && !sn.Moving
					})
					want := float64(target) / 100
					if d := sn.Position - want; d > 0.03 || d < -0.03 {
						t.Errorf("position %d: the simulator stopped at %.1f %%", target, 100*sn.Position)
					}
					if !st.PositionKnown || st.Position < target-3 || st.Position > target+3 {
						t.Errorf("position %d: status says %s", target, st.JSON())
					}
					r.run(100 * time.Millisecond) // the reverse delay before the next
				}
			})
		})
	}
}
