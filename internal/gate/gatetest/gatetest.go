// Package gatetest runs a real *gate.Gate on periph's gpiotest pins, for
// the links' tests: the gate decides as it does on a Pi, and nothing moves
// it but the test, which drives the inputs and reads the outputs.
package gatetest

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"

	"rocksaying.tw/gated/internal/gate"
)

// Gate is a *gate.Gate on gpiotest pins, for a link to serve.
// Inputs are active high with pull-downs (a released switch reads low) and
// the obstruction sensor is normally open (high = obstructed). Travel takes
// as long as the test wants: nothing moves the gate but the test.
type Gate struct {
	*gate.Gate
	OpenLimit, ClosedLimit, Obstruction *gpiotest.Pin
	MotorOpen, MotorClose, Siren        *gpiotest.Pin

	t testing.TB
}

// New builds a gate named "test" on fresh pins; it does not run it.
func New(log *slog.Logger) (*Gate, error) {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	clk := clockwork.NewRealClock()
	in := func(n string) *gpiotest.Pin {
		return &gpiotest.Pin{N: n, Clock: clk, EdgesChan: make(chan gpio.Level, 8)}
	}
	out := func(n string) *gpiotest.Pin { return &gpiotest.Pin{N: n, Clock: clk} }
	tg := &Gate{
		OpenLimit: in("open_limit"), ClosedLimit: in("closed_limit"), Obstruction: in("obstruction"),
		MotorOpen: out("motor_open"), MotorClose: out("motor_close"), Siren: out("siren"),
	}
	g, err := gate.New(gate.Config{
		Name: "test",
		Params: gate.Params{
			TravelTimeout: time.Minute,
			AlarmDuration: 0, // until silenced: no timer runs during a test
		},
		OutputMode: gate.Hold,
	}, gate.Pins{
		OpenLimit: tg.OpenLimit, ClosedLimit: tg.ClosedLimit, Obstruction: tg.Obstruction,
		MotorOpen: tg.MotorOpen, MotorClose: tg.MotorClose, Siren: tg.Siren,
	}, gate.Options{Clock: clk, Log: log})
	if err != nil {
		return nil, err
	}
	tg.Gate = g
	return tg, nil
}

// Start builds a gate, runs it until the test ends and brings it to closed
// (the closed-limit switch active).
func Start(t testing.TB) *Gate {
	t.Helper()
	tg := StartUnknown(t)
	tg.Set(tg.ClosedLimit, true)
	tg.WaitFor("closed", func(st gate.Status) bool { return st.State == gate.Closed })
	return tg
}

// StartUnknown builds a gate and runs it until the test ends, with neither
// limit switch active: state unknown, free to move either way.
func StartUnknown(t testing.TB) *Gate {
	t.Helper()
	tg, err := New(nil)
	if err != nil {
		t.Fatalf("gate.New: %v", err)
	}
	tg.t = t
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tg.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("gate.Run: %v", err)
		}
	})
	// The inputs are set up before the first status; edges sent earlier
	// would be flushed by In.
	tg.WaitFor("first status", func(st gate.Status) bool { return st.Seq >= 1 })
	return tg
}

// Motors returns the motor relays' levels.
func (tg *Gate) Motors() (open, close gpio.Level) {
	return tg.MotorOpen.Read(), tg.MotorClose.Read()
}

// Set drives an input line high (true) or low, as a switch would. Set and
// WaitFor need a gate from Start or StartUnknown.
func (tg *Gate) Set(p *gpiotest.Pin, high bool) {
	tg.t.Helper()
	select {
	case p.EdgesChan <- gpio.Level(high):
	case <-time.After(5 * time.Second):
		tg.t.Fatalf("input %s: edge not taken in 5s", p.N)
	}
}

// WaitFor waits up to 5 s for a status that satisfies ok and returns it.
func (tg *Gate) WaitFor(what string, ok func(gate.Status) bool) gate.Status {
	tg.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st := tg.Status()
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			tg.t.Fatalf("gate: waited 5s for %s; status is %s", what, st.JSON())
		}
		time.Sleep(2 * time.Millisecond)
	}
}
