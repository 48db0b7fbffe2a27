package mqttlink

import (
	"encoding/json"
	"testing"
	"time"

	"rocksaying.tw/gated/internal/gate"
	"rocksaying.tw/gated/internal/gate/gatetest"
	"rocksaying.tw/gated/internal/mqttlink/mqtttest"
	"rocksaying.tw/gated/internal/position"
)

// TestPlayHomeAssistant plays Home Assistant against a real mosquitto: it
// finds the gate through the discovery prefix alone, migrates the
// per-entity document an earlier gated left retained, says online on its
// status topic and gets discovery and state again, and drives the cover
// and its position through the topics the device document names, as
// Home Assistant's MQTT cover would.
func TestPlayHomeAssistant(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	// Travel times of an hour: the position moves a percent in 36s, so the
	// gate stays where the test puts it.
	tg := gatetest.StartConfigured(t, func(c *gate.Config) {
		c.Position = position.Config{OpenTime: time.Hour, CloseTime: time.Hour}
	}, true)
	ha := mqtttest.Connect(t, b.URL)
	// An earlier gated's per-entity cover document, retained.
	legacy := "homeassistant/cover/gated-ha/gate/config"
	ha.PublishRetained(legacy, []byte(`{"name":null,"unique_id":"gated-ha_gate","command_topic":"tw/rocksaying/command"}`))
	disc := ha.Subscribe("homeassistant/#")
	next(t, disc, 5*time.Second, "the legacy document, replayed", func(m mqtttest.Msg) bool { return m.Topic == legacy })

	l, _ := startLink(t, Config{Broker: b.URL, ClientID: "gated-ha", Discovery: true, Kind: "garage", GateName: "Garage"}, tg, Options{Version: "1.2.3"})
	device := "homeassistant/device/gated-ha/config"

	// The migration, in Home Assistant's order: migrate_discovery on the
	// old topic, the device document, the old topic cleared.
	var seen []string
	for len(seen) < 4 || seen[len(seen)-1] != legacy+" (empty)" {
		m := next(t, disc, 10*time.Second, "migration", func(m mqtttest.Msg) bool { return m.Topic == legacy || m.Topic == device })
		switch {
		case m.Topic == legacy && m.Payload == haMigratePayload:
			seen = append(seen, legacy+" migrate")
		case m.Topic == legacy && m.Payload == "":
			seen = append(seen, legacy+" (empty)")
		case m.Topic == device:
			seen = append(seen, device)
		default:
			t.Fatalf("unexpected %s: %q", m.Topic, m.Payload)
		}
		if len(seen) > 6 {
			break
		}
	}
	// The device document on connecting, then the migration's three.
	want := []string{device, legacy + " migrate", device, legacy + " (empty)"}
	if len(seen) != len(want) || seen[1] != want[1] || seen[2] != want[2] || seen[3] != want[3] {
		t.Fatalf("messages %q, want %q", seen, want)
	}

	// Home Assistant restarts: its birth message brings discovery, state
	// and position again.
	state := ha.Subscribe(l.t.state)
	next(t, state, 5*time.Second, "retained state", payloadIs("closed"))
	posAgain := ha.Subscribe(l.t.position)
	next(t, posAgain, 5*time.Second, "retained position", payloadIs("0"))
	ha.Publish("homeassistant/status", []byte("online"))
	m := next(t, disc, 10*time.Second, "discovery after online", func(m mqtttest.Msg) bool { return m.Topic == device })
	next(t, state, 10*time.Second, "state after online", payloadIs("closed"))
	next(t, posAgain, 10*time.Second, "position after online", payloadIs("0"))

	// Read the cover as Home Assistant does.
	var doc struct {
		Components map[string]map[string]any `json:"components"`
	}
	if err := json.Unmarshal([]byte(m.Payload), &doc); err != nil {
		t.Fatal(err)
	}
	cover := doc.Components[haCompCover]
	str := func(k string) string {
		s, ok := cover[k].(string)
		if !ok || s == "" {
			t.Fatalf("cover %s = %v", k, cover[k])
		}
		return s
	}
	if cover["device_class"] != "garage" {
		t.Errorf("device_class %v, want garage ([gate] kind)", cover["device_class"])
	}
	posTopic, setTopic, cmdTopic := str("position_topic"), str("set_position_topic"), str("command_topic")
	positions := ha.Subscribe(posTopic)
	next(t, positions, 5*time.Second, "position 0 when closed", payloadIs("0"))
	results := ha.Subscribe(l.t.result)

	// The slider to 40: the gate opens.
	ha.Publish(setTopic, []byte("40"))
	r := decodeResult(t, next(t, results, 5*time.Second, "result", func(mqtttest.Msg) bool { return true }))
	if !r.OK || r.Command != "position" || r.State != gate.Opening {
		t.Fatalf("position 40: result %+v, want ok, opening", r)
	}
	if o, _ := tg.Motors(); !o {
		t.Error("motor_open off after position 40")
	}
	tg.Set(tg.ClosedLimit, false) // the leaf leaves the closed limit
	// Stop: the state template shows a stopped gate as open at its position.
	ha.Publish(cmdTopic, []byte(str("payload_stop")))
	if r := decodeResult(t, next(t, results, 5*time.Second, "result", func(mqtttest.Msg) bool { return true })); !r.OK || r.Command != "stop" {
		t.Fatalf("stop: result %+v", r)
	}
	tg.WaitFor("stopped", func(st gate.Status) bool { return st.State == gate.Stopped })
	next(t, state, 5*time.Second, "state stopped", payloadIs("stopped"))
	next(t, positions, 5*time.Second, "position at the stop", func(m mqtttest.Msg) bool { return m.Payload == "0" || m.Payload == "1" })

	// A nonsense position is answered, and moves nothing.
	ha.Publish(setTopic, []byte("140"))
	r = decodeResult(t, next(t, results, 5*time.Second, "result", func(mqtttest.Msg) bool { return true }))
	if r.OK || r.Error != string(gate.ReasonRange) {
		t.Errorf("position 140: result %+v, want out_of_range", r)
	}
	// The position command topic form works too.
	ha.Publish(l.t.command, []byte(`{"command":"position","position":0,"id":"c"}`))
	r = decodeResult(t, next(t, results, 5*time.Second, "result", func(mqtttest.Msg) bool { return true }))
	if !r.OK || r.ID != "c" || r.State != gate.Closing {
		t.Errorf("position 0: result %+v, want ok, closing", r)
	}
}

