package sim_test

// The end-to-end cases; e2e_test.go has the rig they run on.

import (
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"rocksaying.tw/gated/internal/gate"
	"rocksaying.tw/gated/internal/sim"
)

func TestE2EOpenClose(t *testing.T) {
	for _, tc := range []struct {
		name              string
		inLow, outLow, nc bool
		mode              gate.OutputMode
	}{
		{"hold, active-low inputs, normally closed", true, false, true, gate.Hold},
		{"hold, active-low relays, normally open", false, true, false, gate.Hold},
		{"hold, all active-low", true, true, true, gate.Hold},
		{"pulse, active-low inputs", true, false, true, gate.Pulse},
		{"pulse, active-low relays, normally open", false, true, false, gate.Pulse},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				gcfg := gateConfig(tc.mode)
				gcfg.InputsActiveLow, gcfg.OutputsActiveLow, gcfg.ObstructionNormallyClosed = tc.inLow, tc.outLow, tc.nc
				r := start(t, gcfg, simConfig(gcfg, 0))
				if st := r.g.Status(); st.State != gate.Closed || st.Obstructed || st.Alarm {
					t.Fatalf("at start-up: got %s, want closed, clear, no alarm", st.JSON())
				}
				for _, c := range []struct {
					cmd         gate.Command
					moving, end gate.State
					motor       gate.Dir
					pos         float64
				}{
					{gate.CmdOpen, gate.Opening, gate.Open, gate.DirOpen, 1},
					{gate.CmdClose, gate.Closing, gate.Closed, gate.DirClose, 0},
				} {
					// After reverse_delay, so the motor starts at once.
					r.run(reverseDelay)
					at := r.clk.Now()
					r.must(c.cmd, c.moving)
					if sn := r.sim.Snapshot(); sn.Motor != c.motor {
						t.Errorf("%s: got the motor driven %v, want %v", c.cmd, sn.Motor, c.motor)
					}
					st, sn := r.until(string(c.end), simTravel+seen, state(c.end))
					took := r.clk.Since(at)
					if least := time.Duration(float64(simTravel) * (1 - sim.LimitBand)); took < least {
						t.Errorf("%s: got %s after %v, want no sooner than %v", c.cmd, c.end, took, least)
					}
					if st.Cause != gate.CauseInput || st.Moving {
						t.Errorf("%s: got %s, want cause input, not moving", c.end, st.JSON())
					}
					if d := sn.Position - c.pos; d > 0.05 || d < -0.05 {
						t.Errorf("%s: got position %v, want about %v", c.end, sn.Position, c.pos)
					}
					// The motor stops there: the gate releases its relay, or
					// the operator stops at its own limit.
					r.until("motor off", step, func(_ gate.Status, sn sim.Snapshot) bool { return sn.Motor == gate.DirNone })
				}
				if tc.mode == gate.Pulse {
					if sn := r.sim.Snapshot(); sn.OpenContacts != 1 || sn.CloseContacts != 1 || sn.MotorOpen || sn.MotorClose {
						t.Errorf("pulse mode: got %d open and %d close contacts, made now %v %v; want 1 and 1, none made", sn.OpenContacts, sn.CloseContacts, sn.MotorOpen, sn.MotorClose)
					}
				}
			})
		})
	}
}

func TestE2EObstruction(t *testing.T) {
	for _, mode := range []gate.OutputMode{gate.Hold, gate.Pulse} {
		t.Run(string(mode), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				gcfg := gateConfig(mode)
				r := start(t, gcfg, simConfig(gcfg, 1))
				r.must(gate.CmdClose, gate.Closing)
				r.until("half closed", simTravel, position(func(p float64) bool { return p < 0.5 }))

				// Invariant 3: an obstruction while closing stops and re-opens.
				r.control("obstruct")
				st, _ := r.until("re-opening", seen, state(gate.Opening))
				if st.Cause != gate.CauseInput || !st.Obstructed {
					t.Errorf("re-opening: got %s, want cause input, obstructed", st.JSON())
				}
				r.until("open", simTravel+reverseDelay+seen, state(gate.Open))

				st, err := r.do(gate.CmdClose)
				var re *gate.RefusedError
				if !errors.As(err, &re) || re.Reason != gate.ReasonObstructed {
					t.Errorf("close while obstructed: got %v, want a refusal with reason obstructed", err)
				}
				if st.State != gate.Open {
					t.Errorf("close while obstructed: got state %s, want open", st.State)
				}
				if _, sn := r.run(time.Second); sn.Motor != gate.DirNone || sn.Position < 0.99 {
					t.Errorf("after a refused close: got motor %v position %v, want the gate still, open", sn.Motor, sn.Position)
				}

				r.control("clear")
				r.until("clear", seen, func(st gate.Status, _ sim.Snapshot) bool { return !st.Obstructed })
				r.must(gate.CmdClose, gate.Closing)
				r.until("closed", simTravel+seen, state(gate.Closed))
			})
		})
	}
}

