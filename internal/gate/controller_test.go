package gate

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"periph.io/x/conn/v3/gpio"
)

// ctlConfig is a hold-mode gate whose lines are active high, with a
// normally-open obstruction sensor: a high line is an active switch or a
// broken beam, which keeps the tables short. The wiring has its own test.
func ctlConfig() Config {
	return Config{
		Name:       "front",
		Params:     testParams,
		OutputMode: Hold,
		PulseWidth: 500 * ms,
		Debounce:   30 * ms,
	}
}

var fitAll = Fitted{Obstruction: true, MotorStop: true, Siren: true}

// show renders an action as one line, with times as offsets from t0.
func show(a Action) string {
	switch a := a.(type) {
	case SetOutput:
		if a.On {
			return "set " + a.Output.String() + " on"
		}
		return "set " + a.Output.String() + " off"
	case Wake:
		if a.At.IsZero() {
			return "wake none"
		}
		return "wake " + a.At.Sub(t0).String()
	case Publish:
		st := a.Status
		s := fmt.Sprintf("publish #%d %s %s since %v", st.Seq, st.State, st.Cause, st.Since.Sub(t0))
		for _, f := range []struct {
			on   bool
			name string
		}{{st.Moving, "moving"}, {st.Alarm, "alarm"}, {st.Obstructed, "obstructed"}, {st.Fault != NoFault, "fault=" + string(st.Fault)}} {
			if f.on {
				s += " " + f.name
			}
		}
		return s
	case Reply:
		held := ""
		if a.Later {
			held = " (held)"
		}
		if a.Err == nil {
			return fmt.Sprintf("reply %s ok #%d%s", a.Cmd, a.Status.Seq, held)
		}
		return fmt.Sprintf("reply %s refused %s #%d%s", a.Cmd, reasonOf(a.Err), a.Status.Seq, held)
	case Defer:
		return "defer"
	case Log:
		return "log " + a.Level.String() + " " + a.Msg
	case Learned:
		return fmt.Sprintf("learned open %v close %v", a.Samples.Open, a.Samples.Close)
	}
	return fmt.Sprintf("%#v", a)
}

func reasonOf(err error) Reason {
	var re *RefusedError
	if errors.As(err, &re) {
		return re.Reason
	}
	return ""
}

// round feeds ev to c and plays the shell: it carries out every action,
// failing every SetOutput of an output in fail, and feeds the outcome back
// until the round ends. It returns the controller and what it did: the
// actions, and a "driven" line (naming what failed) after each batch of
// SetOutput.
func round(t *testing.T, c Controller, ev Event, fail map[Output]bool) (Controller, []string) {
	t.Helper()
	var got []string
	for n := 0; ; n++ {
		if n > 10 {
			t.Fatalf("round of %v at %v: more than 10 batches: %q", ev.Kind, ev.At.Sub(t0), got)
		}
		var acts []Action
		c, acts = c.Step(ev)
		var failed []OutputError
		var names []string
		driven := false
		for _, a := range acts {
			got = append(got, show(a))
			if s, ok := a.(SetOutput); ok {
				driven = true
				if fail[s.Output] {
					failed = append(failed, OutputError{s.Output, fmt.Errorf("gpio %s: relay driver not answering", s.Output)})
					names = append(names, s.Output.String())
				}
			}
		}
		if !driven {
			return c, got
		}
		if len(names) > 0 {
			got = append(got, "driven: "+strings.Join(names, ", ")+" failed")
		} else {
			got = append(got, "driven")
		}
		ev = Event{At: ev.At, Kind: EvDriven, Failed: failed}
	}
}

// Event builders; the step sets At. Levels are raw: high is active (and
// obstructed) in ctlConfig.
func begin(open, closed, obstruction bool) Event {
	return Event{Kind: EvStart, Levels: [NumInputs]gpio.Level{gpio.Level(open), gpio.Level(closed), gpio.Level(obstruction)}}
}
func lineEv(in Input, high bool) Event {
	return Event{Kind: EvEdge, Input: in, Level: gpio.Level(high)}
}
func do(c Command) Event { return Event{Kind: EvCommand, Cmd: c, Cause: CauseMQTT} }
func tickEv() Event      { return Event{Kind: EvTick} }

type ctlStep struct {
	at   time.Duration
	ev   Event
	fail []Output // every SetOutput of these fails during this step
	want []string // the round, as round shows it; nil: not checked, {}: nothing
}

