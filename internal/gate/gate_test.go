package gate_test

// The shell's tests: gate.Gate's Run on gatetest's lines and a fake clock.
// What the controller decides is tested in controller_test.go and the
// property test; here, that Run carries it out: pins, polarity, edges and
// their watchers, the timer, replies, statuses, the heartbeat, the exit.
//
// Each test runs in a synctest bubble: synctest.Wait returns once every
// goroutine of the gate (the owner, the input watchers) is blocked, so a
// test knows the gate has done all it will do with what it was given. Time
// is the fake clock's, advanced by the test; nothing waits for a timer.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/jonboulle/clockwork"
	"periph.io/x/conn/v3/gpio"

	"rocksaying.tw/gated/internal/gate"
	"rocksaying.tw/gated/internal/gate/gatetest"
	"rocksaying.tw/gated/internal/syncbuf"
)

var t0 = time.Date(2026, 11, 22, 10, 15, 3, 512e6, time.UTC)

const ms = time.Millisecond

func testConfig() gate.Config {
	return gate.Config{
		Name: "front",
		Params: gate.Params{
			TravelTimeout:     30 * time.Second,
			ReverseDelay:      500 * ms,
			AlarmDuration:     60 * time.Second,
			AlarmOnForcedOpen: true,
		},
		InputsActiveLow:           true,
		ObstructionNormallyClosed: true,
		OutputMode:                gate.Hold,
		PulseWidth:                500 * ms,
		Debounce:                  30 * ms,
	}
}

// wiring says how the inputs start, in logical terms.
type wiring struct {
	open, closed, obstructed bool
	noObstruction            bool // no sensor
}

// rig is a Gate on gatetest's lines and a fake clock, in a synctest bubble.
type rig struct {
	t     *testing.T
	cfg   gate.Config
	clk   *clockwork.FakeClock
	lines *gatetest.Lines
	logs  *syncbuf.Buffer
	g     *gate.Gate

	sub    <-chan gate.Status
	seen   []gate.Status // every status received on sub
	cancel context.CancelFunc
	done   chan error
	err    error // what Run returned
	ended  bool
}

func newRig(t *testing.T, cfg gate.Config, w wiring, opt gate.Options) *rig {
	t.Helper()
	clk := clockwork.NewFakeClockAt(t0)
	// Outputs start on, so the test sees Run switch them off.
	l := gatetest.NewLines(clk, gpio.Low, gpio.Level(!cfg.OutputsActiveLow), gpio.Level(!cfg.OutputsActiveLow))
	r := &rig{t: t, cfg: cfg, clk: clk, lines: l, logs: &syncbuf.Buffer{}}
	l.OpenLimit.SetQuietly(r.inLevel(w.open))
	l.ClosedLimit.SetQuietly(r.inLevel(w.closed))
	l.Obstruction.SetQuietly(r.inLevel(w.obstructed != cfg.ObstructionNormallyClosed))
	pins := l.Pins()
	if w.noObstruction {
		pins.Obstruction = nil
	}
	if cfg.OutputMode != gate.Pulse {
		pins.MotorStop = nil
	}
	opt.Clock = clk
	opt.Log = slog.New(slog.NewTextHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	g, err := gate.New(cfg, pins, opt)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	r.g = g
	return r
}

// run starts the owner and waits for its first status.
func (r *rig) run() {
	r.t.Helper()
	sub, unsub := r.g.Subscribe()
	r.sub = sub
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan error, 1)
	go func() { r.done <- r.g.Run(ctx) }()
	r.t.Cleanup(func() {
		unsub()
		r.stop()
		if got := r.lines.Rec.Together(); len(got) > 0 {
			r.t.Errorf("motor lines on together (invariant 1): %v", got)
		}
	})
	synctest.Wait()
	if st := r.status(); st.Seq < 1 {
		r.t.Fatalf("no first status: %s", st.JSON())
	}
}

// stop cancels Run, waits for it to return and ends the input watchers'
// waits (Run does not wait for them).
func (r *rig) stop() error {
	if !r.ended {
		r.ended = true
		r.cancel()
		r.err = <-r.done
		for _, p := range []*gatetest.InPin{r.lines.OpenLimit, r.lines.ClosedLimit, r.lines.Obstruction} {
			p.Halt()
		}
	}
	return r.err
}

func (r *rig) inLevel(active bool) gpio.Level { return gpio.Level(active != r.cfg.InputsActiveLow) }
func (r *rig) outLevel(on bool) gpio.Level    { return gpio.Level(on != r.cfg.OutputsActiveLow) }

