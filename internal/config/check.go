package config

// The rules that a TOML type cannot express, one function a section. Each
// finds every problem of its section (and of the keys in other sections
// that its rules span) and names the key to blame.

import (
	"fmt"
	"strings"
	"time"

	"rocksaying.tw/gated/internal/position"
)

type problem struct{ key, msg string }

// problems collects what is wrong, with helpers for the common rules.
type problems []problem

func (ps *problems) add(key, format string, args ...any) {
	*ps = append(*ps, problem{key, fmt.Sprintf(format, args...)})
}

func (ps *problems) positive(key string, d time.Duration) {
	if d <= 0 {
		ps.add(key, "must be a positive duration, got %s", d)
	}
}

func (ps *problems) notNegative(key string, d time.Duration) {
	if d < 0 {
		ps.add(key, "must not be negative, got %s", d)
	}
}

// check runs every section's rules. Those that need a file read or a URL
// parsed (the [mqtt] section) set the settings they derive, so that
// nothing checks or reads them again.
func (c *Config) check() []problem {
	var ps problems
	for _, section := range []func(*Config, *problems){
		checkGate, checkGPIO, checkSim, checkMQTT, checkDBus, checkWeb, checkHist,
	} {
		section(c, &ps)
	}
	return ps
}

func checkGate(c *Config, ps *problems) {
	g := c.Gate
	if strings.TrimSpace(g.Name) == "" {
		ps.add("gate.name", "must not be empty")
	}
	ps.positive("gate.travel_timeout", g.TravelTimeout)
	ps.notNegative("gate.reverse_delay", g.ReverseDelay)
	ps.notNegative("gate.auto_close", g.AutoClose)
	ps.notNegative("gate.alarm_duration", g.AlarmDuration)
	checkPosition(g, ps)
	// A simulated gate always has an obstruction sensor.
	if g.AutoClose > 0 && c.GPIO.Driver == "periph" && c.GPIO.Obstruction == "" {
		// UL 325: automatic closing needs entrapment protection.
		ps.add("gate.auto_close", "needs an obstruction sensor (gpio.obstruction): a gate must not close by itself without one")
	}
	ps.notNegative("gate.warn_before_close", g.WarnBeforeClose)
	if g.AutoClose > 0 {
		// 16 CFR 1211.14: an audible and visual alarm at least 5 s before
		// an unattended close. A simulated gate always has a siren.
		if g.WarnBeforeClose < MinWarnBeforeClose {
			ps.add("gate.warn_before_close", "must be at least %s with auto_close (16 CFR 1211.14), got %s", MinWarnBeforeClose, g.WarnBeforeClose)
		}
		if c.GPIO.Driver == "periph" && c.GPIO.Warning == "" && c.GPIO.Siren == "" {
			ps.add("gate.auto_close", "needs an output to warn with before it closes (gpio.warning or gpio.siren)")
		}
	}
}

// MinWarnBeforeClose is the least warning before an automatic close.
const MinWarnBeforeClose = 5 * time.Second

// MaxObstructionTest bounds obstruction_test_time + debounce: a close's
// answer waits for the self-test, twice that at most, and the links wait
// two seconds for an answer.
const MaxObstructionTest = 500 * time.Millisecond

func checkGPIO(c *Config, ps *problems) {
	g := c.GPIO
	switch g.Driver {
	case "periph":
		checkPins(g, ps)
	case "sim": // the simulator brings every pin
	default:
		ps.add("gpio.driver", `must be "periph" or "sim", got %q`, g.Driver)
	}
	switch g.OutputMode {
	case "hold":
		if g.MotorStop != "" {
			ps.add("gpio.motor_stop", `is used only with output_mode = "pulse"`)
		}
	case "pulse":
		ps.positive("gpio.pulse_width", g.PulseWidth)
		if g.PulseWidth >= c.Gate.TravelTimeout && c.Gate.TravelTimeout > 0 {
			ps.add("gpio.pulse_width", "must be shorter than gate.travel_timeout")
		}
	default:
		ps.add("gpio.output_mode", `must be "hold" or "pulse", got %q`, g.OutputMode)
	}
	ps.notNegative("gpio.debounce", g.Debounce)
	if g.Debounce > time.Second {
		ps.add("gpio.debounce", "%s is longer than any switch bounces; at most 1s", g.Debounce)
	}
	ps.positive("gpio.obstruction_test_time", g.ObstructionTestTime)
	if g.ObstructionTest != "" {
		if g.Driver == "periph" && g.Obstruction == "" {
			ps.add("gpio.obstruction_test", "needs an obstruction sensor (gpio.obstruction) to test")
		}
		if t := g.ObstructionTestTime + g.Debounce; g.ObstructionTestTime > 0 && t > MaxObstructionTest {
			ps.add("gpio.obstruction_test_time", "with debounce (%s) must be at most %s: a close waits for the test, got %s", g.Debounce, MaxObstructionTest, t)
		}
	}
}

