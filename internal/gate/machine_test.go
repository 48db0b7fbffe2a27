package gate

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// t0 is the start of every machine test; times in the tables are offsets.
var t0 = time.Date(2026, 11, 22, 10, 15, 3, 512e6, time.UTC)

// testParams are SPEC.md's defaults, with auto_close off.
var testParams = Params{
	TravelTimeout:     30 * time.Second,
	ReverseDelay:      500 * time.Millisecond,
	AlarmDuration:     60 * time.Second,
	AlarmOnForcedOpen: true,
}

const ms = time.Millisecond

// snap is what a test sees of a machine, with times as offsets from t0.
type snap struct {
	State      State
	Fault      Fault
	Cause      Cause
	Since      time.Duration
	Moving     bool
	Alarm      bool
	Obstructed bool
	Motor      Dir
	Siren      bool
	Deadline   time.Duration // -1: none
}

func snapOf(m Machine) snap {
	st, out := m.Status(), m.Outputs()
	s := snap{
		State: st.State, Fault: st.Fault, Cause: st.Cause, Since: st.Since.Sub(t0),
		Moving: st.Moving, Alarm: st.Alarm, Obstructed: st.Obstructed,
		Motor: out.Motor, Siren: out.Siren, Deadline: -1,
	}
	if d, ok := m.Deadline(); ok {
		s.Deadline = d.Sub(t0)
	}
	return s
}

// Event builders; step sets At.
func start(open, closed, obs bool) MachineEvent {
	return MachineEvent{Kind: MachineStart, Inputs: Inputs{OpenLimit: open, ClosedLimit: closed, Obstructed: obs}}
}
func in(open, closed, obs bool) MachineEvent {
	return MachineEvent{Kind: MachineInputs, Inputs: Inputs{OpenLimit: open, ClosedLimit: closed, Obstructed: obs}}
}
func cmd(c Command) MachineEvent { return MachineEvent{Kind: MachineCommand, Cmd: c, Cause: CauseMQTT} }
func tick() MachineEvent         { return MachineEvent{Kind: MachineTick} }
func outFail() MachineEvent      { return MachineEvent{Kind: MachineOutputFailed} }

// step is one event of a machine test: at is the offset from t0, refused
// the wanted refusal ("" = accepted), want (if set) the machine after it.
type step struct {
	at      time.Duration
	ev      MachineEvent
	refused Reason
	want    *snap
}

func runSteps(t *testing.T, p Params, steps []step) Machine {
	t.Helper()
	m := NewMachine(p)
	for i, s := range steps {
		ev := s.ev
		ev.At = t0.Add(s.at)
		before := m
		next, err := m.Step(ev)
		if m != before {
			t.Fatalf("step %d: Step changed its receiver", i)
		}
		var got Reason
		if err != nil {
			var re *RefusedError
			if !errors.As(err, &re) {
				t.Fatalf("step %d (%v at %v): error %v is not a *RefusedError", i, ev.Kind, s.at, err)
			}
			got = re.Reason
			if re.Msg == "" {
				t.Errorf("step %d: refusal %q has no message", i, re.Reason)
			}
		}
		if ev.Kind != MachineCommand && err != nil {
			t.Fatalf("step %d: event kind %v returned error %v", i, ev.Kind, err)
		}
		if got != s.refused {
			t.Fatalf("step %d (%s at %v): refusal got %q, want %q", i, ev.Cmd, s.at, got, s.refused)
		}
		if err != nil {
			// A refused command changes nothing beyond what time did.
			ticked, _ := m.Step(MachineEvent{At: ev.At, Kind: MachineTick})
			if next != ticked {
				t.Fatalf("step %d: refused %s changed the machine:\n%s", i, ev.Cmd, cmp.Diff(snapOf(ticked), snapOf(next)))
			}
		}
		m = next
		if got := snapOf(m); got.Siren != got.Alarm {
			t.Fatalf("step %d: siren %v but alarm %v", i, got.Siren, got.Alarm)
		}
		if s.want != nil {
			if diff := cmp.Diff(*s.want, snapOf(m)); diff != "" {
				t.Fatalf("step %d (%v %s at %v): machine (-want +got):\n%s", i, ev.Kind, ev.Cmd, s.at, diff)
			}
		}
	}
	return m
}