// status takes the statuses the gate has published since the last look,
// checks their seq, and returns the latest.
func (r *rig) status() gate.Status {
	r.t.Helper()
	for {
		select {
		case st := <-r.sub:
			if n := len(r.seen); n > 0 && st.Seq <= r.seen[n-1].Seq && st.Seq > 0 {
				r.t.Fatalf("seq went from %d to %d", r.seen[n-1].Seq, st.Seq)
			}
			r.seen = append(r.seen, st)
		default:
			return r.seen[len(r.seen)-1]
		}
	}
}

// advance lets d of fake time pass and waits for the gate to do what it
// brought.
func (r *rig) advance(d time.Duration) gate.Status {
	r.clk.Advance(d)
	synctest.Wait()
	return r.status()
}

// input changes an input line, as a switch would, and lets the gate see it
// (not through the debounce time).
func (r *rig) input(p *gatetest.InPin, active bool) gate.Status {
	p.Set(r.inLevel(active))
	synctest.Wait()
	return r.status()
}

func (r *rig) obstruct(obstructed bool) gate.Status {
	return r.input(r.lines.Obstruction, obstructed != r.cfg.ObstructionNormallyClosed)
}

func (r *rig) do(c gate.Command) (gate.Status, error) {
	r.t.Helper()
	st, err := r.g.Do(context.Background(), c, gate.CauseMQTT)
	synctest.Wait()
	r.status()
	return st, err
}

func (r *rig) mustDo(c gate.Command) gate.Status {
	r.t.Helper()
	st, err := r.do(c)
	if err != nil {
		r.t.Fatalf("Do(%s): %v", c, err)
	}
	return st
}

func (r *rig) checkPins(what string, open, close, siren bool) {
	r.t.Helper()
	for _, c := range []struct {
		p  *gatetest.OutPin
		on bool
	}{{r.lines.MotorOpen, open}, {r.lines.MotorClose, close}, {r.lines.Siren, siren}} {
		if got := c.p.Read(); got != r.outLevel(c.on) {
			r.t.Errorf("%s: pin %s = %v, want %v (on=%v)", what, c.p.N, got, r.outLevel(c.on), c.on)
		}
	}
}

func reasonOf(err error) gate.Reason {
	var re *gate.RefusedError
	if errors.As(err, &re) {
		return re.Reason
	}
	return ""
}

func TestRunHoldCycle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, testConfig(), wiring{closed: true}, gate.Options{})
		r.checkPins("before Run", true, true, true) // newRig starts them on
		r.run()
		st := r.status()
		if st.State != gate.Closed || st.Gate != "front" || st.Cause != gate.CauseStartup || !st.Since.Equal(t0) {
			t.Errorf("first status %s: want closed, gate front, cause startup, since t0", st.JSON())
		}
		r.checkPins("closed", false, false, false)

		// The reply comes after the status it caused.
		st = r.mustDo(gate.CmdOpen)
		if st.State != gate.Opening || !st.Moving || st.Cause != gate.CauseMQTT || st != r.seen[len(r.seen)-1] {
			t.Errorf("Do(open) returned %s, want opening, moving, cause mqtt: the status published", st.JSON())
		}
		r.checkPins("opening", true, false, false)
		r.input(r.lines.ClosedLimit, false)
		r.advance(5 * time.Second)
		r.input(r.lines.OpenLimit, true)
		if st := r.advance(30 * ms); st.State != gate.Open || st.Cause != gate.CauseInput || !st.Since.Equal(t0.Add(5*time.Second+30*ms)) {
			t.Errorf("at the open limit: %s, want open, cause input, since 5.03s", st.JSON())
		}
		r.checkPins("open", false, false, false)
		r.advance(time.Second)

		r.mustDo(gate.CmdClose)
		r.checkPins("closing", false, true, false)
		r.input(r.lines.OpenLimit, false)
		r.obstruct(true)
		if st := r.advance(30 * ms); st.State != gate.Opening || !st.Obstructed {
			t.Errorf("obstructed while closing: %s, want opening, obstructed", st.JSON())
		}
		r.checkPins("reverse delay", false, false, false)
		r.advance(499 * ms)
		r.checkPins("1ms before the end of the reverse delay", false, false, false)
		r.advance(ms)
		r.checkPins("re-opening", true, false, false)
		if _, err := r.do(gate.CmdClose); reasonOf(err) != gate.ReasonObstructed {
			t.Errorf("Do(close) while obstructed: got %v, want reason obstructed", err)
		}
		r.checkPins("after the refused close", true, false, false)
	})
}

