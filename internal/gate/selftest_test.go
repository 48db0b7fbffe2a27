package gate

import (
	"testing"
	"time"
)

// The controller's side of the pre-close rules: which line warns, the
// photo eye's line, and the answer to a close held until its self-test ends.
func TestControllerPreClose(t *testing.T) {
	s := time.Second
	warned := ctlConfig()
	warned.Params.AutoClose = 10 * s
	warned.Params.WarnBeforeClose = 5 * s
	warned.Params.WarnOnRemoteClose = true
	tested := ctlConfig()
	tested.ObstructionTestTime = 100 * ms
	fitEye := fitAll
	fitEye.ObstructionTest = true
	fitWarn := fitAll
	fitWarn.Warning = true
	pulse := warned
	pulse.OutputMode = Pulse

	for _, tc := range []struct {
		name  string
		cfg   Config
		fit   Fitted
		steps []ctlStep
	}{
		{"without a warning pin the siren warns; the answer is at once", warned, fitAll, []ctlStep{
			{at: 0, ev: begin(true, false, false)},
			{at: s, ev: do(CmdClose), want: []string{"set siren on", "driven", "wake 6s", "publish #2 open startup since 0s", "reply close ok #2"}},
			{at: 6 * s, ev: tickEv(), want: []string{"set motor_close on", "set siren off", "driven", "wake 36s", "publish #3 closing mqtt since 6s moving"}},
		}},
		{"with a warning pin it warns, and the siren stays for the alarm", warned, fitWarn, []ctlStep{
			{at: 0, ev: begin(true, false, false)},
			{at: s, ev: do(CmdClose), want: []string{"set warning on", "driven", "wake 6s", "publish #2 open startup since 0s", "reply close ok #2"}},
			{at: 2 * s, ev: do(CmdStop), want: []string{"set warning off", "driven", "wake none", "publish #3 open startup since 0s", "reply stop ok #3"}},
		}},
		{"pulse mode: the warning, then the close pulse", pulse, fitWarn, []ctlStep{
			{at: 0, ev: begin(true, false, false)},
			{at: s, ev: do(CmdClose), want: []string{"set warning on", "driven", "wake 6s", "publish #2 open startup since 0s", "reply close ok #2"}},
			{at: 6 * s, ev: tickEv(), want: []string{"set motor_close on", "set warning off", "driven", "wake 6.5s", "publish #3 closing mqtt since 6s moving"}},
		}},
		{"the eye's line is on from the start; a close waits for its test", tested, fitEye, []ctlStep{
			{at: 0, ev: begin(true, false, false), want: []string{"set obstruction_test on", "driven", "publish #1 open startup since 0s"}},
			{at: s, ev: do(CmdClose), want: []string{"set obstruction_test off", "driven", "wake 1.13s", "defer"}},
			{at: s + 20*ms, ev: lineEv(InObstruction, true), want: []string{"wake 1.05s"}},
			{at: s + 50*ms, ev: tickEv(), want: []string{"set obstruction_test on", "driven", "wake 1.18s"}},
			{at: s + 60*ms, ev: lineEv(InObstruction, false), want: []string{"wake 1.09s"}},
			{at: s + 90*ms, ev: tickEv(), want: []string{"set motor_close on", "driven", "wake 31.09s", "publish #2 closing mqtt since 1.09s moving", "reply close ok #2 (held)"}},
		}},
		{"a failed test refuses the held close with sensor_test", tested, fitEye, []ctlStep{
			{at: 0, ev: begin(true, false, false)},
			{at: s, ev: do(CmdClose), want: []string{"set obstruction_test off", "driven", "wake 1.13s", "defer"}},
			{at: s + 10*ms, ev: do(CmdClose), want: []string{"defer"}},
			{at: s + 130*ms, ev: tickEv(), want: []string{"set siren on", "set obstruction_test on", "driven",
				"log ERROR the photo eye failed its self-test: gate in fault, auto_close off until a test passes", "wake 1m1.13s",
				"publish #2 fault input since 1.13s alarm fault=sensor_test",
				"reply close refused sensor_test #2 (held)", "reply close refused sensor_test #2 (held)"}},
		}},
		{"the eye's line failing cuts the test short: the held close is refused as fault", tested, fitEye, []ctlStep{
			{at: 0, ev: begin(true, false, false)},
			{at: s, ev: do(CmdClose), want: []string{"set obstruction_test off", "driven", "wake 1.13s", "defer"}},
			{at: s + 20*ms, ev: lineEv(InObstruction, true), want: []string{"wake 1.05s"}},
			{at: s + 50*ms, ev: tickEv(), fail: []Output{OutEyeTest}, want: []string{"set obstruction_test on", "driven: obstruction_test failed",
				"set siren on", "set obstruction_test on", "driven: obstruction_test failed",
				"set obstruction_test on", "driven: obstruction_test failed",
				"log ERROR output failed", "wake 1m1.05s", "publish #2 fault input since 1.05s alarm obstructed fault=gpio", "reply close refused fault #2 (held)"}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { runCtl(t, tc.cfg, tc.fit, tc.steps) })
	}
}
