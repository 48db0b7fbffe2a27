// Package config reads gated's TOML configuration file (SPEC.md,
// "Configuration"): every key has a default, unknown keys are errors, and
// every error names the file, the line and the key.
//
// It is the one place that checks the configuration. What FromFile and
// FromString accept, the daemon's parts accept as it is: gated
// -check-config and the daemon load the file the same way, and a part
// (the gate, the MQTT link) takes its settings without checking them again.
// Settings that need a file read or a URL parsed (the broker password, its
// TLS certificates) are read and parsed here, once, at load time.
//
// To add a key: a field in its section's struct (with the toml tag), its
// default in Default, its rules in that section's check function in
// check.go, and cmd/gated hands it to its part.
package config

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Config is the whole file.
type Config struct {
	Gate Gate `toml:"gate"`
	GPIO GPIO `toml:"gpio"`
	Sim  Sim  `toml:"sim"`
	MQTT MQTT `toml:"mqtt"`
	DBus DBus `toml:"dbus"`
	Web  Web  `toml:"web"`     // web.go
	Hist Hist `toml:"history"` // web.go

	file string // where it was read from, for KeyError
	src  string
}

// KeyError returns an *Error about key, for problems found after loading
// (a pin name the hardware does not have).
func (c Config) KeyError(key, format string, args ...any) error {
	return &Error{File: c.file, Line: lineOf(c.src, key), Key: key, Msg: fmt.Sprintf(format, args...)}
}

// Gate is the [gate] section: the rules of the state machine.
type Gate struct {
	Name              string        `toml:"name"`
	TravelTimeout     time.Duration `toml:"travel_timeout"`
	ReverseDelay      time.Duration `toml:"reverse_delay"`
	AutoClose         time.Duration `toml:"auto_close"`
	AlarmDuration     time.Duration `toml:"alarm_duration"`
	AlarmOnForcedOpen bool          `toml:"alarm_on_forced_open"`
	WarnBeforeClose   time.Duration `toml:"warn_before_close"`
	WarnOnRemoteClose bool          `toml:"warn_on_remote_close"`
	// Position (SPEC.md "Position", "Home Assistant").
	Kind               string        `toml:"kind"`       // "gate" or "garage": Home Assistant's device_class
	OpenTime           time.Duration `toml:"open_time"`  // full travel open; 0 = learn
	CloseTime          time.Duration `toml:"close_time"` // full travel closed; 0 = learn
	PedestrianPosition int           `toml:"pedestrian_position"`
}

// GPIO is the [gpio] section: pins by periph name and their wiring.
type GPIO struct {
	Driver                    string        `toml:"driver"`
	OpenLimit                 string        `toml:"open_limit"`
	ClosedLimit               string        `toml:"closed_limit"`
	Obstruction               string        `toml:"obstruction"`
	ObstructionNormallyClosed bool          `toml:"obstruction_normally_closed"`
	MotorOpen                 string        `toml:"motor_open"`
	MotorClose                string        `toml:"motor_close"`
	MotorStop                 string        `toml:"motor_stop"`
	Siren                     string        `toml:"siren"`
	Warning                   string        `toml:"warning"`
	ObstructionTest           string        `toml:"obstruction_test"`
	ObstructionTestTime       time.Duration `toml:"obstruction_test_time"`
	InputsActiveLow           bool          `toml:"inputs_active_low"`
	OutputsActiveLow          bool          `toml:"outputs_active_low"`
	OutputMode                string        `toml:"output_mode"`
	PulseWidth                time.Duration `toml:"pulse_width"`
	Debounce                  time.Duration `toml:"debounce"`
}

// Sim is the [sim] section.
type Sim struct {
	TravelTime time.Duration `toml:"travel_time"`
}

// MQTT is the [mqtt] section.
type MQTT struct {
	Broker          string        `toml:"broker"`
	ClientID        string        `toml:"client_id"`
	TopicPrefix     string        `toml:"topic_prefix"`
	Username        string        `toml:"username"`
	PasswordFile    string        `toml:"password_file"`
	CAFile          string        `toml:"ca_file"`
	CertFile        string        `toml:"cert_file"`
	KeyFile         string        `toml:"key_file"`
	KeepAlive       time.Duration `toml:"keepalive"`
	MaxCommandAge   time.Duration `toml:"max_command_age"`
	Discovery       bool          `toml:"discovery"`
	DiscoveryPrefix string        `toml:"discovery_prefix"`

	// Read from the keys above when the file is loaded, and only with a
	// broker; never printed.
	URL      string      `toml:"-"` // Broker as the link dials it: tcp://host:port or ssl://host:port
	Password string      `toml:"-"` // from the systemd credential mqtt-password, else password_file
	TLS      *tls.Config `toml:"-"` // an ssl:// broker's: ca_file and the client certificate
}

// DBus is the [dbus] section.
type DBus struct {
	Bus string `toml:"bus"`
}