func TestRunTimers(t *testing.T) {
	t.Run("travel timeout", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := newRig(t, testConfig(), wiring{}, gate.Options{})
			r.run()
			r.mustDo(gate.CmdOpen)
			if st := r.advance(30*time.Second - 1); st.State != gate.Opening {
				t.Fatalf("1ns before travel_timeout: %s, want opening", st.JSON())
			}
			st := r.advance(1)
			if st.State != gate.Faulted || st.Fault != gate.FaultTravel || !st.Alarm || !st.Since.Equal(t0.Add(30*time.Second)) {
				t.Errorf("after travel_timeout: %s, want fault travel_timeout, alarm, since 30s", st.JSON())
			}
			r.checkPins("travel timeout", false, false, true)
			r.advance(60 * time.Second)
			r.checkPins("after alarm_duration", false, false, false)
		})
	})
	t.Run("debounce", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := newRig(t, testConfig(), wiring{closed: true}, gate.Options{})
			r.run()
			seq := r.status().Seq
			r.input(r.lines.ClosedLimit, false)
			r.advance(10 * ms)
			r.input(r.lines.ClosedLimit, true) // a bounce back: nothing pending
			r.advance(time.Second)
			r.input(r.lines.ClosedLimit, false)
			if st := r.advance(30*ms - 1); st.Seq != seq {
				t.Fatalf("before the debounce time: %s, want no new status", st.JSON())
			}
			st := r.advance(1)
			if st.State != gate.Stopped || !st.Alarm || st.Seq != seq+1 || !st.Since.Equal(t0.Add(1010*ms+30*ms)) {
				t.Errorf("forced open: %s, want stopped with the alarm, seq %d, since 1.04s", st.JSON(), seq+1)
			}
			r.checkPins("forced open", false, false, true)
		})
	})
	t.Run("pulse", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			cfg := testConfig()
			cfg.OutputMode = gate.Pulse
			cfg.Params.ReverseDelay = 300 * ms // shorter than a pulse: the close cuts the stop pulse short
			r := newRig(t, cfg, wiring{}, gate.Options{})
			r.run()
			stop := r.lines.MotorStop
			r.mustDo(gate.CmdOpen)
			r.checkPins("open pulse", true, false, false)
			r.advance(500*ms - 1)
			r.checkPins("1ns before the end of the open pulse", true, false, false)
			r.advance(1)
			r.checkPins("after the open pulse", false, false, false)
			r.advance(2 * time.Second)
			r.mustDo(gate.CmdClose) // a reversal: a stop pulse, then a close pulse
			if stop.Read() != r.outLevel(true) {
				t.Errorf("no stop pulse at the reversal")
			}
			r.advance(300 * ms)
			r.checkPins("close pulse", false, true, false)
			if stop.Read() != r.outLevel(false) {
				t.Errorf("stop contact still made with the close contact")
			}
			r.advance(500 * ms)
			r.checkPins("after the close pulse", false, false, false)
			if want := []string{"motor_open=High", "motor_open=Low", "motor_stop=High", "motor_stop=Low", "motor_close=High", "motor_close=Low"}; !slices.Equal(r.lines.Rec.Log()[4:], want) {
				t.Errorf("contacts %q, want %q", r.lines.Rec.Log()[4:], want)
			}
		})
	})
	t.Run("an edge missed by the driver is read after EdgeWait", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			cfg := testConfig()
			cfg.Debounce = 0
			r := newRig(t, cfg, wiring{closed: true}, gate.Options{EdgeWait: 10 * time.Second})
			r.run()
			r.lines.ClosedLimit.SetQuietly(r.inLevel(false)) // periph/host#78: no edge
			if st := r.advance(10*time.Second - 1); st.State != gate.Closed {
				t.Fatalf("before EdgeWait: %s, want still closed", st.JSON())
			}
			if st := r.advance(1); st.State != gate.Stopped {
				t.Errorf("after EdgeWait: %s, want stopped (the line read again)", st.JSON())
			}
		})
	})
	t.Run("heartbeat", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var beats atomic.Int64
			r := newRig(t, testConfig(), wiring{closed: true}, gate.Options{Heartbeat: func() { beats.Add(1) }, HeartbeatEvery: 10 * time.Second})
			r.run()
			if got := beats.Load(); got != 1 {
				t.Fatalf("at start: %d heartbeats, want 1", got)
			}
			r.advance(10*time.Second - 1)
			if got := beats.Load(); got != 1 {
				t.Errorf("before 10s: %d heartbeats, want 1", got)
			}
			for i := int64(2); i <= 4; i++ {
				r.advance(10 * time.Second)
				if got := beats.Load(); got != i {
					t.Errorf("heartbeat %d: got %d", i, got)
				}
			}
		})
	})
}

