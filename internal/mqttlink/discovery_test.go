package mqttlink

import (
	"encoding/json"
	"testing"
	"time"

	"rocksaying.tw/gated/internal/gate/gatetest"
	"rocksaying.tw/gated/internal/mqttlink/mqtttest"
)

func TestDiscoveryDocuments(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	tg := gatetest.Start(t)
	l, _ := startLink(t, Config{Broker: b.URL, ClientID: "gated-pi.4", Discovery: true, DiscoveryPrefix: "ha", GateName: "Front gate"}, tg, Options{Version: "1.2.3"})
	p := l.cfg.TopicPrefix
	// The documents go out before "online"; subscribing afterwards shows
	// they are retained.
	user := mqtttest.Connect(t, b.URL)
	online(t, user, p)
	docs := user.Subscribe("ha/#")

	avail := map[string]any{"availability_topic": p + "/availability", "payload_available": "online", "payload_not_available": "offline"}
	device := map[string]any{"identifiers": []any{"gated-pi_4"}, "name": "Front gate", "manufacturer": "rocksaying.tw", "model": "gated", "sw_version": "1.2.3"}
	want := map[string]map[string]any{
		"ha/cover/gated-pi_4/gate/config": {
			"device_class": "gate", "unique_id": "gated-pi_4_gate", "command_topic": p + "/command", "state_topic": p + "/state",
			"payload_open": "open", "payload_close": "close", "payload_stop": "stop",
			"state_open": "open", "state_opening": "opening", "state_closed": "closed", "state_closing": "closing", "state_stopped": "stopped",
		},
		"ha/siren/gated-pi_4/alarm/config": {
			"unique_id": "gated-pi_4_alarm", "command_topic": p + "/command", "payload_on": "alarm", "payload_off": "silence",
			"state_topic": p + "/status", "state_value_template": "{{ 'ON' if value_json.alarm else 'OFF' }}", "state_on": "ON", "state_off": "OFF",
		},
		"ha/binary_sensor/gated-pi_4/obstruction/config": {
			"unique_id": "gated-pi_4_obstruction", "state_topic": p + "/status", "payload_on": "ON", "payload_off": "OFF",
		},
	}
	for range len(want) {
		m := next(t, docs, 10*time.Second, "discovery document", func(mqtttest.Msg) bool { return true })
		fields, ok := want[m.Topic]
		if !ok {
			t.Errorf("unexpected discovery topic %s", m.Topic)
			continue
		}
		if !m.Retained {
			t.Errorf("%s: not retained", m.Topic)
		}
		var doc map[string]any
		if err := json.Unmarshal([]byte(m.Payload), &doc); err != nil {
			t.Errorf("%s: %v", m.Topic, err)
			continue
		}
		for k, v := range avail {
			fields[k] = v
		}
		fields["device"] = device
		for k, v := range fields {
			if got, _ := json.Marshal(doc[k]); string(got) != mustJSON(v) {
				t.Errorf("%s: %s = %s, want %s", m.Topic, k, got, mustJSON(v))
			}
		}
		delete(want, m.Topic)
	}
	for topic := range want {
		t.Errorf("no discovery document on %s", topic)
	}
}

func mustJSON(v any) string { b, _ := json.Marshal(v); return string(b) }
