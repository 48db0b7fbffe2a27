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

func TestMachine(t *testing.T) {
	s := time.Second
	withAuto := func(d time.Duration) Params { p := testParams; p.AutoClose = d; return p }
	noForced := testParams
	noForced.AlarmOnForcedOpen = false
	untilSilenced := testParams
	untilSilenced.AlarmDuration = 0

	cases := []struct {
		name  string
		p     Params
		steps []step
	}{
		{"opening reaches open", testParams, []step{
			{at: 0, ev: start(false, true, false)},
			{at: 0, ev: cmd(CmdOpen)},
			{at: s, ev: in(false, false, false), want: &snap{State: Opening, Cause: CauseMQTT, Moving: true, Motor: DirOpen, Deadline: 30 * s}},
			{at: 8 * s, ev: in(true, false, false), want: &snap{State: Open, Cause: CauseInput, Since: 8 * s, Deadline: -1}},
		}},
		{"closing reaches closed", testParams, []step{
			{at: 0, ev: start(true, false, false)},
			{at: 0, ev: cmd(CmdClose)},
			{at: s, ev: in(false, false, false)},
			{at: 8 * s, ev: in(false, true, false), want: &snap{State: Closed, Cause: CauseInput, Since: 8 * s, Deadline: -1}},
		}},
		{"reversal waits reverse_delay with both directions off", testParams, []step{
			{at: 0, ev: start(false, true, false)},
			{at: 0, ev: cmd(CmdOpen)},
			{at: s, ev: in(false, false, false)},
			{at: 3 * s, ev: cmd(CmdClose), want: &snap{State: Closing, Cause: CauseMQTT, Since: 3 * s, Moving: true, Motor: DirNone, Deadline: 3*s + 500*ms}},
			{at: 3*s + 499*ms, ev: tick(), want: &snap{State: Closing, Cause: CauseMQTT, Since: 3 * s, Moving: true, Motor: DirNone, Deadline: 3*s + 500*ms}},
			{at: 3*s + 500*ms, ev: tick(), want: &snap{State: Closing, Cause: CauseMQTT, Since: 3 * s, Moving: true, Motor: DirClose, Deadline: 33*s + 500*ms}},
		}},
		{"pending reversal energised at its own time by a late event", testParams, []step{
			{at: 0, ev: start(true, false, false)},
			{at: 0, ev: cmd(CmdClose)},
			{at: s, ev: in(false, false, false)},
			{at: 2 * s, ev: cmd(CmdOpen)},
			// The travel timeout counts from 2.5s, when the motor started.
			{at: 10 * s, ev: tick(), want: &snap{State: Opening, Cause: CauseMQTT, Since: 2 * s, Moving: true, Motor: DirOpen, Deadline: 32*s + 500*ms}},
		}},
		{"reversal back to the first direction during the delay is immediate", testParams, []step{
			{at: 0, ev: start(true, false, false)},
			{at: 0, ev: cmd(CmdClose)},
			{at: s, ev: in(false, false, false)},
			{at: 2 * s, ev: cmd(CmdOpen)},
			// The open never ran: closing again is not a reversal.
			{at: 2*s + 100*ms, ev: cmd(CmdClose), want: &snap{State: Closing, Cause: CauseMQTT, Since: 2*s + 100*ms, Moving: true, Motor: DirClose, Deadline: 32*s + 100*ms}},
		}},
		{"stop during the reverse delay", testParams, []step{
			{at: 0, ev: start(true, false, false)},
			{at: 0, ev: cmd(CmdClose)},
			{at: s, ev: in(false, false, false)},
			{at: 2 * s, ev: cmd(CmdOpen)},
			{at: 2*s + 100*ms, ev: cmd(CmdStop), want: &snap{State: Stopped, Cause: CauseMQTT, Since: 2*s + 100*ms, Deadline: -1}},
			{at: 5 * s, ev: tick(), want: &snap{State: Stopped, Cause: CauseMQTT, Since: 2*s + 100*ms, Deadline: -1}},
		}},
		{"travel timeout: fault and alarm", testParams, []step{
			{at: 0, ev: start(false, true, false)},
			{at: 0, ev: cmd(CmdOpen)},
			{at: s, ev: in(false, false, false)},
			{at: 30*s - 1, ev: tick(), want: &snap{State: Opening, Cause: CauseMQTT, Moving: true, Motor: DirOpen, Deadline: 30 * s}},
			{at: 30 * s, ev: tick(), want: &snap{State: Faulted, Fault: FaultTravel, Cause: CauseTimeout, Since: 30 * s, Alarm: true, Siren: true, Deadline: 90 * s}},
		}},
		{"travel timeout found by a late event", testParams, []step{
			{at: 0, ev: start(false, true, false)},
			{at: 0, ev: cmd(CmdClose)}, // at closed: nothing moves
			{at: 0, ev: cmd(CmdOpen)},
			{at: 45 * s, ev: in(false, false, false), want: &snap{State: Faulted, Fault: FaultTravel, Cause: CauseTimeout, Since: 30 * s, Alarm: true, Siren: true, Deadline: 90 * s}},
		}},
		{"obstruction while closing stops and re-opens", testParams, []step{
			{at: 0, ev: start(true, false, false)},
			{at: 0, ev: cmd(CmdClose)},
			{at: s, ev: in(false, false, false)},
			{at: 4 * s, ev: in(false, false, true), want: &snap{State: Opening, Cause: CauseInput, Since: 4 * s, Moving: true, Obstructed: true, Motor: DirNone, Deadline: 4*s + 500*ms}},
			{at: 4*s + 500*ms, ev: tick(), want: &snap{State: Opening, Cause: CauseInput, Since: 4 * s, Moving: true, Obstructed: true, Motor: DirOpen, Deadline: 34*s + 500*ms}},
			{at: 5 * s, ev: cmd(CmdClose), refused: ReasonObstructed},
			{at: 8 * s, ev: in(true, false, true), want: &snap{State: Open, Cause: CauseInput, Since: 8 * s, Obstructed: true, Deadline: -1}},
			{at: 9 * s, ev: cmd(CmdClose), refused: ReasonObstructed},
			{at: 10 * s, ev: in(true, false, false), want: &snap{State: Open, Cause: CauseInput, Since: 8 * s, Deadline: -1}},
			{at: 11 * s, ev: cmd(CmdClose), want: &snap{State: Closing, Cause: CauseMQTT, Since: 11 * s, Moving: true, Motor: DirClose, Deadline: 41 * s}},
		}},
		{"obstruction while closing in the reverse delay re-opens at once", testParams, []step{
			{at: 0, ev: start(false, false, false)},
			{at: 0, ev: cmd(CmdOpen)},
			{at: s, ev: cmd(CmdClose)},
			// The close never ran: opening again is not a reversal.
			{at: s + 100*ms, ev: in(false, false, true), want: &snap{State: Opening, Cause: CauseInput, Since: s + 100*ms, Moving: true, Obstructed: true, Motor: DirOpen, Deadline: 31*s + 100*ms}},
		}},
		{"obstruction while opening changes only obstructed", testParams, []step{
			{at: 0, ev: start(false, true, false)},
			{at: 0, ev: cmd(CmdOpen)},
			{at: s, ev: in(false, false, true), want: &snap{State: Opening, Cause: CauseMQTT, Moving: true, Obstructed: true, Motor: DirOpen, Deadline: 30 * s}},
		}},
		{"close refused while obstructed", testParams, []step{
			{at: 0, ev: start(false, false, true)},
			{at: s, ev: cmd(CmdClose), refused: ReasonObstructed, want: &snap{State: Unknown, Cause: CauseStartup, Obstructed: true, Deadline: -1}},
			{at: s, ev: cmd(CmdOpen), want: &snap{State: Opening, Cause: CauseMQTT, Since: s, Moving: true, Obstructed: true, Motor: DirOpen, Deadline: 31 * s}},
			{at: 2 * s, ev: cmd(CmdClose), refused: ReasonObstructed},
		}},
		{"both limits while opening: fault, motor off", testParams, []step{
			{at: 0, ev: start(false, true, false)},
			{at: 0, ev: cmd(CmdOpen)},
			{at: s, ev: in(true, true, false), want: &snap{State: Faulted, Fault: FaultLimitConflict, Cause: CauseInput, Since: s, Deadline: -1}},
			{at: 2 * s, ev: cmd(CmdOpen), refused: ReasonFault},
			{at: 2 * s, ev: cmd(CmdClose), refused: ReasonFault},
			{at: 2 * s, ev: cmd(CmdStop), want: &snap{State: Faulted, Fault: FaultLimitConflict, Cause: CauseInput, Since: s, Deadline: -1}},
			{at: 3 * s, ev: in(true, true, true), want: &snap{State: Faulted, Fault: FaultLimitConflict, Cause: CauseInput, Since: s, Obstructed: true, Deadline: -1}},
			// Neither limit: still no sense (invariant 8).
			{at: 4 * s, ev: in(false, false, false), want: &snap{State: Faulted, Fault: FaultLimitConflict, Cause: CauseInput, Since: s, Deadline: -1}},
			{at: 5 * s, ev: in(true, true, false)},
			{at: 6 * s, ev: in(false, true, false), want: &snap{State: Closed, Cause: CauseInput, Since: 6 * s, Deadline: -1}},
		}},
		{"both limits during a reversal: nothing energised later", testParams, []step{
			{at: 0, ev: start(false, false, false)},
			{at: 0, ev: cmd(CmdOpen)},
			{at: s, ev: cmd(CmdClose)},
			{at: s + 100*ms, ev: in(true, true, false)},
			{at: 5 * s, ev: tick(), want: &snap{State: Faulted, Fault: FaultLimitConflict, Cause: CauseInput, Since: s + 100*ms, Deadline: -1}},
		}},
		{"limit conflict with auto_close cancels it", withAuto(20 * s), []step{
			{at: 0, ev: start(true, false, false)},
			{at: s, ev: in(true, true, false), want: &snap{State: Faulted, Fault: FaultLimitConflict, Cause: CauseInput, Since: s, Deadline: -1}},
		}},
		{"forced open raises the alarm", testParams, []step{
			{at: 0, ev: start(false, true, false)},
			{at: 5 * s, ev: in(false, false, false), want: &snap{State: Stopped, Cause: CauseInput, Since: 5 * s, Alarm: true, Siren: true, Deadline: 65 * s}},
		}},
		{"forced open without alarm_on_forced_open", noForced, []step{
			{at: 0, ev: start(false, true, false)},
			{at: 5 * s, ev: in(false, false, false), want: &snap{State: Stopped, Cause: CauseInput, Since: 5 * s, Deadline: -1}},
		}},
		{"opening on command is not forced", testParams, []step{
			{at: 0, ev: start(false, true, false)},
			{at: s, ev: cmd(CmdOpen)},
			{at: 2 * s, ev: in(false, false, false), want: &snap{State: Opening, Cause: CauseMQTT, Since: s, Moving: true, Motor: DirOpen, Deadline: 31 * s}},
		}},
		{"pushed off the open limit", testParams, []step{
			{at: 0, ev: start(true, false, false)},
			{at: 5 * s, ev: in(false, false, false), want: &snap{State: Stopped, Cause: CauseInput, Since: 5 * s, Deadline: -1}},
		}},
		{"pushed onto a limit from unknown", testParams, []step{
			{at: 0, ev: start(false, false, false)},
			{at: 5 * s, ev: in(false, true, false), want: &snap{State: Closed, Cause: CauseInput, Since: 5 * s, Deadline: -1}},
			{at: 6 * s, ev: in(false, false, false)},
			{at: 7 * s, ev: in(true, false, false), want: &snap{State: Open, Cause: CauseInput, Since: 7 * s, Alarm: true, Siren: true, Deadline: 66 * s}},
		}},
		{"fault left only by commands or sensible inputs", testParams, []step{
			{at: 0, ev: start(false, true, false)},
			{at: 0, ev: cmd(CmdOpen)},
			{at: s, ev: in(false, false, false)},
			{at: 30 * s, ev: tick()},
			{at: 31 * s, ev: cmd(CmdSilence), want: &snap{State: Faulted, Fault: FaultTravel, Cause: CauseTimeout, Since: 30 * s, Deadline: -1}},
			{at: 32 * s, ev: cmd(CmdAlarm), want: &snap{State: Faulted, Fault: FaultTravel, Cause: CauseTimeout, Since: 30 * s, Alarm: true, Siren: true, Deadline: 92 * s}},
			{at: 33 * s, ev: in(false, false, true), want: &snap{State: Faulted, Fault: FaultTravel, Cause: CauseTimeout, Since: 30 * s, Alarm: true, Siren: true, Obstructed: true, Deadline: 92 * s}},
			{at: 34 * s, ev: in(false, false, false)},
			{at: 200 * s, ev: tick(), want: &snap{State: Faulted, Fault: FaultTravel, Cause: CauseTimeout, Since: 30 * s, Deadline: -1}},
			{at: 201 * s, ev: in(true, false, false), want: &snap{State: Open, Cause: CauseInput, Since: 201 * s, Deadline: -1}},
		}},
		{"gpio fault: motor off, alarm", testParams, []step{
			{at: 0, ev: start(false, true, false)},
			{at: 0, ev: cmd(CmdOpen)},
			{at: s, ev: outFail(), want: &snap{State: Faulted, Fault: FaultGPIO, Cause: CauseInput, Since: s, Alarm: true, Siren: true, Deadline: 61 * s}},
			{at: 2 * s, ev: in(false, false, false), want: &snap{State: Faulted, Fault: FaultGPIO, Cause: CauseInput, Since: s, Alarm: true, Siren: true, Deadline: 61 * s}},
			{at: 3 * s, ev: in(false, true, false), want: &snap{State: Closed, Cause: CauseInput, Since: 3 * s, Alarm: true, Siren: true, Deadline: 61 * s}},
		}},
		{"gpio fault cancels auto_close", withAuto(20 * s), []step{
			{at: 0, ev: start(true, false, false)},
			{at: s, ev: outFail(), want: &snap{State: Faulted, Fault: FaultGPIO, Cause: CauseInput, Since: s, Alarm: true, Siren: true, Deadline: 61 * s}},
		}},
		{"alarm for alarm_duration", testParams, []step{
			{at: 0, ev: start(false, true, false)},
			{at: s, ev: cmd(CmdAlarm), want: &snap{State: Closed, Cause: CauseStartup, Alarm: true, Siren: true, Deadline: 61 * s}},
			{at: 2 * s, ev: cmd(CmdAlarm), want: &snap{State: Closed, Cause: CauseStartup, Alarm: true, Siren: true, Deadline: 62 * s}},
			{at: 62*s - 1, ev: tick(), want: &snap{State: Closed, Cause: CauseStartup, Alarm: true, Siren: true, Deadline: 62 * s}},
			{at: 62 * s, ev: tick(), want: &snap{State: Closed, Cause: CauseStartup, Deadline: -1}},
		}},
		{"alarm_duration 0 lasts until silence", untilSilenced, []step{
			{at: 0, ev: start(false, true, false)},
			{at: s, ev: cmd(CmdAlarm), want: &snap{State: Closed, Cause: CauseStartup, Alarm: true, Siren: true, Deadline: -1}},
			{at: 1000 * time.Hour, ev: tick(), want: &snap{State: Closed, Cause: CauseStartup, Alarm: true, Siren: true, Deadline: -1}},
			{at: 1000 * time.Hour, ev: cmd(CmdSilence), want: &snap{State: Closed, Cause: CauseStartup, Deadline: -1}},
			{at: 1000 * time.Hour, ev: cmd(CmdSilence), want: &snap{State: Closed, Cause: CauseStartup, Deadline: -1}},
		}},
		{"silence before alarm_duration", testParams, []step{
			{at: 0, ev: start(false, true, false)},
			{at: s, ev: cmd(CmdAlarm)},
			{at: 2 * s, ev: cmd(CmdSilence), want: &snap{State: Closed, Cause: CauseStartup, Deadline: -1}},
		}},
		{"auto_close after the delay", withAuto(20 * s), []step{
			{at: 0, ev: start(false, true, false)},
			{at: 0, ev: cmd(CmdOpen)},
			{at: s, ev: in(false, false, false)},
			{at: 8 * s, ev: in(true, false, false), want: &snap{State: Open, Cause: CauseInput, Since: 8 * s, Deadline: 28 * s}},
			{at: 28*s - 1, ev: tick(), want: &snap{State: Open, Cause: CauseInput, Since: 8 * s, Deadline: 28 * s}},
			{at: 28 * s, ev: tick(), want: &snap{State: Closing, Cause: CauseAutoClose, Since: 28 * s, Moving: true, Motor: DirClose, Deadline: 58 * s}},
		}},
		{"leaving a limit conflict at open arms auto_close", withAuto(20 * s), []step{
			{at: 0, ev: start(true, false, false)},
			{at: s, ev: in(true, true, false)},
			{at: 2 * s, ev: in(true, false, false), want: &snap{State: Open, Cause: CauseInput, Since: 2 * s, Deadline: 22 * s}},
		}},
		{"auto_close restarts on obstruction and waits while obstructed", withAuto(20 * s), []step{
			{at: 0, ev: start(true, false, false)},
			{at: 10 * s, ev: in(true, false, true), want: &snap{State: Open, Cause: CauseStartup, Obstructed: true, Deadline: 30 * s}},
			{at: 30 * s, ev: tick(), want: &snap{State: Open, Cause: CauseStartup, Obstructed: true, Deadline: 50 * s}},
			{at: 40 * s, ev: in(true, false, false), want: &snap{State: Open, Cause: CauseStartup, Deadline: 60 * s}},
			{at: 60 * s, ev: tick(), want: &snap{State: Closing, Cause: CauseAutoClose, Since: 60 * s, Moving: true, Motor: DirClose, Deadline: 90 * s}},
			// The obstruction re-opens the gate, and auto_close closes it again later.
			{at: 61 * s, ev: in(false, false, true)},
			{at: 61*s + 500*ms, ev: tick(), want: &snap{State: Opening, Cause: CauseInput, Since: 61 * s, Moving: true, Obstructed: true, Motor: DirOpen, Deadline: 91*s + 500*ms}},
			{at: 62 * s, ev: in(true, false, true), want: &snap{State: Open, Cause: CauseInput, Since: 62 * s, Obstructed: true, Deadline: 82 * s}},
		}},
		{"auto_close cancelled by stop", withAuto(20 * s), []step{
			{at: 0, ev: start(true, false, false)},
			{at: 10 * s, ev: cmd(CmdStop), want: &snap{State: Open, Cause: CauseStartup, Deadline: -1}},
			{at: 100 * s, ev: tick(), want: &snap{State: Open, Cause: CauseStartup, Deadline: -1}},
			// Someone walking through the gateway does not re-arm it.
			{at: 101 * s, ev: in(true, false, true), want: &snap{State: Open, Cause: CauseStartup, Obstructed: true, Deadline: -1}},
			{at: 102 * s, ev: in(true, false, false), want: &snap{State: Open, Cause: CauseStartup, Deadline: -1}},
			{at: 500 * s, ev: tick(), want: &snap{State: Open, Cause: CauseStartup, Deadline: -1}},
			// An open command re-arms it.
			{at: 501 * s, ev: cmd(CmdOpen), want: &snap{State: Open, Cause: CauseStartup, Deadline: 521 * s}},
		}},
		{"auto_close cancelled by a close command", withAuto(20 * s), []step{
			{at: 0, ev: start(true, false, false)},
			{at: 10 * s, ev: cmd(CmdClose)},
			{at: 10*s + 500*ms, ev: in(false, false, false)},
			{at: 11 * s, ev: cmd(CmdStop)},
			{at: 100 * s, ev: tick(), want: &snap{State: Stopped, Cause: CauseMQTT, Since: 11 * s, Deadline: -1}},
		}},
		{"auto_close not while obstructed at startup", withAuto(20 * s), []step{
			{at: 0, ev: start(true, false, true)},
			{at: 20 * s, ev: tick(), want: &snap{State: Open, Cause: CauseStartup, Obstructed: true, Deadline: 40 * s}},
			{at: 1000 * s, ev: tick(), want: &snap{State: Open, Cause: CauseStartup, Obstructed: true, Deadline: 1020 * s}},
		}},
		{"auto_close only from open", withAuto(20 * s), []step{
			{at: 0, ev: start(true, false, false)},
			{at: 5 * s, ev: in(false, false, false), want: &snap{State: Stopped, Cause: CauseInput, Since: 5 * s, Deadline: -1}},
		}},
		{"several deadlines in one step, in time order", testParams, []step{
			{at: 0, ev: start(false, false, false)},
			{at: 0, ev: cmd(CmdAlarm)},      // alarm until 60s
			{at: 0, ev: cmd(CmdOpen)},       // open runs
			{at: 10 * s, ev: cmd(CmdClose)}, // close from 10.5s, travel until 40.5s
			{at: 100 * s, ev: tick(), want: &snap{State: Faulted, Fault: FaultTravel, Cause: CauseTimeout, Since: 40*s + 500*ms, Alarm: true, Siren: true, Deadline: 100*s + 500*ms}},
			{at: 100*s + 500*ms, ev: tick(), want: &snap{State: Faulted, Fault: FaultTravel, Cause: CauseTimeout, Since: 40*s + 500*ms, Deadline: -1}},
		}},
		{"several deadlines: the alarm ends before the timeout raises it", testParams, []step{
			{at: 0, ev: start(false, false, false)},
			{at: 0, ev: cmd(CmdAlarm)},     // alarm until 60s
			{at: 45 * s, ev: cmd(CmdOpen)}, // travel until 75s
			{at: 100 * s, ev: tick(), want: &snap{State: Faulted, Fault: FaultTravel, Cause: CauseTimeout, Since: 75 * s, Alarm: true, Siren: true, Deadline: 135 * s}},
		}},
		{"several deadlines: auto_close then travel timeout", withAuto(20 * s), []step{
			{at: 0, ev: start(true, false, false)},
			{at: 5 * s, ev: in(false, false, false)}, // stopped: auto-close cancelled
			{at: 6 * s, ev: in(true, false, false)},  // open again: auto-close at 26s
			{at: 100 * s, ev: in(false, false, false), want: &snap{State: Faulted, Fault: FaultTravel, Cause: CauseTimeout, Since: 56 * s, Alarm: true, Siren: true, Deadline: 116 * s}},
		}},
		{"event exactly at a deadline sees it expired", testParams, []step{
			{at: 0, ev: start(false, false, false)},
			{at: 0, ev: cmd(CmdOpen)},
			{at: 30 * s, ev: cmd(CmdOpen), want: &snap{State: Opening, Cause: CauseMQTT, Since: 30 * s, Moving: true, Alarm: true, Siren: true, Motor: DirOpen, Deadline: 60 * s}},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { runSteps(t, c.p, c.steps) })
	}
}