func TestRunPolarity(t *testing.T) {
	for _, c := range []struct{ inLow, outLow bool }{{true, false}, {true, true}, {false, false}, {false, true}} {
		t.Run(fmt.Sprintf("inputs_active_low=%v,outputs_active_low=%v", c.inLow, c.outLow), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := testConfig()
				cfg.InputsActiveLow, cfg.OutputsActiveLow = c.inLow, c.outLow
				r := newRig(t, cfg, wiring{closed: true}, gate.Options{})
				r.run()
				if st := r.status(); st.State != gate.Closed || st.Obstructed {
					t.Errorf("closed, clear beam: %s", st.JSON())
				}
				wantPull := gpio.PullDown
				if c.inLow {
					wantPull = gpio.PullUp // an open circuit reads inactive
				}
				if got := r.lines.ClosedLimit.Pull(); got != wantPull {
					t.Errorf("pull %v, want %v", got, wantPull)
				}
				r.checkPins("closed", false, false, false)
				r.mustDo(gate.CmdOpen)
				if got, want := r.lines.MotorOpen.Read(), gpio.Level(!c.outLow); got != want {
					t.Errorf("motor_open line while opening: %v, want %v", got, want)
				}
				r.mustDo(gate.CmdAlarm)
				r.checkPins("alarm", true, false, true)
			})
		})
	}
}

func TestRunOutputFailure(t *testing.T) {
	t.Run("a failing output: fault, alarm, logged once", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := newRig(t, testConfig(), wiring{closed: true}, gate.Options{})
			r.run()
			r.lines.MotorOpen.Fail(nil)
			st, err := r.do(gate.CmdOpen)
			if reasonOf(err) != gate.ReasonFault || !strings.Contains(err.Error(), "motor_open") {
				t.Fatalf("Do(open) with a failing relay: %v, want a refusal with reason fault naming the pin", err)
			}
			if st.State != gate.Faulted || st.Fault != gate.FaultGPIO || !st.Alarm || st.Moving {
				t.Errorf("Do(open) with a failing relay: %s, want fault gpio, alarm, not moving", st.JSON())
			}
			r.checkPins("gpio fault", false, false, true)
			r.do(gate.CmdAlarm) // tries the relay again: still failing
			r.lines.MotorOpen.Repair()
			r.mustDo(gate.CmdStop)
			logs := r.logs.String()
			if n := strings.Count(logs, "level=ERROR msg=\"output failed\""); n != 1 {
				t.Errorf("%d ERROR lines for the failing output, want 1:\n%s", n, logs)
			}
			if !strings.Contains(logs, "level=INFO msg=\"outputs answer again\"") {
				t.Errorf("no line for the output answering again:\n%s", logs)
			}
		})
	})
	t.Run("a relay stuck on: the other direction is never switched on", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := newRig(t, testConfig(), wiring{}, gate.Options{})
			r.run()
			r.mustDo(gate.CmdClose)
			r.lines.MotorClose.Fail(nil)
			if _, err := r.do(gate.CmdStop); reasonOf(err) != gate.ReasonFault {
				t.Errorf("Do(stop) with a stuck relay: %v, want reason fault", err)
			}
			r.advance(time.Second)
			r.do(gate.CmdOpen)
			r.advance(time.Second)
			r.checkPins("open with the close relay stuck on", false, true, true)
			r.lines.MotorClose.Repair()
			r.mustDo(gate.CmdOpen)
			r.checkPins("released", false, false, true)
			r.advance(500 * ms)
			r.checkPins("reverse_delay after the release", true, false, true)
		})
	})
}

func TestNewRefuses(t *testing.T) {
	l := gatetest.NewLines(nil, gpio.Low, gpio.Low, gpio.High)
	cfg := testConfig()
	cfg.Params.AutoClose = time.Minute
	pins := l.Pins()
	pins.Obstruction = nil
	if _, err := gate.New(cfg, pins, gate.Options{}); err == nil {
		t.Error("New with auto_close and no obstruction sensor: got nil error")
	}
}