// TestPositionUnknownOnMQTT: a position command while the position is
// unknown is refused with position_unknown, and <prefix>/position holds an
// empty retained message.
func TestPositionUnknownOnMQTT(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	tg := gatetest.StartUnknown(t)
	l, _ := startLink(t, Config{Broker: b.URL}, tg, Options{})
	user := mqtttest.Connect(t, b.URL)
	online(t, user, l.cfg.TopicPrefix)
	results := user.Subscribe(l.t.result)
	user.Publish(l.t.positionSet, []byte("40"))
	r := decodeResult(t, next(t, results, 5*time.Second, "result", func(mqtttest.Msg) bool { return true }))
	if r.OK || r.Error != string(gate.ReasonPositionUnknown) || r.Command != "position" {
		t.Errorf("result %+v, want position_unknown", r)
	}
	// Nothing retained on the position topic: a retained message would
	// come before a message published after subscribing.
	pos := user.Subscribe(l.t.position)
	other := mqtttest.Connect(t, b.URL)
	other.Publish(l.t.position, []byte("sentinel"))
	if m := next(t, pos, 5*time.Second, "message", func(mqtttest.Msg) bool { return true }); m.Payload != "sentinel" {
		t.Errorf("position topic holds %q while the position is unknown", m.Payload)
	}
}
