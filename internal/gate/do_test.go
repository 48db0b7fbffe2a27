package gate_test

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"rocksaying.tw/gated/internal/gate"
)

func TestDo(t *testing.T) {
	t.Run("refusals are typed", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := newRig(t, testConfig(), wiring{open: true, closed: true}, gate.Options{})
			if _, err := r.g.Do(context.Background(), gate.CmdOpen, gate.CauseMQTT); reasonOf(err) != gate.ReasonStopped {
				t.Errorf("Do before Run: got %v, want reason stopped", err)
			}
			r.run()
			for _, c := range []struct {
				cmd  gate.Command
				want gate.Reason
			}{{gate.CmdOpen, gate.ReasonFault}, {gate.CmdClose, gate.ReasonFault}, {"jump", gate.ReasonUnknown}, {gate.CmdStop, ""}, {gate.CmdAlarm, ""}} {
				_, err := r.do(c.cmd)
				if got := reasonOf(err); got != c.want || (c.want == "" && err != nil) {
					t.Errorf("Do(%q): got %v, want reason %q", c.cmd, err, c.want)
				}
			}
			if err := r.stop(); err != nil {
				t.Errorf("Run: %v", err)
			}
			if _, err := r.g.Do(context.Background(), gate.CmdStop, gate.CauseMQTT); reasonOf(err) != gate.ReasonStopped {
				t.Errorf("Do after Run: got %v, want reason stopped", err)
			}
		})
	})
	t.Run("busy when the owner does not answer", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			block := make(chan struct{})
			var beats atomic.Int64
			r := newRig(t, testConfig(), wiring{closed: true}, gate.Options{HeartbeatEvery: time.Hour, Heartbeat: func() {
				if beats.Add(1) == 2 {
					<-block // the owner hangs in its second heartbeat
				}
			}})
			r.run()
			r.clk.Advance(time.Hour)
			synctest.Wait()
			ctx, cancel := context.WithCancel(context.Background())
			res := make(chan error, 1)
			go func() {
				_, err := r.g.Do(ctx, gate.CmdOpen, gate.CauseDBus)
				res <- err
			}()
			synctest.Wait() // Do waits: its request is queued, or it waits to queue it
			cancel()
			if err := <-res; reasonOf(err) != gate.ReasonBusy {
				t.Fatalf("Do with a stuck owner: got %v, want reason busy", err)
			}
			// Documented: a command the owner had taken is still carried out.
			close(block)
			synctest.Wait()
			if st := r.status(); st.State != gate.Opening {
				t.Errorf("after the owner came back: %s, want the queued open carried out", st.JSON())
			}
		})
	})
	t.Run("a caller never waits for a stopped owner", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			block := make(chan struct{})
			r := newRig(t, testConfig(), wiring{closed: true}, gate.Options{HeartbeatEvery: time.Hour, Heartbeat: func() { <-block }})
			r.run() // the owner hangs in its first heartbeat, after the first status
			res := make(chan error, 1)
			go func() {
				_, err := r.g.Do(context.Background(), gate.CmdOpen, gate.CauseDBus)
				res <- err
			}()
			synctest.Wait() // the request is queued
			r.cancel()
			close(block)
			// The owner may take the request or its context's end first;
			// either way the caller gets an answer.
			if err := <-res; err != nil && reasonOf(err) != gate.ReasonStopped {
				t.Errorf("Do while the owner stops: got %v, want nil or reason stopped", err)
			}
		})
	})
	t.Run("Do right after the first status", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := newRig(t, testConfig(), wiring{closed: true}, gate.Options{})
			r.run() // returns on the first status
			if _, err := r.g.Do(context.Background(), gate.CmdOpen, gate.CauseMQTT); err != nil {
				t.Fatalf("Do right after the first status: %v", err)
			}
		})
	})
}

func TestSubscribe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, testConfig(), wiring{closed: true}, gate.Options{})
		c0, cancel0 := r.g.Subscribe()
		defer cancel0()
		if s := <-c0; s.Seq != 0 || s.State != gate.Unknown || s.Gate != "front" {
			t.Errorf("before Run, first value %s: want the current status (unknown, seq 0)", s.JSON())
		}
		r.run()
		c1, cancel1 := r.g.Subscribe()
		defer cancel1()
		if s := <-c1; s != r.g.Status() {
			t.Errorf("first value %s, want the current status %s", s.JSON(), r.g.Status().JSON())
		}
		// c1 is never read from here: 100 statuses must not block the gate.
		for range 50 {
			r.mustDo(gate.CmdAlarm)
			r.mustDo(gate.CmdSilence)
		}
		r.mustDo(gate.CmdAlarm)
		want := r.g.Status()
		var got []gate.Status
		for len(c1) > 0 {
			got = append(got, <-c1)
		}
		if len(got) == 0 || got[len(got)-1] != want {
			t.Fatalf("slow subscriber ends with %v, want the latest status %s", got, want.JSON())
		}
		for i := 1; i < len(got); i++ {
			if got[i].Seq <= got[i-1].Seq {
				t.Errorf("seq %d after %d", got[i].Seq, got[i-1].Seq)
			}
		}
		// A cancelled subscription gets nothing more, and cancel is idempotent.
		cancel1()
		cancel1()
		r.mustDo(gate.CmdSilence)
		if len(c1) > 0 {
			t.Errorf("after cancel: got %s", (<-c1).JSON())
		}
	})
}