func TestE2EJam(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gcfg := gateConfig(gate.Hold)
		r := start(t, gcfg, simConfig(gcfg, 0))
		at := r.clk.Now()
		r.must(gate.CmdOpen, gate.Opening)
		r.run(simTravel / 4)
		r.control("jam")
		// Invariant 2: not at the limit after travel_timeout: stop, fault, alarm.
		st, sn := r.until("fault", travelTimeout, state(gate.Faulted))
		if st.Fault != gate.FaultTravel || !st.Alarm || st.Cause != gate.CauseTimeout || st.Moving {
			t.Errorf("jammed: got %s, want fault travel_timeout, alarm, cause timeout, not moving", st.JSON())
		}
		if got := st.Since.Sub(at); got != travelTimeout {
			t.Errorf("fault after %v, want travel_timeout %v", got, travelTimeout)
		}
		if sn.Motor != gate.DirNone || !sn.Siren {
			t.Errorf("jammed: got motor %v siren %v, want off, on", sn.Motor, sn.Siren)
		}
		if sn.Position > 0.26 {
			t.Errorf("jammed: got position %v, want the gate stuck near 0.25", sn.Position)
		}

		// Invariant 8: a command leaves the fault.
		r.control("unjam")
		r.must(gate.CmdOpen, gate.Opening)
		st, _ = r.until("open", simTravel+seen, state(gate.Open))
		if st.Fault != gate.NoFault || !st.Alarm {
			t.Errorf("after the fault: got %s, want no fault, the alarm still on until silenced", st.JSON())
		}
		r.must(gate.CmdSilence, gate.Open)
		if _, sn := r.run(step); sn.Siren {
			t.Error("after silence: siren still on")
		}
	})
}

func TestE2EForcedOpen(t *testing.T) {
	for _, alarm := range []bool{true, false} {
		t.Run(fmt.Sprintf("alarm_on_forced_open=%v", alarm), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				gcfg := gateConfig(gate.Hold)
				gcfg.Params.AlarmOnForcedOpen = alarm
				r := start(t, gcfg, simConfig(gcfg, 0))
				r.control("force_open")
				// Invariant 5: leaving closed with no command raises the alarm.
				st, _ := r.until("stopped", seen, state(gate.Stopped))
				if st.Alarm != alarm || st.Cause != gate.CauseInput || st.Moving {
					t.Errorf("forced open: got %s, want alarm %v, cause input, not moving", st.JSON(), alarm)
				}
				if _, sn := r.run(step); sn.Siren != alarm || sn.Motor != gate.DirNone {
					t.Errorf("forced open: got siren %v motor %v, want siren %v, motor off", sn.Siren, sn.Motor, alarm)
				}
			})
		})
	}
}

func TestE2EReversal(t *testing.T) {
	for _, tc := range []struct {
		name      string
		start     float64
		first     gate.Command
		then      gate.Command
		mid       func(float64) bool
		dirs      [2]gate.Dir
		via, stop gate.State
	}{
		{"open then close", 0, gate.CmdOpen, gate.CmdClose, func(p float64) bool { return p > 0.4 }, [2]gate.Dir{gate.DirOpen, gate.DirClose}, gate.Closing, gate.Closed},
		{"close then open", 1, gate.CmdClose, gate.CmdOpen, func(p float64) bool { return p < 0.6 }, [2]gate.Dir{gate.DirClose, gate.DirOpen}, gate.Opening, gate.Open},
	} {
		for _, mode := range []gate.OutputMode{gate.Hold, gate.Pulse} {
			t.Run(fmt.Sprintf("%s, %s", tc.name, mode), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					gcfg := gateConfig(mode)
					r := start(t, gcfg, simConfig(gcfg, tc.start))
					r.must(tc.first, map[gate.Command]gate.State{gate.CmdOpen: gate.Opening, gate.CmdClose: gate.Closing}[tc.first])
					r.until("half way", simTravel, position(tc.mid))
					st := r.must(tc.then, tc.via)
					if !st.Moving {
						t.Errorf("reversing: got %s, want moving (a motion pending)", st.JSON())
					}
					if sn := r.sim.Snapshot(); sn.Motor != gate.DirNone {
						t.Errorf("right after the reversing command: got motor %v, want off", sn.Motor)
					}
					r.until(string(tc.stop), simTravel+reverseDelay+seen, state(tc.stop))
					// Invariant 1: the motor goes first one way, then off for
					// reverse_delay, then the other way; never both.
					want := []gate.Dir{tc.dirs[0], gate.DirNone, tc.dirs[1]}
					if len(r.motors) < 3 {
						t.Fatalf("motor changes: got %v, want %v then off", r.motors, want)
					}
					for i, d := range want {
						if r.motors[i].dir != d {
							t.Fatalf("motor changes: got %v, want %v then off", r.motors, want)
						}
					}
					if gap := r.motors[2].at.Sub(r.motors[1].at); gap != reverseDelay {
						t.Errorf("reversal: motor off for %v, want reverse_delay %v", gap, reverseDelay)
					}
					if sn := r.sim.Snapshot(); sn.Shorts != 0 {
						t.Errorf("shorts: got %d, want 0", sn.Shorts)
					}
				})
			})
		}
	}
}