func TestStartUp(t *testing.T) {
	for _, c := range []struct {
		open, closed, obs bool
		want              snap
	}{
		{false, false, false, snap{State: Unknown, Cause: CauseStartup, Deadline: -1}},
		{false, false, true, snap{State: Unknown, Cause: CauseStartup, Obstructed: true, Deadline: -1}},
		{false, true, false, snap{State: Closed, Cause: CauseStartup, Deadline: -1}},
		{false, true, true, snap{State: Closed, Cause: CauseStartup, Obstructed: true, Deadline: -1}},
		{true, false, false, snap{State: Open, Cause: CauseStartup, Deadline: -1}},
		{true, false, true, snap{State: Open, Cause: CauseStartup, Obstructed: true, Deadline: -1}},
		{true, true, false, snap{State: Faulted, Fault: FaultLimitConflict, Cause: CauseStartup, Deadline: -1}},
		{true, true, true, snap{State: Faulted, Fault: FaultLimitConflict, Cause: CauseStartup, Obstructed: true, Deadline: -1}},
	} {
		t.Run(fmt.Sprintf("open=%v,closed=%v,obstructed=%v", c.open, c.closed, c.obs), func(t *testing.T) {
			if got := snapOf(NewMachine(testParams)); got.State != Unknown || got.Cause != CauseStartup || got.Motor != DirNone {
				t.Fatalf("before start: got %+v, want unknown, startup, motor off", got)
			}
			runSteps(t, testParams, []step{{at: 0, ev: start(c.open, c.closed, c.obs), want: &c.want}})
		})
	}
	t.Run("open with auto_close schedules it", func(t *testing.T) {
		p := testParams
		p.AutoClose = 20 * time.Second
		runSteps(t, p, []step{{at: 0, ev: start(true, false, false),
			want: &snap{State: Open, Cause: CauseStartup, Deadline: 20 * time.Second}}})
	})
}

// reach lists event sequences that bring a machine to each state by 10s.
var reach = map[string][]step{
	"closed":  {{at: 0, ev: start(false, true, false)}},
	"open":    {{at: 0, ev: start(true, false, false)}},
	"unknown": {{at: 0, ev: start(false, false, false)}},
	"opening": {{at: 0, ev: start(false, true, false)}, {at: 0, ev: cmd(CmdOpen)}, {at: time.Second, ev: in(false, false, false)}},
	"closing": {{at: 0, ev: start(true, false, false)}, {at: 0, ev: cmd(CmdClose)}, {at: time.Second, ev: in(false, false, false)}},
	"stopped": {{at: 0, ev: start(false, true, false)}, {at: 0, ev: cmd(CmdOpen)}, {at: time.Second, ev: in(false, false, false)}, {at: 2 * time.Second, ev: cmd(CmdStop)}},
	// Travel timeout at 30s.
	"fault_travel":   {{at: 0, ev: start(false, true, false)}, {at: 0, ev: cmd(CmdOpen)}, {at: time.Second, ev: in(false, false, false)}, {at: 30 * time.Second, ev: tick()}},
	"fault_conflict": {{at: 0, ev: start(true, true, false)}},
	"fault_gpio":     {{at: 0, ev: start(false, true, false)}, {at: time.Second, ev: outFail()}},
}

