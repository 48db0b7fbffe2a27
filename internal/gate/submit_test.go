package gate_test

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"rocksaying.tw/gated/internal/gate"
)

func TestSubmit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		block := make(chan struct{})
		var beats atomic.Int64
		r := newRig(t, testConfig(), wiring{closed: true}, gate.Options{HeartbeatEvery: time.Hour, Heartbeat: func() {
			if beats.Add(1) == 2 {
				<-block // the owner hangs in its second heartbeat
			}
		}})
		if p, ok := r.g.Submit(gate.CmdOpen, gate.CauseMQTT); !ok {
			t.Fatal("Submit before Run: not taken, want an answer of stopped")
		} else if _, err := p.Wait(context.Background()); reasonOf(err) != gate.ReasonStopped {
			t.Fatalf("Submit before Run: got %v, want reason stopped", err)
		}
		r.run()
		r.clk.Advance(time.Hour)
		synctest.Wait()
		// The owner is stuck: Submit queues without waiting until the
		// queue is full, then says so.
		var ps []*gate.Pending
		for i := 0; ; i++ {
			cmd := gate.CmdOpen
			if i%2 == 1 {
				cmd = gate.CmdStop
			}
			p, ok := r.g.Submit(cmd, gate.CauseMQTT)
			if !ok {
				break
			}
			if i > 1000 {
				t.Fatal("Submit took 1000 commands for a stuck owner: the queue has no bound")
			}
			ps = append(ps, p)
		}
		if len(ps) == 0 {
			t.Fatal("Submit took no command")
		}
		close(block)
		var seq uint64
		for i, p := range ps {
			st, err := p.Wait(context.Background())
			if err != nil {
				t.Fatalf("command %d: %v", i, err)
			}
			if st.Seq <= seq {
				t.Fatalf("command %d answered with seq %d after %d: not carried out in the order submitted", i, st.Seq, seq)
			}
			seq = st.Seq
		}
		if err := r.stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}