func TestE2EAutoClose(t *testing.T) {
	const autoClose = 3 * time.Second
	gcfg := gateConfig(gate.Hold)
	gcfg.Params.AutoClose = autoClose

	t.Run("closes after the delay", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := start(t, gcfg, simConfig(gcfg, 0))
			r.must(gate.CmdOpen, gate.Opening)
			st, _ := r.until("open", simTravel+seen, state(gate.Open))
			openAt := st.Since
			st, _ = r.until("auto close", autoClose+step, state(gate.Closing))
			if st.Cause != gate.CauseAutoClose || st.Since.Sub(openAt) != autoClose {
				t.Errorf("auto close: got %s %v after open, want cause auto_close after %v", st.JSON(), st.Since.Sub(openAt), autoClose)
			}
			r.until("closed", simTravel+seen, state(gate.Closed))
		})
	})
	t.Run("restarts on obstruction", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := start(t, gcfg, simConfig(gcfg, 1))
			if st := r.g.Status(); st.State != gate.Open {
				t.Fatalf("at start-up: got %s, want open", st.JSON())
			}
			r.run(time.Second)
			r.control("obstruct")
			r.until("obstructed", seen, func(st gate.Status, _ sim.Snapshot) bool { return st.Obstructed })
			// Held obstructed past the first deadline: the gate waits.
			if st, _ := r.run(3 * time.Second); st.State != gate.Open {
				t.Fatalf("obstructed past the auto_close delay: got %s, want open", st.JSON())
			}
			clearAt := r.clk.Now()
			r.control("clear")
			st, _ := r.until("auto close", autoClose+seen, state(gate.Closing))
			// The timer restarts when the gate sees the beam clear: after the
			// debounce time.
			if got := st.Since.Sub(clearAt); st.Cause != gate.CauseAutoClose || got != autoClose+debounce {
				t.Errorf("auto close: got %s %v after the beam cleared, want cause auto_close after %v", st.JSON(), got, autoClose+debounce)
			}
			r.until("closed", simTravel+seen, state(gate.Closed))
		})
	})
}

func TestE2EStop(t *testing.T) {
	for _, mode := range []gate.OutputMode{gate.Hold, gate.Pulse} {
		t.Run(string(mode), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				gcfg := gateConfig(mode)
				r := start(t, gcfg, simConfig(gcfg, 0))
				r.must(gate.CmdOpen, gate.Opening)
				r.until("half open", simTravel, position(func(p float64) bool { return p > 0.5 }))
				r.must(gate.CmdStop, gate.Stopped)
				sn := r.sim.Snapshot()
				if sn.Motor != gate.DirNone {
					t.Errorf("stop: got motor %v, want off", sn.Motor)
				}
				st, sn2 := r.run(time.Second)
				if st.State != gate.Stopped || st.Moving || sn2.Position != sn.Position {
					t.Errorf("a second after stop: got %s at position %v, want stopped, still at %v", st.JSON(), sn2.Position, sn.Position)
				}
				if mode == gate.Pulse && (sn2.StopContacts != 1 || sn2.MotorStop) {
					t.Errorf("pulse mode: got %d stop contacts, made now %v; want 1, released", sn2.StopContacts, sn2.MotorStop)
				}
				r.must(gate.CmdClose, gate.Closing)
				r.until("closed", simTravel+seen, state(gate.Closed))
			})
		})
	}
}

// TestE2EShutdown checks invariant 6 with outputs on: the motor running, the
// siren sounding, and in pulse mode a contact made.
func TestE2EShutdown(t *testing.T) {
	for _, mode := range []gate.OutputMode{gate.Hold, gate.Pulse} {
		t.Run(string(mode), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				gcfg := gateConfig(mode)
				r := start(t, gcfg, simConfig(gcfg, 0))
				r.must(gate.CmdAlarm, gate.Closed)
				r.must(gate.CmdOpen, gate.Opening)
				sn := r.sim.Snapshot()
				if !sn.MotorOpen || !sn.Siren {
					t.Fatalf("before shutdown: got motor_open %v siren %v, want both on", sn.MotorOpen, sn.Siren)
				}
				r.stop() // checks every output is off
				if sn := r.sim.Snapshot(); sn.Motor != gate.DirNone && mode == gate.Hold {
					t.Errorf("after shutdown: got motor %v, want off", sn.Motor)
				}
			})
		})
	}
}

