package gate_test

import (
	"context"
	"testing"
	"testing/synctest"

	"rocksaying.tw/gated/internal/gate"
)

// TestSubscribeCommands: every command the gate answers, accepted or
// refused, is recorded with who asked, and a subscriber that never reads
// holds up neither the gate nor anyone else.
func TestSubscribeCommands(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, testConfig(), wiring{open: true, closed: true}, gate.Options{})
		recs, cancel := r.g.SubscribeCommands()
		defer cancel()
		stuck, cancelStuck := r.g.SubscribeCommands() // never read
		defer cancelStuck()
		r.run()
		if _, err := r.g.Send(context.Background(), gate.Request{Cmd: gate.CmdOpen, Cause: gate.CauseMQTT, Who: "phone-1"}); reasonOf(err) != gate.ReasonFault {
			t.Fatalf("open with both limits: got %v, want reason fault", err)
		}
		if _, err := r.g.Send(context.Background(), gate.Request{Cmd: gate.CmdAlarm, Cause: gate.CauseDBus, Who: "uid 1000 (alice)"}); err != nil {
			t.Fatalf("alarm: %v", err)
		}
		for _, want := range []struct {
			cmd    gate.Command
			cause  gate.Cause
			who    string
			reason gate.Reason
		}{{gate.CmdOpen, gate.CauseMQTT, "phone-1", gate.ReasonFault}, {gate.CmdAlarm, gate.CauseDBus, "uid 1000 (alice)", ""}} {
			got := <-recs
			if got.Cmd != want.cmd || got.Cause != want.cause || got.Who != want.who || reasonOf(got.Err) != want.reason {
				t.Errorf("record: got %s %s %q %v, want %s %s %q reason %q", got.Cmd, got.Cause, got.Who, got.Err, want.cmd, want.cause, want.who, want.reason)
			}
		}
		for i := 0; i < gate.CommandQueue+10; i++ {
			if _, err := r.g.Send(context.Background(), gate.Request{Cmd: gate.CmdStop, Cause: gate.CauseMQTT, Who: "flood"}); err != nil {
				t.Fatalf("stop %d: %v", i, err)
			}
			<-recs
		}
		if n := len(stuck); n != gate.CommandQueue {
			t.Errorf("a subscriber that never reads holds %d records, want the last %d", n, gate.CommandQueue)
		}
		if err := r.stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}
