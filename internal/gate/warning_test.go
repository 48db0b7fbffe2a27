package gate

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The pre-close rules, step by step: warning, self-test, two strikes,
// counters. rsnap is what these rules change; the other fields have their
// own tables.
type rsnap struct {
	State     State
	Cause     Cause
	Fault     Fault
	Motor     Dir
	Warning   bool
	EyeOff    bool
	Alarm     bool
	AutoClose AutoCloseState
	Count     Counters
}

func rsnapOf(m Machine) rsnap {
	st, out := m.Status(), m.Outputs()
	if st.Warning != out.Warning {
		panic("status warning and warning output differ")
	}
	return rsnap{
		State: st.State, Cause: st.Cause, Fault: st.Fault, Motor: out.Motor,
		Warning: out.Warning, EyeOff: out.EyeOff, Alarm: st.Alarm, AutoClose: st.AutoClose,
		Count: Counters{st.Openings, st.Obstructions, st.Faults},
	}
}

type rstep struct {
	at      time.Duration
	ev      MachineEvent
	refused Reason
	want    *rsnap
}

func runRules(t *testing.T, p Params, r Restored, steps []rstep) Machine {
	t.Helper()
	m := NewMachine(p).restore(r)
	for i, s := range steps {
		ev := s.ev
		ev.At = t0.Add(s.at)
		var err error
		m, err = m.Step(ev)
		var got Reason
		var re *RefusedError
		if errors.As(err, &re) {
			got = re.Reason
		}
		if got != s.refused {
			t.Fatalf("step %d (%s at %v): refusal got %q, want %q", i, ev.Cmd, s.at, got, s.refused)
		}
		if s.want != nil {
			if diff := cmp.Diff(*s.want, rsnapOf(m)); diff != "" {
				t.Fatalf("step %d (%v %s at %v): (-want +got):\n%s", i, ev.Kind, ev.Cmd, s.at, diff)
			}
		}
	}
	return m
}

func cmdBy(c Command, by Cause) MachineEvent {
	return MachineEvent{Kind: MachineCommand, Cmd: c, Cause: by}
}