// Default returns the configuration of an empty file.
func Default() Config {
	return Config{
		Gate: Gate{
			Name:              "gate",
			TravelTimeout:     30 * time.Second,
			ReverseDelay:      500 * time.Millisecond,
			AlarmDuration:     60 * time.Second,
			AlarmOnForcedOpen: true,
			WarnBeforeClose:   5 * time.Second,
			Kind:              "gate",
		},
		GPIO: GPIO{
			Driver:                    "periph",
			ObstructionNormallyClosed: true,
			InputsActiveLow:           true,
			OutputMode:                "hold",
			PulseWidth:                500 * time.Millisecond,
			Debounce:                  30 * time.Millisecond,
			ObstructionTestTime:       100 * time.Millisecond,
		},
		Sim: Sim{TravelTime: 8 * time.Second},
		MQTT: MQTT{
			Broker:          "tcp://localhost:1883",
			TopicPrefix:     "tw/rocksaying",
			KeepAlive:       30 * time.Second,
			MaxCommandAge:   10 * time.Second,
			Discovery:       true,
			DiscoveryPrefix: "homeassistant",
		},
		DBus: DBus{Bus: "system"},
		Hist: Hist{Keep: 2160 * time.Hour, MaxEvents: 100000},
	}
}

// Error is a configuration error: which file, line and key, and what is
// wrong. Line is 0 when the key is not in the file (a default, or a rule
// that spans keys).
type Error struct {
	File string
	Line int
	Key  string // "gpio.open_limit"; "" for a syntax error
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Key != "" {
		b.WriteString(": " + e.Key)
	}
	return b.String() + ": " + e.Msg
}

// FromFile reads and checks the file at path.
func FromFile(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return FromString(string(b), path)
}

// FromString reads and checks a configuration; name is used in errors.
// It returns every problem found, joined, each an *Error.
func FromString(s, name string) (Config, error) {
	c := Default()
	md, err := toml.Decode(s, &c)
	if err != nil {
		var pe toml.ParseError
		if ppe := (*toml.ParseError)(nil); errors.As(err, &ppe) {
			pe = *ppe
		} else if !errors.As(err, &pe) {
			// Type mismatches come as "toml: line N (last key "k"): msg".
			if m := typeErr.FindStringSubmatch(err.Error()); m != nil {
				line, _ := strconv.Atoi(m[1])
				return Config{}, &Error{File: name, Line: line, Key: m[2], Msg: m[3]}
			}
			return Config{}, &Error{File: name, Msg: strings.TrimPrefix(err.Error(), "toml: ")}
		}
		return Config{}, &Error{File: name, Line: pe.Position.Line, Key: pe.LastKey, Msg: pe.Message}
	}
	var errs []error
	for _, k := range md.Undecoded() {
		key := k.String()
		errs = append(errs, &Error{File: name, Line: lineOf(s, key), Key: key, Msg: "unknown key"})
	}
	if len(errs) > 0 {
		return Config{}, errors.Join(errs...)
	}
	for _, p := range c.check() {
		errs = append(errs, &Error{File: name, Line: lineOf(s, p.key), Key: p.key, Msg: p.msg})
	}
	if len(errs) > 0 {
		return Config{}, errors.Join(errs...)
	}
	c.file, c.src = name, s
	return c, nil
}

// GPIOFromFile reads only what switching the outputs off needs: the
// [gpio] section of the file at path, with its defaults and checks. It reads
// no other file (no password or credential: gated -outputs-off runs as
// ExecStopPost=, when the service's credentials may be gone) and ignores
// keys it does not know, so that an edited file still lets it switch the
// outputs off.
func GPIOFromFile(path string) (GPIO, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return GPIO{}, fmt.Errorf("config: %w", err)
	}
	c := Default()
	if _, err := toml.Decode(string(b), &c); err != nil {
		return GPIO{}, &Error{File: path, Msg: strings.TrimPrefix(err.Error(), "toml: ")}
	}
	var ps problems
	checkGPIO(&c, &ps)
	var errs []error
	for _, p := range ps {
		errs = append(errs, &Error{File: path, Line: lineOf(string(b), p.key), Key: p.key, Msg: p.msg})
	}
	return c.GPIO, errors.Join(errs...)
}

var typeErr = regexp.MustCompile(`^toml: line (\d+) \(last key "(.*?)"\): (.*)$`)

// lineOf finds the line of a dotted key ("gpio.open_limit") in a TOML text
// written the usual way: a [section] header and key = value lines. It
// returns 0 when the key is not found that way.
func lineOf(s, key string) int {
	section, name := "", key
	if i := strings.LastIndex(key, "."); i >= 0 {
		section, name = key[:i], key[i+1:]
	}
	cur := ""
	for i, line := range strings.Split(s, "\n") {
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "[") {
			cur = strings.TrimSpace(strings.Trim(t, "[]"))
			if j := strings.Index(cur, "#"); j >= 0 {
				cur = strings.TrimSpace(strings.TrimRight(cur[:j], "] "))
			}
			if cur == key {
				return i + 1
			}
			continue
		}
		k, _, ok := strings.Cut(t, "=")
		if !ok {
			continue
		}
		k = strings.Trim(strings.TrimSpace(k), `"'`)
		// key = … in its section, or a dotted key (gpio.open_limit = …) at the top.
		if (cur == section && k == name) || (cur == "" && k == key) {
			return i + 1
		}
	}
	return 0
}

// MaskURL hides a password in a broker URL.
func MaskURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// String returns the effective configuration as TOML, secrets masked.
func (c Config) String() string {
	c.MQTT.Broker = MaskURL(c.MQTT.Broker)
	var b bytes.Buffer
	if err := toml.NewEncoder(&b).Encode(c); err != nil {
		return "# cannot encode: " + err.Error()
	}
	return b.String()
}
