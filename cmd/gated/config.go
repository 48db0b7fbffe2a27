package main

// The configuration: loaded and checked once by internal/config, with the
// command line's overrides, then handed to each part by one function a
// part.

import (
	"fmt"
	"os"

	"rocksaying.tw/gated/internal/config"
	"rocksaying.tw/gated/internal/dbuslink"
	"rocksaying.tw/gated/internal/gate"
	"rocksaying.tw/gated/internal/mqttlink"
	"rocksaying.tw/gated/internal/position"
	"rocksaying.tw/gated/internal/sim"
)

// demoDefaults is the configuration of -demo without -config.
const demoDefaults = `
[gate]
name = "demo"
[gpio]
driver = "sim"
`

// loadConfig is what -check-config checks and what the daemon starts from:
// the file (or the demo's defaults) as internal/config reads it, with the
// overrides of -simulate and -demo.
func loadConfig(f flags) (config.Config, error) {
	var cfg config.Config
	var err error
	if f.demo && !f.configSet {
		cfg, err = config.FromString(demoDefaults, "(demo defaults)")
	} else {
		cfg, err = config.FromFile(f.config)
	}
	if err != nil {
		return cfg, err
	}
	if f.simulate || f.demo {
		cfg.GPIO.Driver = "sim"
	}
	if f.demo && cfg.DBus.Bus == "system" {
		cfg.DBus.Bus = "none"
		if sessionBus() {
			cfg.DBus.Bus = "session"
		}
	}
	return cfg, nil
}

// sessionBus reports whether this user has a session bus to join.
func sessionBus() bool {
	if os.Getenv("DBUS_SESSION_BUS_ADDRESS") != "" {
		return true
	}
	_, err := os.Stat(fmt.Sprintf("/run/user/%d/bus", os.Getuid()))
	return err == nil
}

func gateConfig(c config.Config) gate.Config {
	return gate.Config{
		Name: c.Gate.Name,
		Params: gate.Params{
			TravelTimeout:     c.Gate.TravelTimeout,
			ReverseDelay:      c.Gate.ReverseDelay,
			AutoClose:         c.Gate.AutoClose,
			AlarmDuration:     c.Gate.AlarmDuration,
			AlarmOnForcedOpen: c.Gate.AlarmOnForcedOpen,
			WarnBeforeClose:   c.Gate.WarnBeforeClose,
			WarnOnRemoteClose: c.Gate.WarnOnRemoteClose,
		},
		InputsActiveLow:           c.GPIO.InputsActiveLow,
		OutputsActiveLow:          c.GPIO.OutputsActiveLow,
		ObstructionNormallyClosed: c.GPIO.ObstructionNormallyClosed,
		OutputMode:                gate.OutputMode(c.GPIO.OutputMode),
		PulseWidth:                c.GPIO.PulseWidth,
		Debounce:                  c.GPIO.Debounce,
		Position:                  position.Config{OpenTime: c.Gate.OpenTime, CloseTime: c.Gate.CloseTime},
		PedestrianPosition:        c.Gate.PedestrianPosition,
		ObstructionTestTime:       c.GPIO.ObstructionTestTime,
	}
}

func simConfig(c config.Config) sim.Config {
	g := c.GPIO
	return sim.Config{
		TravelTime:                c.Sim.TravelTime,
		Pulse:                     g.OutputMode == "pulse",
		InputsActiveLow:           g.InputsActiveLow,
		OutputsActiveLow:          g.OutputsActiveLow,
		ObstructionNormallyClosed: g.ObstructionNormallyClosed,
		// A simulated gate has every sensor and output, so that every
		// safety rule can be tried.
		HasObstruction: true, HasStop: g.OutputMode == "pulse", HasSiren: true,
		// Its photo eye has a test output when the file asks for the
		// self-test (any pin name: the simulator's pins have none).
		HasObstructionTest: g.ObstructionTest != "",
	}
}

func mqttConfig(c config.Config) mqttlink.Config {
	m := c.MQTT
	return mqttlink.Config{
		Broker: m.URL, TLS: m.TLS, ClientID: m.ClientID, TopicPrefix: m.TopicPrefix,
		Username: m.Username, Password: m.Password,
		KeepAlive: m.KeepAlive, MaxCommandAge: m.MaxCommandAge,
		Discovery: m.Discovery, DiscoveryPrefix: m.DiscoveryPrefix, GateName: c.Gate.Name, Kind: c.Gate.Kind,
	}
}

func dbusConfig(c config.Config) dbuslink.Config { return dbuslink.Config{Bus: c.DBus.Bus} }