func TestCommandFromEveryState(t *testing.T) {
	const T = 10 * time.Second
	const T31 = 31 * time.Second
	s := time.Second
	cases := []struct {
		from    string
		cmd     Command
		at      time.Duration
		refused Reason
		want    snap
	}{
		{"closed", CmdOpen, T, "", snap{State: Opening, Cause: CauseMQTT, Since: T, Moving: true, Motor: DirOpen, Deadline: T + 30*s}},
		{"closed", CmdClose, T, "", snap{State: Closed, Cause: CauseStartup, Deadline: -1}},
		{"closed", CmdStop, T, "", snap{State: Closed, Cause: CauseStartup, Deadline: -1}},

		{"open", CmdOpen, T, "", snap{State: Open, Cause: CauseStartup, Deadline: -1}},
		{"open", CmdClose, T, "", snap{State: Closing, Cause: CauseMQTT, Since: T, Moving: true, Motor: DirClose, Deadline: T + 30*s}},
		{"open", CmdStop, T, "", snap{State: Open, Cause: CauseStartup, Deadline: -1}},

		{"unknown", CmdOpen, T, "", snap{State: Opening, Cause: CauseMQTT, Since: T, Moving: true, Motor: DirOpen, Deadline: T + 30*s}},
		{"unknown", CmdClose, T, "", snap{State: Closing, Cause: CauseMQTT, Since: T, Moving: true, Motor: DirClose, Deadline: T + 30*s}},
		{"unknown", CmdStop, T, "", snap{State: Stopped, Cause: CauseMQTT, Since: T, Deadline: -1}},

		{"opening", CmdOpen, T, "", snap{State: Opening, Cause: CauseMQTT, Since: 0, Moving: true, Motor: DirOpen, Deadline: 30 * s}},
		// Reversal: both directions off for reverse_delay (invariant 1).
		{"opening", CmdClose, T, "", snap{State: Closing, Cause: CauseMQTT, Since: T, Moving: true, Motor: DirNone, Deadline: T + 500*ms}},
		{"opening", CmdStop, T, "", snap{State: Stopped, Cause: CauseMQTT, Since: T, Deadline: -1}},

		{"closing", CmdOpen, T, "", snap{State: Opening, Cause: CauseMQTT, Since: T, Moving: true, Motor: DirNone, Deadline: T + 500*ms}},
		{"closing", CmdClose, T, "", snap{State: Closing, Cause: CauseMQTT, Since: 0, Moving: true, Motor: DirClose, Deadline: 30 * s}},
		{"closing", CmdStop, T, "", snap{State: Stopped, Cause: CauseMQTT, Since: T, Deadline: -1}},

		{"stopped", CmdOpen, T, "", snap{State: Opening, Cause: CauseMQTT, Since: T, Moving: true, Motor: DirOpen, Deadline: T + 30*s}},
		// Stopped 8s ago: the reverse delay has long passed.
		{"stopped", CmdClose, T, "", snap{State: Closing, Cause: CauseMQTT, Since: T, Moving: true, Motor: DirClose, Deadline: T + 30*s}},
		// Stopped 100ms ago after opening: the close waits out the rest of the delay.
		{"stopped", CmdClose, 2*s + 100*ms, "", snap{State: Closing, Cause: CauseMQTT, Since: 2*s + 100*ms, Moving: true, Motor: DirNone, Deadline: 2*s + 500*ms}},
		{"stopped", CmdStop, T, "", snap{State: Stopped, Cause: CauseMQTT, Since: 2 * s, Deadline: -1}},

		{"fault_travel", CmdOpen, T31, "", snap{State: Opening, Cause: CauseMQTT, Since: T31, Moving: true, Alarm: true, Siren: true, Motor: DirOpen, Deadline: T31 + 30*s}},
		{"fault_travel", CmdClose, T31, "", snap{State: Closing, Cause: CauseMQTT, Since: T31, Moving: true, Alarm: true, Siren: true, Motor: DirClose, Deadline: T31 + 30*s}},
		// Motor off at 30s, close at 30.2s: waits until 30.5s.
		{"fault_travel", CmdClose, 30*s + 200*ms, "", snap{State: Closing, Cause: CauseMQTT, Since: 30*s + 200*ms, Moving: true, Alarm: true, Siren: true, Motor: DirNone, Deadline: 30*s + 500*ms}},
		{"fault_travel", CmdStop, T31, "", snap{State: Stopped, Cause: CauseMQTT, Since: T31, Alarm: true, Siren: true, Deadline: 90 * s}},

		{"fault_conflict", CmdOpen, T, ReasonFault, snap{State: Faulted, Fault: FaultLimitConflict, Cause: CauseStartup, Deadline: -1}},
		{"fault_conflict", CmdClose, T, ReasonFault, snap{State: Faulted, Fault: FaultLimitConflict, Cause: CauseStartup, Deadline: -1}},
		{"fault_conflict", CmdStop, T, "", snap{State: Faulted, Fault: FaultLimitConflict, Cause: CauseStartup, Deadline: -1}},

		{"fault_gpio", CmdOpen, T, "", snap{State: Opening, Cause: CauseMQTT, Since: T, Moving: true, Alarm: true, Siren: true, Motor: DirOpen, Deadline: T + 30*s}},
		{"fault_gpio", CmdClose, T, "", snap{State: Closed, Cause: CauseMQTT, Since: T, Alarm: true, Siren: true, Deadline: 61 * s}},
		{"fault_gpio", CmdStop, T, "", snap{State: Closed, Cause: CauseMQTT, Since: T, Alarm: true, Siren: true, Deadline: 61 * s}},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s/%s@%v", c.from, c.cmd, c.at), func(t *testing.T) {
			steps := append(append([]step(nil), reach[c.from]...), step{at: c.at, ev: cmd(c.cmd), refused: c.refused, want: &c.want})
			m := runSteps(t, testParams, steps)
			// Idempotent: the same command again changes nothing.
			again, err := m.Step(MachineEvent{At: t0.Add(c.at), Kind: MachineCommand, Cmd: c.cmd, Cause: CauseDBus})
			var re *RefusedError
			if c.refused != "" && (!errors.As(err, &re) || re.Reason != c.refused) {
				t.Fatalf("repeated %s: got error %v, want reason %q", c.cmd, err, c.refused)
			}
			if c.refused == "" && err != nil {
				t.Fatalf("repeated %s: got error %v, want none", c.cmd, err)
			}
			if diff := cmp.Diff(snapOf(m), snapOf(again)); diff != "" {
				t.Errorf("repeated %s changed the machine (-first +second):\n%s", c.cmd, diff)
			}
		})
	}
	// Every state of reach is covered.
	for name := range reach {
		n := 0
		for _, c := range cases {
			if c.from == name {
				n++
			}
		}
		if n < 3 {
			t.Errorf("state %s: %d command cases, want at least 3", name, n)
		}
	}
}

func TestUnknownCommand(t *testing.T) {
	runSteps(t, testParams, []step{
		{at: 0, ev: start(false, true, false)},
		{at: time.Second, ev: cmd("jump"), refused: ReasonUnknown, want: &snap{State: Closed, Cause: CauseStartup, Deadline: -1}},
		{at: time.Second, ev: cmd(""), refused: ReasonUnknown},
		{at: time.Second, ev: cmd("OPEN"), refused: ReasonUnknown}, // ParseCommand's job, not Step's
	})
}
