package main

import (
	"errors"
	"fmt"
	"log/slog"

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
func openPins(cfg config.Config, clk clockwork.Clock, log *slog.Logger) (hardware, error) {
	g := cfg.GPIO
	if g.Driver == "sim" {
		scfg := simConfig(cfg)
		scfg.Log = log.With("part", "sim") // its motor stops, with its own position
		s := newSim(scfg, clk)
		p := s.Pins()
		if eye := s.ObstructionTest(); eye != nil {
			p.ObstructionTest = eye
		}
		return hardware{pins: p, sim: s}, nil
	}
	if _, err := host.Init(); err != nil {
		return hardware{}, fmt.Errorf("gpio: %w", err)
	}
	return lookupPins(cfg, gpioreg.ByName)
}

// lookupPins finds the configured pins with byName (gpioreg.ByName). A name
// that byName does not know is a configuration error naming its key.
func lookupPins(cfg config.Config, byName func(string) gpio.PinIO) (hardware, error) {
	g := cfg.GPIO
	var p gate.Pins
	var errs []error
	lookup := func(key, name string) gpio.PinIO {
		if name == "" {
			return nil
		}
		pin := byName(name)
		if pin == nil {
			errs = append(errs, cfg.KeyError("gpio."+key, "no pin named %q on this machine (names as periph knows them: \"GPIO17\")", name))
		}
		return pin
	}
	p.OpenLimit = lookup("open_limit", g.OpenLimit)
	p.ClosedLimit = lookup("closed_limit", g.ClosedLimit)
	p.Obstruction = lookup("obstruction", g.Obstruction)
	p.MotorOpen = lookup("motor_open", g.MotorOpen)
	p.MotorClose = lookup("motor_close", g.MotorClose)
	p.MotorStop = lookup("motor_stop", g.MotorStop)
	p.Siren = lookup("siren", g.Siren)
	p.Warning = lookup("warning", g.Warning)
	p.ObstructionTest = lookup("obstruction_test", g.ObstructionTest)
	if len(errs) > 0 {
		return hardware{}, usageError{errors.Join(errs...)}
	}
	return hardware{pins: p}, nil
}