// TestE2EOutputFailure: a relay board that stops answering is a gpio fault
// with the alarm raised, and the gate carries on once it answers again.
func TestE2EOutputFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gcfg := gateConfig(gate.Hold)
		r := start(t, gcfg, simConfig(gcfg, 0))
		r.sim.FailOutputs(true)
		st, err := r.do(gate.CmdOpen)
		if !isFault(err) {
			t.Errorf("open with failing outputs: err %v, want a refusal with reason fault", err)
		}
		if st.State != gate.Faulted || st.Fault != gate.FaultGPIO || !st.Alarm {
			t.Errorf("open with failing outputs: got %s, want fault gpio with the alarm", st.JSON())
		}
		if sn := r.sim.Snapshot(); sn.MotorOpen || sn.Motor != gate.DirNone {
			t.Errorf("open with failing outputs: got motor %v, want off", sn.Motor)
		}
		r.sim.FailOutputs(false)
		r.must(gate.CmdOpen, gate.Opening)
		r.until("open", simTravel+seen, state(gate.Open))
	})
}

// isFault reports whether err says the gate's outputs did not follow.
func isFault(err error) bool {
	var re *gate.RefusedError
	return errors.As(err, &re) && re.Reason == gate.ReasonFault
}

// TestE2EStuckRelay: a motor relay that cannot be released must not lead to
// the other direction being energised with it (invariant 1 "under any
// interleaving of inputs, commands and failures").
func TestE2EStuckRelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gcfg := gateConfig(gate.Hold)
		r := start(t, gcfg, simConfig(gcfg, 1))
		r.must(gate.CmdClose, gate.Closing)
		r.run(simTravel / 4)
		if err := r.sim.FailOutput("motor_close", true); err != nil {
			t.Fatal(err)
		}
		st, err := r.do(gate.CmdStop)
		if !isFault(err) {
			t.Errorf("stop with the close relay stuck: err %v, want a refusal with reason fault", err)
		}
		if st.State != gate.Faulted || st.Fault != gate.FaultGPIO || !st.Alarm {
			t.Errorf("stop with the close relay stuck: got %s, want fault gpio with the alarm", st.JSON())
		}
		r.run(reverseDelay + step)
		// Opening now would energise motor_open with motor_close stuck on.
		st, _ = r.do(gate.CmdOpen)
		r.run(reverseDelay + 10*step)
		if sn := r.sim.Snapshot(); sn.MotorOpen || sn.Shorts != 0 {
			t.Errorf("open with the close relay stuck on: got motor_open %v, shorts %d; want it never energised", sn.MotorOpen, sn.Shorts)
		}
		if st := r.g.Status(); st.State != gate.Faulted || st.Fault != gate.FaultGPIO {
			t.Errorf("open with the close relay stuck on: got %s, want fault gpio", st.JSON())
		}
		// Repaired: the gate drives its outputs again.
		if err := r.sim.FailOutput("motor_close", false); err != nil {
			t.Fatal(err)
		}
		r.must(gate.CmdStop, gate.Stopped)
		if sn := r.sim.Snapshot(); sn.MotorClose || sn.MotorOpen {
			t.Errorf("stop after the repair: got motor_open %v motor_close %v, want both released", sn.MotorOpen, sn.MotorClose)
		}
		r.must(gate.CmdOpen, gate.Opening)
		r.until("open", simTravel+reverseDelay+seen, state(gate.Open))
	})
}

// TestE2ESirenRetried: the alarm raised while the siren relay could not be
// driven sounds once the relay answers again; the status must not say
// alarm while the siren is silent.
func TestE2ESirenRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gcfg := gateConfig(gate.Hold)
		r := start(t, gcfg, simConfig(gcfg, 0))
		if err := r.sim.FailOutput("siren", true); err != nil {
			t.Fatal(err)
		}
		st, _ := r.do(gate.CmdAlarm)
		if !st.Alarm || st.Fault != gate.FaultGPIO {
			t.Errorf("alarm with the siren relay failing: got %s, want alarm, fault gpio", st.JSON())
		}
		if err := r.sim.FailOutput("siren", false); err != nil {
			t.Fatal(err)
		}
		st = r.must(gate.CmdStop, gate.Closed)
		if sn := r.sim.Snapshot(); st.Alarm != sn.Siren {
			t.Errorf("after the siren relay answers again: got status alarm %v, siren energised %v; want them equal", st.Alarm, sn.Siren)
		}
	})
}