func runCtl(t *testing.T, cfg Config, f Fitted, steps []ctlStep) Controller {
	t.Helper()
	c := NewController(cfg, f)
	for i, s := range steps {
		ev := s.ev
		ev.At = t0.Add(s.at)
		fail := map[Output]bool{}
		for _, o := range s.fail {
			fail[o] = true
		}
		var got []string
		c, got = round(t, c, ev, fail)
		if s.want != nil {
			if diff := cmp.Diff(s.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Fatalf("step %d (%v %s at %v): actions (-want +got):\n%s", i, ev.Kind, ev.Cmd, s.at, diff)
			}
		}
	}
	return c
}

func TestController(t *testing.T) {
	s := time.Second
	pulse := ctlConfig()
	pulse.OutputMode = Pulse
	pulse.Params.ReverseDelay = 300 * ms // shorter than a pulse: it cuts the stop pulse short
	noDebounce := ctlConfig()
	noDebounce.Debounce = 0
	noDelay := ctlConfig()
	noDelay.Params.ReverseDelay = 0

	for _, tc := range []struct {
		name  string
		cfg   Config
		fit   Fitted
		steps []ctlStep
	}{
		{"start publishes the first status", ctlConfig(), fitAll, []ctlStep{
			{at: 0, ev: begin(false, true, false), want: []string{"publish #1 closed startup since 0s"}},
		}},
		{"open, travel, open limit", ctlConfig(), fitAll, []ctlStep{
			{at: 0, ev: begin(false, true, false)},
			{at: s, ev: do(CmdOpen), want: []string{"set motor_open on", "driven", "wake 31s", "publish #2 opening mqtt since 1s moving", "reply open ok #2"}},
			// The closed limit releases: debounced; with no travel time
			// learned the position becomes unknown (null), the only news.
			{at: 2 * s, ev: lineEv(InClosedLimit, false), want: []string{"wake 2.03s"}},
			{at: 2*s + 30*ms, ev: tickEv(), want: []string{"wake 31s", "publish #3 opening mqtt since 1s moving"}},
			{at: 9 * s, ev: lineEv(InOpenLimit, true), want: []string{"wake 9.03s"}},
			// A full run from limit to limit: a travel time learned.
			{at: 9*s + 30*ms, ev: tickEv(), want: []string{"set motor_open off", "driven", "learned open [8.03s] close []", "log INFO learned a full run", "publish #4 open input since 9.03s"}},
		}},
		{"the same status is not published twice", ctlConfig(), fitAll, []ctlStep{
			{at: 0, ev: begin(false, true, false)},
			{at: s, ev: do(CmdAlarm), want: []string{"set siren on", "driven", "wake 1m1s", "publish #2 closed startup since 0s alarm", "reply alarm ok #2"}},
			{at: 2 * s, ev: do(CmdAlarm), want: []string{"wake 1m2s", "reply alarm ok #2"}},
			{at: 3 * s, ev: do(CmdClose), want: []string{"reply close ok #2"}},
			{at: 4 * s, ev: do(CmdSilence), want: []string{"set siren off", "driven", "wake none", "publish #3 closed startup since 0s", "reply silence ok #3"}},
		}},
		{"a refused command is logged and answered", ctlConfig(), fitAll, []ctlStep{
			{at: 0, ev: begin(false, false, true)},
			{at: s, ev: do(CmdClose), want: []string{"log INFO command refused", "reply close refused obstructed #1"}},
			{at: s, ev: do("jump"), want: []string{"log INFO command refused", "reply jump refused unknown #1"}},
		}},
		{"bounces within the debounce time make no change", ctlConfig(), fitAll, []ctlStep{
			{at: 0, ev: begin(false, true, false)},
			{at: s, ev: lineEv(InClosedLimit, false), want: []string{"wake 1.03s"}},
			{at: s + 10*ms, ev: lineEv(InClosedLimit, true), want: []string{"wake none"}},
			{at: s + 20*ms, ev: lineEv(InClosedLimit, false), want: []string{"wake 1.05s"}},
			{at: s + 40*ms, ev: lineEv(InClosedLimit, true), want: []string{"wake none"}},
			{at: s + 45*ms, ev: lineEv(InClosedLimit, false), want: []string{"wake 1.075s"}},
			{at: s + 75*ms - 1, ev: tickEv(), want: []string{"wake 1.075s"}},
			// Forced open: the alarm.
			{at: s + 75*ms, ev: tickEv(), want: []string{"set siren on", "driven", "wake 1m1.075s", "publish #2 stopped input since 1.075s alarm"}},
		}},
		{"an edge after a late tick first settles the level held long enough", ctlConfig(), fitAll, []ctlStep{
			{at: 0, ev: begin(false, true, false)},
			{at: s, ev: lineEv(InClosedLimit, false), want: []string{"wake 1.03s"}},
			// The tick for 1.03s has not come yet; the line was released for
			// 40ms, then the gate was pushed back onto the switch.
			{at: s + 40*ms, ev: lineEv(InClosedLimit, true), want: []string{"set siren on", "driven", "wake 1.07s", "publish #2 stopped input since 1.04s alarm"}},
			{at: s + 70*ms, ev: tickEv(), want: []string{"wake 1m1.04s", "publish #3 closed input since 1.07s alarm"}},
		}},
		{"no debounce: an edge counts at once", noDebounce, fitAll, []ctlStep{
			{at: 0, ev: begin(false, true, false)},
			{at: s, ev: lineEv(InObstruction, true), want: []string{"publish #2 closed startup since 0s obstructed"}},
		}},
		{"an input that is not fitted is ignored", noDebounce, Fitted{}, []ctlStep{
			{at: 0, ev: begin(false, true, true), want: []string{"publish #1 closed startup since 0s"}},
			{at: s, ev: lineEv(InObstruction, false), want: []string{}},
			{at: s, ev: do(CmdAlarm), want: []string{"wake 1m1s", "publish #2 closed startup since 0s alarm", "reply alarm ok #2"}},
		}},
		{"reversal: off, reverse_delay, then the other way", ctlConfig(), fitAll, []ctlStep{
			{at: 0, ev: begin(false, false, false)},
			{at: s, ev: do(CmdOpen)},
			{at: 3 * s, ev: do(CmdClose), want: []string{"set motor_open off", "driven", "wake 3.5s", "publish #3 closing mqtt since 3s moving", "reply close ok #3"}},
			{at: 3*s + 500*ms, ev: tickEv(), want: []string{"set motor_close on", "driven", "wake 33.5s"}},
		}},
		{"reversal with no reverse_delay: still off first, on in the next batch", noDelay, fitAll, []ctlStep{
			{at: 0, ev: begin(false, false, false)},
			{at: s, ev: do(CmdOpen)},
			{at: 3 * s, ev: do(CmdClose), want: []string{"set motor_open off", "driven", "set motor_close on", "driven", "wake 33s", "publish #3 closing mqtt since 3s moving", "reply close ok #3"}},
		}},
		{"obstruction while closing: off, then re-open", ctlConfig(), fitAll, []ctlStep{
			{at: 0, ev: begin(true, false, false)},
			{at: s, ev: do(CmdClose)},
			{at: 2 * s, ev: lineEv(InObstruction, true), want: []string{"wake 2.03s"}},
			{at: 2*s + 30*ms, ev: tickEv(), want: []string{"set motor_close off", "driven", "wake 2.53s", "publish #3 opening input since 2.03s moving obstructed"}},
			{at: 2*s + 530*ms, ev: tickEv(), want: []string{"set motor_open on", "driven", "wake 32.53s"}},
			{at: 3 * s, ev: do(CmdClose), want: []string{"log INFO command refused", "reply close refused obstructed #3"}},
		}},
		{"travel timeout: motor off, fault, alarm", ctlConfig(), fitAll, []ctlStep{
			{at: 0, ev: begin(false, false, false)},
			{at: 0, ev: do(CmdOpen)},
			{at: 30 * s, ev: tickEv(), want: []string{"set motor_open off", "set siren on", "driven", "wake 1m30s", "publish #3 fault timeout since 30s alarm fault=travel_timeout"}},
		}},
		{"limit conflict: fault, motor off", ctlConfig(), fitAll, []ctlStep{
			{at: 0, ev: begin(false, true, false)},
			{at: 0, ev: do(CmdOpen)},
			{at: s, ev: lineEv(InOpenLimit, true)},
			{at: s + 30*ms, ev: tickEv(), want: []string{"set motor_open off", "driven", "publish #3 fault input since 1.03s fault=limit_conflict"}},
			{at: 2 * s, ev: do(CmdOpen), want: []string{"log INFO command refused", "reply open refused fault #3"}},
		}},
		{"a failing output: retried, logged once, fault and alarm, refused", ctlConfig(), fitAll, []ctlStep{
			{at: 0, ev: begin(false, true, false)},
			{at: s, ev: do(CmdOpen), fail: []Output{OutMotorOpen}, want: []string{
				"set motor_open on", "driven: motor_open failed",
				"set motor_open off", "set siren on", "driven: motor_open failed",
				"set motor_open off", "driven: motor_open failed",
				"log ERROR output failed", "wake 1m1s", "publish #2 fault input since 1s alarm fault=gpio", "reply open refused fault #2"}},
			// Every event tries the line again; still failing is not news.
			{at: 2 * s, ev: do(CmdAlarm), fail: []Output{OutMotorOpen}, want: []string{
				"set motor_open off", "driven: motor_open failed",
				"set motor_open off", "driven: motor_open failed",
				"set motor_open off", "driven: motor_open failed",
				"log DEBUG output still failing", "wake 1m2s", "reply alarm refused fault #2"}},
			{at: 3 * s, ev: do(CmdStop), want: []string{"set motor_open off", "driven", "log INFO outputs answer again", "publish #3 closed mqtt since 3s alarm", "reply stop ok #3"}},
		}},
		{"a relay stuck on: the other direction is never switched on", ctlConfig(), fitAll, []ctlStep{
			{at: 0, ev: begin(true, false, false)},
			{at: 0, ev: do(CmdClose)},
			{at: s, ev: lineEv(InOpenLimit, false)},
			{at: 2 * s, ev: do(CmdStop), fail: []Output{OutMotorClose}},
			{at: 10 * s, ev: do(CmdOpen), fail: []Output{OutMotorClose}, want: []string{
				"set motor_close off", "driven: motor_close failed",
				"set motor_close off", "driven: motor_close failed",
				"set motor_close off", "driven: motor_close failed",
				"log DEBUG output still failing", "wake 1m10s", "publish #4 fault input since 10s alarm fault=gpio", "reply open refused fault #4"}},
			// Released at last, at 20s: the open waits reverse_delay from
			// then, not from when the machine stopped the motor.
			{at: 20 * s, ev: do(CmdOpen), want: []string{
				"set motor_close off", "driven",
				"log INFO outputs answer again", "wake 20.5s", "publish #5 opening mqtt since 20s moving alarm", "reply open ok #5"}},
			// The machine counts travel_timeout from 20s: early, never late.
			{at: 20*s + 500*ms, ev: tickEv(), want: []string{"set motor_open on", "driven", "wake 50s"}},
		}},
		{"a late tick: reverse_delay counts from the release, not from the deadline", ctlConfig(), fitAll, []ctlStep{
			{at: 0, ev: begin(false, false, false)},
			{at: 0, ev: do(CmdClose)},
			// The tick for the travel timeout at 30s comes at 40s: the relay
			// was released at 40s, whatever the machine says.
			{at: 40 * s, ev: tickEv(), want: []string{"set motor_close off", "set siren on", "driven", "wake 1m30s", "publish #3 fault timeout since 30s alarm fault=travel_timeout"}},
			{at: 40 * s, ev: do(CmdOpen), want: []string{"wake 40.5s", "publish #4 opening mqtt since 40s moving alarm", "reply open ok #4"}},
			{at: 40*s + 500*ms, ev: tickEv(), want: []string{"set motor_open on", "driven", "wake 1m10s"}},
		}},
		{"pulse: a contact per motion, released after pulse_width", pulse, fitAll, []ctlStep{
			{at: 0, ev: begin(false, false, false)},
			{at: s, ev: do(CmdOpen), want: []string{"set motor_open on", "driven", "wake 1.5s", "publish #2 opening mqtt since 1s moving", "reply open ok #2"}},
			{at: s + 500*ms, ev: tickEv(), want: []string{"set motor_open off", "driven", "wake 31s"}},
			// A reversal: a stop pulse, and the close pulse after the reverse
			// delay, cutting the stop pulse short.
			{at: 3 * s, ev: do(CmdClose), want: []string{"set motor_stop on", "driven", "wake 3.3s", "publish #3 closing mqtt since 3s moving", "reply close ok #3"}},
			{at: 3*s + 300*ms, ev: tickEv(), want: []string{"set motor_stop off", "driven", "set motor_close on", "driven", "wake 3.8s"}},
			{at: 3*s + 800*ms, ev: tickEv(), want: []string{"set motor_close off", "driven", "wake 33.3s"}},
			{at: 4 * s, ev: do(CmdStop), want: []string{"set motor_stop on", "driven", "wake 4.5s", "publish #4 stopped mqtt since 4s", "reply stop ok #4"}},
		}},
		{"pulse: a contact that cannot be released; stop has priority", pulse, fitAll, []ctlStep{
			{at: 0, ev: begin(false, false, false)},
			{at: s, ev: do(CmdOpen)},
			{at: s + 500*ms, ev: tickEv(), fail: []Output{OutMotorOpen}, want: []string{
				"set motor_open off", "driven: motor_open failed",
				"set motor_open off", "set motor_stop on", "set siren on", "driven: motor_open failed",
				"set motor_open off", "driven: motor_open failed",
				"log ERROR output failed", "wake 2s", "publish #3 fault input since 1.5s alarm fault=gpio"}},
		}},
		{"pulse without a stop input: stop changes the state only", pulse, Fitted{Obstruction: true, Siren: true}, []ctlStep{
			{at: 0, ev: begin(false, false, false)},
			{at: s, ev: do(CmdOpen)},
			{at: s + 100*ms, ev: do(CmdStop), want: []string{"set motor_open off", "driven", "wake none", "publish #3 stopped mqtt since 1.1s", "reply stop ok #3"}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { runCtl(t, tc.cfg, tc.fit, tc.steps) })
	}
}

func TestControllerWiring(t *testing.T) {
	for _, tc := range []struct {
		activeLow, normallyClosed bool
		closed, obstruction       gpio.Level // raw levels at start
		want                      string
	}{
		{false, false, gpio.High, gpio.Low, "publish #1 closed startup since 0s"},
		{false, false, gpio.High, gpio.High, "publish #1 closed startup since 0s obstructed"},
		{true, false, gpio.Low, gpio.High, "publish #1 closed startup since 0s"},
		{true, false, gpio.Low, gpio.Low, "publish #1 closed startup since 0s obstructed"},
		// Normally closed: the line is active while the beam is clear, so a
		// cut wire reads as obstructed.
		{false, true, gpio.High, gpio.High, "publish #1 closed startup since 0s"},
		{false, true, gpio.High, gpio.Low, "publish #1 closed startup since 0s obstructed"},
		{true, true, gpio.Low, gpio.Low, "publish #1 closed startup since 0s"},
		{true, true, gpio.Low, gpio.High, "publish #1 closed startup since 0s obstructed"},
	} {
		t.Run(fmt.Sprintf("active_low=%v,normally_closed=%v,obstruction=%v", tc.activeLow, tc.normallyClosed, tc.obstruction), func(t *testing.T) {
			cfg := ctlConfig()
			cfg.InputsActiveLow, cfg.ObstructionNormallyClosed = tc.activeLow, tc.normallyClosed
			open := gpio.Level(tc.activeLow) // released
			runCtl(t, cfg, fitAll, []ctlStep{{at: 0, ev: Event{Kind: EvStart, Levels: [NumInputs]gpio.Level{open, tc.closed, tc.obstruction}}, want: []string{tc.want}}})
		})
	}
}

func TestControllerProtocol(t *testing.T) {
	c := NewController(ctlConfig(), fitAll)
	if st := c.Status(); st.Seq != 0 || st.Gate != "front" || st.State != Unknown {
		t.Errorf("before start: %s, want gate front, unknown, seq 0", st.JSON())
	}
	c, _ = round(t, c, Event{At: t0, Kind: EvStart}, nil)
	mustPanic := func(what string, f func()) {
		t.Helper()
		defer func() {
			if recover() == nil {
				t.Errorf("%s: no panic", what)
			}
		}()
		f()
	}
	mustPanic("EvDriven not asked for", func() { c.Step(Event{At: t0, Kind: EvDriven}) })
	driving, acts := c.Step(Event{At: t0, Kind: EvCommand, Cmd: CmdOpen, Cause: CauseDBus})
	if len(acts) != 1 {
		t.Fatalf("open: got %q, want one SetOutput", acts)
	}
	mustPanic("an event before EvDriven", func() { driving.Step(Event{At: t0, Kind: EvTick}) })
	if _, acts := c.Step(Event{At: t0, Kind: EvTick}); len(acts) != 0 {
		t.Errorf("Step changed its receiver: a tick after the open gives %q", acts)
	}
}
