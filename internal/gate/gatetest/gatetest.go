// Package gatetest has fake lines for a gate: input lines a test works like
// switches, output lines that fail on demand (pins.go). And it runs a real
// *gate.Gate on them for the links' tests: the gate decides as it does on a
// Pi, and nothing moves it but the test, which drives the inputs and reads
// the outputs.
package gatetest

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"

	"rocksaying.tw/gated/internal/gate"
)

// Gate is a *gate.Gate on fake lines, for a link to serve.
// Inputs are active high with pull-downs (a released switch reads low) and
// the obstruction sensor is normally open (high = obstructed). Travel takes
// as long as the test wants: nothing moves the gate but the test, and no
// timer of the gate runs (no debounce, an alarm until silenced, a travel
// timeout of a minute).
type Gate struct {
	*gate.Gate
	OpenLimit, ClosedLimit, Obstruction *InPin
	MotorOpen, MotorClose, Siren        *OutPin

	t testing.TB
}

// New builds a gate named "test" on fresh lines; it does not run it.
func New(log *slog.Logger) (*Gate, error) { return NewConfigured(log, nil) }

// NewConfigured is New with change applied to the gate's configuration
// first (nil: none), e.g. to give it travel times.
func NewConfigured(log *slog.Logger, change func(*gate.Config)) (*Gate, error) {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	l := NewLines(nil, gpio.Low, gpio.Low, gpio.High)
	tg := &Gate{
		OpenLimit: l.OpenLimit, ClosedLimit: l.ClosedLimit, Obstruction: l.Obstruction,
		MotorOpen: l.MotorOpen, MotorClose: l.MotorClose, Siren: l.Siren,
	}
	cfg := gate.Config{
		Name: "test",
		Params: gate.Params{
			TravelTimeout: time.Minute,
			AlarmDuration: 0, // until silenced: no timer runs during a test
		},
		OutputMode: gate.Hold,
	}
	if change != nil {
		change(&cfg)
	}
	g, err := gate.New(cfg, gate.Pins{
		OpenLimit: l.OpenLimit, ClosedLimit: l.ClosedLimit, Obstruction: l.Obstruction,
		MotorOpen: l.MotorOpen, MotorClose: l.MotorClose, Siren: l.Siren,
	}, gate.Options{Log: log})
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
func StartUnknown(t testing.TB) *Gate { t.Helper(); return StartConfigured(t, nil, false) }

// StartConfigured is Start (closed true) or StartUnknown with change
// applied to the configuration (see NewConfigured).
func StartConfigured(t testing.TB, change func(*gate.Config), closed bool) *Gate {
	t.Helper()
	tg := startConfigured(t, change)
	if closed {
		tg.Set(tg.ClosedLimit, true)
		tg.WaitFor("closed", func(st gate.Status) bool { return st.State == gate.Closed })
	}
	return tg
}

func startConfigured(t testing.TB, change func(*gate.Config)) *Gate {
	t.Helper()
	tg, err := NewConfigured(nil, change)
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
		// End the input watchers' waits: Run does not wait for them.
		for _, p := range []*InPin{tg.OpenLimit, tg.ClosedLimit, tg.Obstruction} {
			p.Halt()
		}
	})
	tg.WaitFor("first status", func(st gate.Status) bool { return st.Seq >= 1 })
	return tg
}

// Motors returns the motor relays' levels.
func (tg *Gate) Motors() (open, close gpio.Level) {
	return tg.MotorOpen.Read(), tg.MotorClose.Read()
}

// Set drives an input line high (true) or low, as a switch would.
func (tg *Gate) Set(p *InPin, high bool) { p.Set(gpio.Level(high)) }

// WaitFor waits up to 5 s for a status that satisfies ok and returns it.
// Set and WaitFor need a gate from Start or StartUnknown.
func (tg *Gate) WaitFor(what string, ok func(gate.Status) bool) gate.Status {
	tg.t.Helper()
	c, cancel := tg.Subscribe()
	defer cancel()
	guard := time.NewTimer(5 * time.Second) // a bound on the owner, not a wait for a timer
	defer guard.Stop()
	var st gate.Status
	for {
		select {
		case st = <-c:
			if ok(st) {
				return st
			}
		case <-guard.C:
			tg.t.Fatalf("gate: waited 5s for %s; status is %s", what, st.JSON())
		}
	}
}
