package main

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/jonboulle/clockwork"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/host/v3"
	"periph.io/x/host/v3/gpioioctl"

	"rocksaying.tw/gated/internal/config"
	"rocksaying.tw/gated/internal/gate"
	"rocksaying.tw/gated/internal/gpiocdev"
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
	var errs, failed []error
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
	in := func(key, name string) gpio.PinIn {
		if pin := lookup(key, name); pin != nil {
			return pin
		}
		return nil
	}
	// Each output is made an output at its inactive level before anything
	// else touches it, and is never read (Read would make it an input).
	off := inactive(g)
	out := func(key, name string) gpio.PinOut {
		pin := lookup(key, name)
		if pin == nil {
			return nil
		}
		o, err := outputAt(pin, off)
		if err != nil {
			failed = append(failed, fmt.Errorf("gpio.%s: %w", key, err))
			return nil
		}
		return o
	}
	p.OpenLimit = in("open_limit", g.OpenLimit)
	p.ClosedLimit = in("closed_limit", g.ClosedLimit)
	p.Obstruction = in("obstruction", g.Obstruction)
	p.MotorOpen = out("motor_open", g.MotorOpen)
	p.MotorClose = out("motor_close", g.MotorClose)
	p.MotorStop = out("motor_stop", g.MotorStop)
	p.Siren = out("siren", g.Siren)
	p.Warning = out("warning", g.Warning)
	p.ObstructionTest = out("obstruction_test", g.ObstructionTest)
	if len(errs) > 0 {
		return hardware{}, usageError{errors.Join(errs...)}
	}
	if len(failed) > 0 {
		return hardware{}, errors.Join(failed...)
	}
	return hardware{pins: p}, nil
}

// inactive is the level that switches an output off.
func inactive(g config.GPIO) gpio.Level { return gpio.Level(g.OutputsActiveLow) }

// outputAt makes pin an output already at level l. A line of the GPIO
// character device is requested with l as its initial value: periph's
// gpioioctl (host/v3 v3.8.5) would first make it an output driven low, an
// instant that energises every relay of an active-low board (see
// internal/gpiocdev). Any other pin gets Out(l): periph's bcm283x driver
// (/dev/gpiomem on a Pi 0-4) sets the level before the mode.
func outputAt(pin gpio.PinIO, l gpio.Level) (gpio.PinOut, error) {
	line, ok := pin.(*gpioioctl.GPIOLine)
	if !ok {
		if err := pin.Out(l); err != nil {
			return nil, fmt.Errorf("gpio %s: %w", pin.Name(), err)
		}
		return pin, nil
	}
	for _, chip := range gpioioctl.Chips {
		for _, cl := range chip.Lines() {
			if cl == line {
				return gpiocdev.RequestOutput(chip.Path(), line.Number(), line.Name(), gpiocdev.Consumer(), l)
			}
		}
	}
	return nil, fmt.Errorf("gpio %s: on no GPIO chip", line.Name())
}
