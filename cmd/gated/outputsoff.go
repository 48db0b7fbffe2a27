package main

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/host/v3"

	"rocksaying.tw/gated/internal/config"
	"rocksaying.tw/gated/internal/gpiocdev"
)

// outputsOff is `gated -outputs-off`, gated.service's ExecStopPost=: it
// switches every configured output to its inactive level and exits. gated
// does that itself on any exit it can catch (SPEC invariant 6); this covers
// the ones it cannot: SIGKILL, the watchdog's SIGABRT, a panic, the OOM
// killer. A Pi keeps driving a released line at its last level, so a motor
// relay would stay energised until something else stopped the gate.
//
// It opens only the output pins, never the inputs. systemd runs it once the
// main process is gone; on the GPIO character device the kernel also refuses
// it a line that a running gated still holds (EBUSY). It returns 0 when every
// output was switched off, 1 when one could not be (the error on stderr,
// every other output still tried).
//
// It reads only the [gpio] section (config.GPIOFromFile): the daemon's other
// settings, and the MQTT credential systemd has already taken away when
// ExecStopPost= runs, must not stop it switching a relay off.
func outputsOff(f flags, log *slog.Logger) int {
	if f.simulate || f.demo {
		log.Info("outputs off: nothing to do with a simulated gate")
		return exitOK
	}
	g, err := config.GPIOFromFile(f.config)
	if err != nil {
		log.Error("outputs off failed", "err", err)
		return exitUsage
	}
	if g.Driver == "sim" {
		log.Info("outputs off: nothing to do with driver sim")
		return exitOK
	}
	if _, err := host.Init(); err != nil {
		log.Error("outputs off failed", "err", fmt.Errorf("gpio: %w", err))
		return exitFailure
	}
	done, err := switchOff(configuredOutputs(g), gpioreg.ByName, inactive(g))
	if err != nil {
		log.Error("outputs off failed", "err", err, "off", done)
		return exitFailure
	}
	log.Info("outputs off", "pins", done, "level", inactive(g))
	return exitOK
}

type output struct{ key, name string }

// configuredOutputs are the outputs gated drives, by config key.
func configuredOutputs(g config.GPIO) []output {
	var outs []output
	for _, o := range []output{
		{"motor_open", g.MotorOpen},
		{"motor_close", g.MotorClose},
		{"motor_stop", g.MotorStop},
		{"siren", g.Siren},
		{"warning", g.Warning},
		{"obstruction_test", g.ObstructionTest}, // the photo eye unpowered reads obstructed: fail-safe
	} {
		if o.name != "" {
			outs = append(outs, o)
		}
	}
	return outs
}

// switchOff makes each output an output at level off and releases the
// lines it requested; a failure does not stop it from trying the others.
// It returns the outputs switched off ("motor_open=GPIO23 …").
func switchOff(outs []output, byName func(string) gpio.PinIO, off gpio.Level) (string, error) {
	var done []string
	var errs []error
	for _, o := range outs {
		pin := byName(o.name)
		if pin == nil {
			errs = append(errs, fmt.Errorf("gpio.%s: no pin named %q on this machine", o.key, o.name))
			continue
		}
		p, err := outputAt(pin, off)
		if err != nil {
			errs = append(errs, fmt.Errorf("gpio.%s: %w", o.key, err))
			continue
		}
		if line, ok := p.(*gpiocdev.Output); ok {
			// Released as exiting would release it; what the line does
			// then is the chip driver's choice.
			if err := line.Close(); err != nil {
				errs = append(errs, fmt.Errorf("gpio.%s: release %s: %w", o.key, o.name, err))
				continue
			}
		}
		done = append(done, o.key+"="+o.name)
	}
	return strings.Join(done, " "), errors.Join(errs...)
}
