package gate_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"

	"rocksaying.tw/gated/internal/gate"
	"rocksaying.tw/gated/internal/gate/gatetest"
)

// Invariant 6: on exit, every output is switched off; and when one cannot
// be, the log says so at ERROR and Run fails, so gated exits non-zero.

func TestRunAllOffOnExit(t *testing.T) {
	for _, mode := range []gate.OutputMode{gate.Hold, gate.Pulse} {
		for _, low := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s,outputs_active_low=%v", mode, low), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					cfg := testConfig()
					cfg.OutputMode, cfg.OutputsActiveLow = mode, low
					cfg.Params.AlarmDuration = 0
					r := newRig(t, cfg, wiring{closed: true}, gate.Options{})
					r.run()
					r.mustDo(gate.CmdAlarm)
					r.mustDo(gate.CmdOpen) // hold: motor on; pulse: contact made
					r.checkPins("running", true, false, true)
					if err := r.stop(); err != nil {
						t.Errorf("Run: %v", err)
					}
					r.checkPins("after Run", false, false, false)
					if mode == gate.Pulse && r.lines.MotorStop.Read() != r.outLevel(false) {
						t.Errorf("motor_stop on after Run")
					}
					if logs := r.logs.String(); strings.Contains(logs, "level=ERROR") {
						t.Errorf("an ERROR line on a clean exit:\n%s", logs)
					}
				})
			})
		}
	}
}

func TestRunExitOffFails(t *testing.T) {
	t.Run("an output that stays on: logged, tried again, Run fails", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := newRig(t, testConfig(), wiring{closed: true}, gate.Options{})
			r.run()
			r.mustDo(gate.CmdAlarm)
			r.mustDo(gate.CmdOpen)
			r.lines.MotorOpen.Fail(nil)
			err := r.stop()
			if err == nil || !errors.Is(err, gatetest.ErrRelay) || !strings.Contains(err.Error(), "motor_open") {
				t.Fatalf("Run: got %v, want an error naming motor_open", err)
			}
			// The others are off all the same.
			r.checkPins("after Run", true, false, false)
			logs := r.logs.String()
			for _, want := range []string{
				`level=ERROR msg="switching the outputs off on exit failed: trying again"`,
				`level=ERROR msg="outputs may still be on"`,
			} {
				if !strings.Contains(logs, want) {
					t.Errorf("log lacks %s:\n%s", want, logs)
				}
			}
		})
	})
	t.Run("an output that fails once: the second try switches it off", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := newRig(t, testConfig(), wiring{closed: true}, gate.Options{})
			r.run()
			r.mustDo(gate.CmdOpen)
			r.lines.MotorOpen.FailOnce(nil)
			if err := r.stop(); err != nil {
				t.Errorf("Run: %v, want nil after the second try", err)
			}
			r.checkPins("after Run", false, false, false)
			logs := r.logs.String()
			if !strings.Contains(logs, `level=ERROR msg="switching the outputs off on exit failed: trying again"`) ||
				!strings.Contains(logs, `level=INFO msg="outputs switched off on the second try"`) {
				t.Errorf("log lacks the failure and the second try:\n%s", logs)
			}
		})
	})
	t.Run("outputs that cannot be switched off at start", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := newRig(t, testConfig(), wiring{closed: true}, gate.Options{})
			r.lines.Siren.Fail(nil)
			err := r.g.Run(context.Background())
			if err == nil || !strings.Contains(err.Error(), "siren") {
				t.Fatalf("Run: got %v, want an error naming the siren", err)
			}
			if _, err := r.g.Do(context.Background(), gate.CmdOpen, gate.CauseMQTT); !errors.As(err, new(*gate.RefusedError)) {
				t.Errorf("Do after Run failed: %v, want a refusal", err)
			}
			r.checkPins("after Run", false, false, true)
		})
	})
}