func TestPreCloseRules(t *testing.T) {
	s := time.Second
	auto := testParams
	auto.AutoClose = 10 * s
	auto.WarnBeforeClose = 5 * s
	remote := auto
	remote.WarnOnRemoteClose = true
	eye := auto
	eye.EyeTest = 130 * ms
	eyeNoAuto := testParams
	eyeNoAuto.EyeTest = 130 * ms
	c := func(n ...uint64) Counters { return Counters{n[0], n[1], n[2]} }
	zero := c(0, 0, 0)

	for _, tc := range []struct {
		name  string
		p     Params
		r     Restored
		steps []rstep
	}{
		{"a late tick does not shorten the warning", auto, Restored{}, []rstep{
			{at: 0, ev: start(true, false, false)},
			{at: 14 * s, ev: tick(), want: &rsnap{State: Open, Cause: CauseStartup, Warning: true, AutoClose: AutoCloseArmed, Count: zero}},
			{at: 19*s - 1, ev: tick(), want: &rsnap{State: Open, Cause: CauseStartup, Warning: true, AutoClose: AutoCloseArmed, Count: zero}},
			{at: 19 * s, ev: tick(), want: &rsnap{State: Closing, Cause: CauseAutoClose, Motor: DirClose, AutoClose: AutoCloseIdle, Count: zero}},
		}},
		{"an automatic close warns warn_before_close, then closes", auto, Restored{}, []rstep{
			{at: 0, ev: start(true, false, false), want: &rsnap{State: Open, Cause: CauseStartup, AutoClose: AutoCloseArmed, Count: zero}},
			{at: 10 * s, ev: tick(), want: &rsnap{State: Open, Cause: CauseStartup, Warning: true, AutoClose: AutoCloseArmed, Count: zero}},
			{at: 15*s - 1, ev: tick(), want: &rsnap{State: Open, Cause: CauseStartup, Warning: true, AutoClose: AutoCloseArmed, Count: zero}},
			{at: 15 * s, ev: tick(), want: &rsnap{State: Closing, Cause: CauseAutoClose, Motor: DirClose, AutoClose: AutoCloseIdle, Count: zero}},
			{at: 20 * s, ev: in(false, true, false), want: &rsnap{State: Closed, Cause: CauseInput, AutoClose: AutoCloseIdle, Count: zero}},
		}},
		{"a remote close is not warned of by default", auto, Restored{}, []rstep{
			{at: 0, ev: start(true, false, false)},
			{at: s, ev: cmd(CmdClose), want: &rsnap{State: Closing, Cause: CauseMQTT, Motor: DirClose, AutoClose: AutoCloseIdle, Count: zero}},
		}},
		{"warn_on_remote_close: MQTT, D-Bus and web closes warn; a second close does not warn again", remote, Restored{}, []rstep{
			{at: 0, ev: start(true, false, false)},
			{at: s, ev: cmdBy(CmdClose, CauseDBus), want: &rsnap{State: Open, Cause: CauseStartup, Warning: true, AutoClose: AutoCloseIdle, Count: zero}},
			{at: 3 * s, ev: cmdBy(CmdClose, CauseWeb), want: &rsnap{State: Open, Cause: CauseStartup, Warning: true, AutoClose: AutoCloseIdle, Count: zero}},
			// Still 5 s from the first close, not from the second.
			{at: 6 * s, ev: tick(), want: &rsnap{State: Closing, Cause: CauseDBus, Motor: DirClose, AutoClose: AutoCloseIdle, Count: zero}},
		}},
		{"stop during the warning cancels the close and the timer", auto, Restored{}, []rstep{
			{at: 0, ev: start(true, false, false)},
			{at: 10 * s, ev: tick()},
			{at: 12 * s, ev: cmd(CmdStop), want: &rsnap{State: Open, Cause: CauseStartup, AutoClose: AutoCloseIdle, Count: zero}},
			{at: time.Hour, ev: tick(), want: &rsnap{State: Open, Cause: CauseStartup, AutoClose: AutoCloseIdle, Count: zero}},
		}},
		{"open during the warning cancels the close and re-arms the timer", auto, Restored{}, []rstep{
			{at: 0, ev: start(true, false, false)},
			{at: 10 * s, ev: tick()},
			{at: 12 * s, ev: cmd(CmdOpen), want: &rsnap{State: Open, Cause: CauseStartup, AutoClose: AutoCloseArmed, Count: zero}},
			{at: 17 * s, ev: tick(), want: &rsnap{State: Open, Cause: CauseStartup, AutoClose: AutoCloseArmed, Count: zero}},
			{at: 22 * s, ev: tick(), want: &rsnap{State: Open, Cause: CauseStartup, Warning: true, AutoClose: AutoCloseArmed, Count: zero}},
		}},
		{"an obstruction during an automatic close's warning cancels it and re-arms the timer", auto, Restored{}, []rstep{
			{at: 0, ev: start(true, false, false)},
			{at: 10 * s, ev: tick()},
			{at: 12 * s, ev: in(true, false, true), want: &rsnap{State: Open, Cause: CauseStartup, AutoClose: AutoCloseArmed, Count: zero}},
			{at: 13 * s, ev: in(true, false, false)}, // the timer restarts on the change too
			{at: 23*s - 1, ev: tick(), want: &rsnap{State: Open, Cause: CauseStartup, AutoClose: AutoCloseArmed, Count: zero}},
			{at: 23 * s, ev: tick(), want: &rsnap{State: Open, Cause: CauseStartup, Warning: true, AutoClose: AutoCloseArmed, Count: zero}},
		}},
		{"an obstruction during a remote close's warning cancels it for good", remote, Restored{}, []rstep{
			{at: 0, ev: start(false, false, false)},
			{at: s, ev: cmd(CmdClose), want: &rsnap{State: Unknown, Cause: CauseStartup, Warning: true, AutoClose: AutoCloseIdle, Count: zero}},
			{at: 2 * s, ev: in(false, false, true), want: &rsnap{State: Unknown, Cause: CauseStartup, AutoClose: AutoCloseIdle, Count: zero}},
			{at: time.Hour, ev: tick(), want: &rsnap{State: Unknown, Cause: CauseStartup, AutoClose: AutoCloseIdle, Count: zero}},
		}},
		{"a warned close of a moving gate stops it first", remote, Restored{}, []rstep{
			{at: 0, ev: start(false, true, false)},
			{at: s, ev: cmd(CmdOpen)},
			{at: 2 * s, ev: in(false, false, false)},
			{at: 3 * s, ev: cmd(CmdClose), want: &rsnap{State: Stopped, Cause: CauseMQTT, Warning: true, AutoClose: AutoCloseIdle, Count: c(1, 0, 0)}},
			{at: 8 * s, ev: tick(), want: &rsnap{State: Closing, Cause: CauseMQTT, Motor: DirClose, AutoClose: AutoCloseIdle, Count: c(1, 0, 0)}},
		}},
		{"two strikes suspend automatic closing until a person commands the gate", auto, Restored{}, []rstep{
			{at: 0, ev: start(true, false, false)},
			{at: 10 * s, ev: tick()},
			{at: 15 * s, ev: tick(), want: &rsnap{State: Closing, Cause: CauseAutoClose, Motor: DirClose, AutoClose: AutoCloseIdle, Count: zero}},
			{at: 16 * s, ev: in(false, false, true), want: &rsnap{State: Opening, Cause: CauseInput, Motor: DirNone, AutoClose: AutoCloseIdle, Count: c(1, 1, 0)}},
			{at: 17 * s, ev: in(false, false, false)},
			{at: 18 * s, ev: in(true, false, false), want: &rsnap{State: Open, Cause: CauseInput, AutoClose: AutoCloseArmed, Count: c(1, 1, 0)}},
			{at: 28 * s, ev: tick()},
			{at: 33 * s, ev: tick(), want: &rsnap{State: Closing, Cause: CauseAutoClose, Motor: DirClose, AutoClose: AutoCloseIdle, Count: c(1, 1, 0)}},
			{at: 34 * s, ev: in(false, false, true), want: &rsnap{State: Opening, Cause: CauseInput, Motor: DirNone, AutoClose: AutoCloseSuspended, Count: c(2, 2, 0)}},
			{at: 35 * s, ev: in(false, false, false)},
			{at: 36 * s, ev: in(true, false, false), want: &rsnap{State: Open, Cause: CauseInput, AutoClose: AutoCloseSuspended, Count: c(2, 2, 0)}},
			{at: time.Hour, ev: tick(), want: &rsnap{State: Open, Cause: CauseInput, AutoClose: AutoCloseSuspended, Count: c(2, 2, 0)}},
			// A refused close is no lifting.
			{at: time.Hour + s, ev: in(true, false, true)},
			{at: time.Hour + 2*s, ev: cmd(CmdClose), refused: ReasonObstructed, want: &rsnap{State: Open, Cause: CauseInput, AutoClose: AutoCloseSuspended, Count: c(2, 2, 0)}},
			{at: time.Hour + 3*s, ev: in(true, false, false)},
			{at: time.Hour + 4*s, ev: cmdBy(CmdOpen, CauseDBus), want: &rsnap{State: Open, Cause: CauseInput, AutoClose: AutoCloseArmed, Count: c(2, 2, 0)}},
		}},
		{"an automatic close that reaches closed clears the strikes", auto, Restored{}, []rstep{
			{at: 0, ev: start(true, false, false)},
			{at: 10 * s, ev: tick()},
			{at: 15 * s, ev: tick()},
			{at: 16 * s, ev: in(false, false, true)},
			{at: 17 * s, ev: in(false, false, false)},
			{at: 18 * s, ev: in(true, false, false)},
			{at: 28 * s, ev: tick()},
			{at: 33 * s, ev: tick()},
			{at: 40 * s, ev: in(false, true, false), want: &rsnap{State: Closed, Cause: CauseInput, AutoClose: AutoCloseIdle, Count: c(1, 1, 0)}},
			{at: 50 * s, ev: cmd(CmdOpen)},
			{at: 55 * s, ev: in(true, false, false)},
			{at: 65 * s, ev: tick()},
			{at: 70 * s, ev: tick(), want: &rsnap{State: Closing, Cause: CauseAutoClose, Motor: DirClose, AutoClose: AutoCloseIdle, Count: c(2, 1, 0)}},
			{at: 71 * s, ev: in(false, false, true), want: &rsnap{State: Opening, Cause: CauseInput, Motor: DirNone, AutoClose: AutoCloseIdle, Count: c(3, 2, 0)}},
		}},
		{"a person's reversal is no strike", auto, Restored{}, []rstep{
			{at: 0, ev: start(false, true, false)},
			{at: s, ev: cmd(CmdOpen)},
			{at: 2 * s, ev: in(false, false, false)},
			{at: 3 * s, ev: cmd(CmdClose)},
			{at: 4 * s, ev: in(false, false, true)},
			{at: 5 * s, ev: in(false, false, false)},
			{at: 6 * s, ev: cmd(CmdClose)},
			{at: 7 * s, ev: in(false, false, true), want: &rsnap{State: Opening, Cause: CauseInput, Motor: DirNone, AutoClose: AutoCloseIdle, Count: c(3, 2, 0)}},
		}},
		{"the suspension survives a restart until a person commands the gate", auto, Restored{Counters: c(5, 4, 3), Suspended: true}, []rstep{
			{at: 0, ev: start(true, false, false), want: &rsnap{State: Open, Cause: CauseStartup, AutoClose: AutoCloseSuspended, Count: c(5, 4, 3)}},
			{at: time.Hour, ev: tick(), want: &rsnap{State: Open, Cause: CauseStartup, AutoClose: AutoCloseSuspended, Count: c(5, 4, 3)}},
			{at: time.Hour + s, ev: cmd(CmdStop), want: &rsnap{State: Open, Cause: CauseStartup, AutoClose: AutoCloseIdle, Count: c(5, 4, 3)}},
		}},
		{"self-test passes: eye off until the input goes active, on until it clears, then the warning", eye, Restored{}, []rstep{
			{at: 0, ev: start(true, false, false)},
			{at: 10 * s, ev: tick(), want: &rsnap{State: Open, Cause: CauseStartup, EyeOff: true, AutoClose: AutoCloseArmed, Count: zero}},
			{at: 10*s + 50*ms, ev: in(true, false, true), want: &rsnap{State: Open, Cause: CauseStartup, AutoClose: AutoCloseArmed, Count: zero}},
			{at: 10*s + 100*ms, ev: in(true, false, false), want: &rsnap{State: Open, Cause: CauseStartup, Warning: true, AutoClose: AutoCloseArmed, Count: zero}},
			{at: 15*s + 100*ms, ev: tick(), want: &rsnap{State: Closing, Cause: CauseAutoClose, Motor: DirClose, AutoClose: AutoCloseIdle, Count: zero}},
		}},
		{"self-test: an eye that does not go active fails, fault sensor_test, alarm, no automatic close", eye, Restored{}, []rstep{
			{at: 0, ev: start(true, false, false)},
			{at: 10 * s, ev: tick()},
			{at: 10*s + 130*ms - 1, ev: tick(), want: &rsnap{State: Open, Cause: CauseStartup, EyeOff: true, AutoClose: AutoCloseArmed, Count: zero}},
			{at: 10*s + 130*ms, ev: tick(), want: &rsnap{State: Faulted, Cause: CauseInput, Fault: FaultSensorTest, Alarm: true, AutoClose: AutoCloseSuspended, Count: c(0, 0, 1)}},
			// Leaving the fault by hand does not bring automatic closing back.
			{at: 20 * s, ev: cmd(CmdOpen), want: &rsnap{State: Open, Cause: CauseMQTT, Alarm: true, AutoClose: AutoCloseSuspended, Count: c(0, 0, 1)}},
			{at: time.Hour, ev: tick(), want: &rsnap{State: Open, Cause: CauseMQTT, AutoClose: AutoCloseSuspended, Count: c(0, 0, 1)}},
			// A person's close tests again; a pass brings it back.
			{at: time.Hour + s, ev: cmd(CmdClose), want: &rsnap{State: Open, Cause: CauseMQTT, EyeOff: true, AutoClose: AutoCloseSuspended, Count: c(0, 0, 1)}},
			{at: time.Hour + s + 10*ms, ev: in(true, false, true)},
			{at: time.Hour + s + 20*ms, ev: in(true, false, false), want: &rsnap{State: Closing, Cause: CauseMQTT, Motor: DirClose, AutoClose: AutoCloseIdle, Count: c(0, 0, 1)}},
		}},
		{"self-test: an obstruction that comes with a late timer is an obstruction, not the eye", eye, Restored{}, []rstep{
			{at: 0, ev: start(true, false, false)},
			{at: 12 * s, ev: in(true, false, true), want: &rsnap{State: Open, Cause: CauseStartup, AutoClose: AutoCloseArmed, Count: zero}},
			{at: 13 * s, ev: in(true, false, false)},
			{at: 23 * s, ev: tick(), want: &rsnap{State: Open, Cause: CauseStartup, EyeOff: true, AutoClose: AutoCloseArmed, Count: zero}},
		}},
		{"self-test: an eye that does not clear fails", eyeNoAuto, Restored{}, []rstep{
			{at: 0, ev: start(true, false, false)},
			{at: s, ev: cmd(CmdClose)},
			{at: s + 10*ms, ev: in(true, false, true), want: &rsnap{State: Open, Cause: CauseStartup, AutoClose: AutoCloseOff, Count: zero}},
			{at: s + 140*ms, ev: tick(), want: &rsnap{State: Faulted, Cause: CauseInput, Fault: FaultSensorTest, Alarm: true, AutoClose: AutoCloseOff, Count: c(0, 0, 1)}},
		}},
		{"self-test: stop cuts it short, the eye back on", eyeNoAuto, Restored{}, []rstep{
			{at: 0, ev: start(true, false, false)},
			{at: s, ev: cmd(CmdClose)},
			{at: s + 10*ms, ev: cmd(CmdStop), want: &rsnap{State: Open, Cause: CauseStartup, AutoClose: AutoCloseOff, Count: zero}},
			{at: time.Hour, ev: tick(), want: &rsnap{State: Open, Cause: CauseStartup, AutoClose: AutoCloseOff, Count: zero}},
		}},
		{"counters: openings, obstruction reversals, entries into fault", testParams, Restored{Counters: c(10, 20, 30)}, []rstep{
			{at: 0, ev: start(false, true, false)},
			{at: s, ev: cmd(CmdOpen), want: &rsnap{State: Opening, Cause: CauseMQTT, Motor: DirOpen, AutoClose: AutoCloseOff, Count: c(11, 20, 30)}},
			{at: 2 * s, ev: cmd(CmdOpen), want: &rsnap{State: Opening, Cause: CauseMQTT, Motor: DirOpen, AutoClose: AutoCloseOff, Count: c(11, 20, 30)}},
			{at: 3 * s, ev: in(false, false, false)},
			{at: 4 * s, ev: cmd(CmdClose)},
			// An obstruction while standing still is no reversal.
			{at: 5 * s, ev: in(false, false, true), want: &rsnap{State: Opening, Cause: CauseInput, Motor: DirNone, AutoClose: AutoCloseOff, Count: c(12, 21, 30)}},
			{at: 6 * s, ev: cmd(CmdStop)},
			{at: 7 * s, ev: in(false, false, false)},
			{at: 8 * s, ev: in(false, false, true), want: &rsnap{State: Stopped, Cause: CauseMQTT, AutoClose: AutoCloseOff, Count: c(12, 21, 30)}},
			{at: 9 * s, ev: in(true, true, true), want: &rsnap{State: Faulted, Cause: CauseInput, Fault: FaultLimitConflict, AutoClose: AutoCloseOff, Count: c(12, 21, 31)}},
			{at: 10 * s, ev: outFail(), want: &rsnap{State: Faulted, Cause: CauseInput, Fault: FaultGPIO, Alarm: true, AutoClose: AutoCloseOff, Count: c(12, 21, 31)}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { runRules(t, tc.p, tc.r, tc.steps) })
	}
}
