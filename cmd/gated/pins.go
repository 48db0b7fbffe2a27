package main

import (
	"errors"
	"fmt"

	"github.com/jonboulle/clockwork"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/host/v3"

	"rocksaying.tw/gated/internal/config"
	"rocksaying.tw/gated/internal/gate"
	"rocksaying.tw/gated/internal/sim"
)

type hardware struct {
	pins gate.Pins
	sim  *sim.Gate // nil on real pins
}

// newSim builds the simulated gate; a test may wrap it to reach the
// simulator (its outputs fail on demand).
var newSim = sim.New

// openPins returns the gate's pins: periph's, looked up by name, or a
// simulated gate's. This is the only place that calls host.Init.
func openPins(cfg config.Config, clk clockwork.Clock) (hardware, error) {
	g := cfg.GPIO
	if g.Driver == "sim" {
		s := newSim(sim.Config{
			TravelTime:                cfg.Sim.TravelTime,
			Pulse:                     g.OutputMode == "pulse",
			InputsActiveLow:           g.InputsActiveLow,
			OutputsActiveLow:          g.OutputsActiveLow,
			ObstructionNormallyClosed: g.ObstructionNormallyClosed,
			// A simulated gate has every sensor and output, so that every
			// safety rule can be tried.
			HasObstruction: true, HasStop: g.OutputMode == "pulse", HasSiren: true,
		}, clk)
		return hardware{pins: s.Pins(), sim: s}, nil
	}
	if _, err := host.Init(); err != nil {
		return hardware{}, fmt.Errorf("gpio: %w", err)
	}
	var p gate.Pins
	var errs []error
	lookup := func(key, name string) gpio.PinIO {
		if name == "" {
			return nil
		}
		pin := gpioreg.ByName(name)
		if pin == nil {
			errs = append(errs, cfg.KeyError("gpio."+key, "no pin named %q on this machine (names as periph knows them: \"GPIO17\")", name))
		}
		return pin
	}
	in := func(key, name string) gpio.PinIn {
		if pin := lookup(key, name); pin != nil {
			return pin
		}
		return nil
	}
	out := func(key, name string) gpio.PinOut {
		if pin := lookup(key, name); pin != nil {
			return pin
		}
		return nil
	}
	p.OpenLimit = in("open_limit", g.OpenLimit)
	p.ClosedLimit = in("closed_limit", g.ClosedLimit)
	p.Obstruction = in("obstruction", g.Obstruction)
	p.MotorOpen = out("motor_open", g.MotorOpen)
	p.MotorClose = out("motor_close", g.MotorClose)
	p.MotorStop = out("motor_stop", g.MotorStop)
	p.Siren = out("siren", g.Siren)
	if len(errs) > 0 {
		return hardware{}, usageError{errors.Join(errs...)}
	}
	return hardware{pins: p}, nil
}
