package main

import (
	"context"
	"errors"
	"strings"
	"testing"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"

	"rocksaying.tw/gated/internal/config"
)

// failingPin is an output whose relay board does not answer.
type failingPin struct{ gpiotest.Pin }

func (p *failingPin) Out(gpio.Level) error { return errors.New("i/o error") }

func TestSwitchOff(t *testing.T) {
	for _, activeLow := range []bool{false, true} {
		off := gpio.Level(activeLow)
		on := !off
		t.Run(map[bool]string{false: "active high", true: "active low"}[activeLow], func(t *testing.T) {
			pins := map[string]gpio.PinIO{}
			for _, n := range []string{"GPIO23", "GPIO24", "GPIO25", "GPIO5", "GPIO6"} {
				pins[n] = &gpiotest.Pin{N: n, L: on}
			}
			pins["GPIO26"] = &failingPin{gpiotest.Pin{N: "GPIO26", L: on}}
			byName := func(n string) gpio.PinIO { return pins[n] }
			level := func(n string) gpio.Level {
				p := pins[n].(*gpiotest.Pin)
				p.Lock()
				defer p.Unlock()
				return p.L
			}

			g := config.GPIO{MotorOpen: "GPIO23", MotorClose: "GPIO24", Siren: "GPIO5", OutputsActiveLow: activeLow}
			done, err := switchOff(configuredOutputs(g), byName, inactive(g))
			if err != nil {
				t.Fatalf("switchOff: %v", err)
			}
			if want := "motor_open=GPIO23 motor_close=GPIO24 siren=GPIO5"; done != want {
				t.Errorf("switched off %q, want %q", done, want)
			}
			for n, want := range map[string]gpio.Level{"GPIO23": off, "GPIO24": off, "GPIO5": off, "GPIO25": on, "GPIO6": on} {
				if got := level(n); got != want {
					t.Errorf("%s = %s, want %s", n, got, want)
				}
			}

			// A missing pin and a failing one are reported; the
			// outputs after them are still switched off.
			pins["GPIO25"].Out(on)
			g = config.GPIO{MotorOpen: "GPIO99", MotorClose: "GPIO26", MotorStop: "GPIO25", OutputsActiveLow: activeLow}
			done, err = switchOff(configuredOutputs(g), byName, inactive(g))
			for _, want := range []string{`gpio.motor_open: no pin named "GPIO99"`, "gpio.motor_close: gpio GPIO26: i/o error"} {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("err = %v, want it to contain %q", err, want)
				}
			}
			if done != "motor_stop=GPIO25" || level("GPIO25") != off {
				t.Errorf("switched off %q (GPIO25 = %s), want motor_stop=GPIO25 at %s", done, level("GPIO25"), off)
			}
		})
	}
}

func TestOutputsOffCommand(t *testing.T) {
	sim := writeConfig(t, "[gpio]\ndriver = \"sim\"\n")
	// No GPIO chip has these names on a build machine.
	unreadable := writeConfig(t, "[gpio]\ndriver = \"sim\"\n[mqtt]\nusername = \"gate\"\npassword_file = \"/nonexistent/password\"\n")
	periph := writeConfig(t, "[gpio]\nopen_limit = \"NOPE17\"\nclosed_limit = \"NOPE27\"\nmotor_open = \"NOPE23\"\nmotor_close = \"NOPE24\"\n")
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stderr []string
	}{
		{"driver sim", []string{"-outputs-off", "-config", sim}, 0, []string{"nothing to do with driver sim"}},
		{"missing pins", []string{"-outputs-off", "-config", periph}, 1, []string{
			"outputs off failed", `gpio.motor_open: no pin named \"NOPE23\"`, `gpio.motor_close: no pin named \"NOPE24\"`}},
		{"bad config", []string{"-outputs-off", "-config", "/nonexistent/gated.toml"}, 2, []string{"/nonexistent/gated.toml"}},
		// ExecStopPost= runs when systemd has taken the service's
		// credentials away: the MQTT password must not stop it.
		{"unreadable password", []string{"-outputs-off", "-config", unreadable}, 0, []string{"nothing to do with driver sim"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runGated(context.Background(), tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d\nstderr: %s", code, tc.code, stderr)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
			for _, want := range tc.stderr {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr %q\nwant it to contain %q", stderr, want)
				}
			}
			if strings.Contains(stderr, "NOPE17") || strings.Contains(stderr, "NOPE27") {
				t.Errorf("stderr %q names an input: -outputs-off opens only the outputs", stderr)
			}
		})
	}
}
