package gate

// The machine step by step, rule by rule; machine_test.go has the helpers.

import (
	"testing"
	"time"
)

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