// checkPins checks the pins of driver "periph": the four the gate cannot
// do without, and no pin used twice.
func checkPins(g GPIO, ps *problems) {
	for _, p := range []struct{ key, val string }{
		{"gpio.open_limit", g.OpenLimit}, {"gpio.closed_limit", g.ClosedLimit},
		{"gpio.motor_open", g.MotorOpen}, {"gpio.motor_close", g.MotorClose},
	} {
		if p.val == "" {
			ps.add(p.key, `is required with driver = "periph" (a pin name such as "GPIO17")`)
		}
	}
	seen := map[string]string{}
	for _, p := range []struct{ key, val string }{
		{"gpio.open_limit", g.OpenLimit}, {"gpio.closed_limit", g.ClosedLimit},
		{"gpio.obstruction", g.Obstruction}, {"gpio.motor_open", g.MotorOpen},
		{"gpio.motor_close", g.MotorClose}, {"gpio.motor_stop", g.MotorStop}, {"gpio.siren", g.Siren},
		{"gpio.warning", g.Warning}, {"gpio.obstruction_test", g.ObstructionTest},
	} {
		if p.val == "" {
			continue
		}
		if other, dup := seen[p.val]; dup {
			ps.add(p.key, "pin %q is already used by %s", p.val, other)
		}
		seen[p.val] = p.key
	}
}

func checkSim(c *Config, ps *problems) {
	ps.positive("sim.travel_time", c.Sim.TravelTime)
}

// checkMQTT checks the [mqtt] section when there is a broker, and reads
// what the link needs from files: the password and the TLS certificates.
func checkMQTT(c *Config, ps *problems) {
	m := &c.MQTT
	if m.Broker == "" {
		return // no MQTT: nothing else in the section is used
	}
	if msg := topicProblem(m.TopicPrefix); msg != "" {
		ps.add("mqtt.topic_prefix", "%q: %s", m.TopicPrefix, msg)
	}
	if m.Discovery {
		if msg := topicProblem(m.DiscoveryPrefix); msg != "" {
			ps.add("mqtt.discovery_prefix", "%q: %s", m.DiscoveryPrefix, msg)
		}
	}
	if strings.ContainsAny(m.ClientID, "+#/") {
		ps.add("mqtt.client_id", "%q must not contain +, # or /", m.ClientID)
	}
	if m.ClientID == "" {
		m.ClientID = DefaultClientID()
	}
	if m.KeepAlive < time.Second {
		ps.add("mqtt.keepalive", "must be at least 1s, got %s", m.KeepAlive)
	}
	ps.positive("mqtt.max_command_age", m.MaxCommandAge)

	url, secure, err := parseBroker(m.Broker)
	if err != nil {
		ps.add("mqtt.broker", "%v", err)
	}
	parsed := err == nil
	m.URL = url
	files := []struct{ key, path string }{
		{"mqtt.password_file", m.PasswordFile}, {"mqtt.ca_file", m.CAFile},
		{"mqtt.cert_file", m.CertFile}, {"mqtt.key_file", m.KeyFile},
	}
	usable := true // every file named is an absolute path
	for _, f := range files {
		if f.path != "" && !strings.HasPrefix(f.path, "/") {
			ps.add(f.key, "%q: must be an absolute path", f.path)
			usable = false
		}
	}
	if (m.CertFile == "") != (m.KeyFile == "") {
		ps.add("mqtt.cert_file", "cert_file and key_file go together: set both or neither")
		usable = false
	}
	if parsed && !secure {
		for _, f := range files[1:] {
			if f.path != "" {
				ps.add(f.key, "needs an ssl://, tls:// or mqtts:// broker, not %q", m.Broker)
				usable = false
			}
		}
	}
	if !usable {
		return
	}
	if m.Password, err = readPassword(m.PasswordFile); err != nil {
		ps.add("mqtt.password_file", "%v", err)
	}
	if parsed && secure {
		m.TLS = tlsConfig(*m, ps)
	}
}

// topicProblem says what is wrong with a topic prefix, or "".
func topicProblem(t string) string {
	if t == "" || strings.ContainsAny(t, "+#\x00") || strings.HasPrefix(t, "/") || strings.HasSuffix(t, "/") {
		return "must be non-empty, without + or # and without a leading or trailing /"
	}
	return ""
}

func checkDBus(c *Config, ps *problems) {
	switch b := c.DBus.Bus; {
	case b == "system", b == "session", b == "none":
	case strings.Contains(b, ":") && strings.Contains(b, "="):
	default:
		ps.add("dbus.bus", `must be "system", "session", "none" or a D-Bus address such as "unix:path=/run/bus", got %q`, b)
	}
}

// checkPosition checks the keys of SPEC.md "Position".
func checkPosition(g Gate, ps *problems) {
	if g.Kind != "gate" && g.Kind != "garage" {
		ps.add("gate.kind", `must be "gate" or "garage", got %q`, g.Kind)
	}
	for _, k := range []struct {
		key string
		d   time.Duration
	}{{"gate.open_time", g.OpenTime}, {"gate.close_time", g.CloseTime}} {
		ps.notNegative(k.key, k.d)
		if k.d > position.MaxTravel {
			ps.add(k.key, "must be at most %v", position.MaxTravel)
		}
	}
	if g.PedestrianPosition < 0 || g.PedestrianPosition > 99 {
		ps.add("gate.pedestrian_position", "must be 0 (off) or 1 to 99, got %d", g.PedestrianPosition)
	}
}
