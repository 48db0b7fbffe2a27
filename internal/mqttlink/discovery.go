package mqttlink

import (
	"encoding/json"
	"strings"
)

// discoveryDoc is one retained Home Assistant discovery message.
type discoveryDoc struct {
	topic   string
	payload []byte
}

// nodeID is the client id as Home Assistant accepts it in a discovery
// topic and a unique_id: stable for one gate, distinct between gates.
func (l *Link) nodeID() string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-':
			return r
		}
		return '_'
	}, l.cfg.ClientID)
}

// discovery returns the documents that make the gate appear in Home
// Assistant with no YAML: a cover (device_class gate) driven by the state
// topic, a siren for the alarm, and a binary sensor for the obstruction
// sensor. Field names are those of Home Assistant's MQTT cover, siren and
// binary_sensor integrations.
func (l *Link) discovery() []discoveryDoc {
	node := l.nodeID()
	device := map[string]any{
		"identifiers":  []string{node},
		"name":         l.cfg.GateName,
		"manufacturer": "rocksaying.tw",
		"model":        "gated",
		"sw_version":   l.opt.Version,
	}
	origin := map[string]any{"name": "gated", "sw_version": l.opt.Version}
	common := func(m map[string]any) map[string]any {
		m["availability_topic"] = l.t.availability
		m["payload_available"] = "online"
		m["payload_not_available"] = "offline"
		m["device"] = device
		m["origin"] = origin
		m["qos"] = 1
		return m
	}
	cover := common(map[string]any{
		"name":          nil, // the entity takes the device's name
		"unique_id":     node + "_gate",
		"device_class":  "gate",
		"command_topic": l.t.command,
		"payload_open":  "open",
		"payload_close": "close",
		"payload_stop":  "stop",
		"retain":        false, // a retained command would be refused
		"optimistic":    false,
		"state_topic":   l.t.state,
		// unknown and fault are not cover states: "None" tells Home
		// Assistant the state is unknown instead of logging a warning.
		"value_template":        "{{ value if value in ['open', 'opening', 'closed', 'closing', 'stopped'] else 'None' }}",
		"state_open":            "open",
		"state_opening":         "opening",
		"state_closed":          "closed",
		"state_closing":         "closing",
		"state_stopped":         "stopped",
		"json_attributes_topic": l.t.status,
	})
	siren := common(map[string]any{
		"name":          "Alarm",
		"unique_id":     node + "_alarm",
		"command_topic": l.t.command,
		"payload_on":    "alarm",
		"payload_off":   "silence",
		// Without templates the MQTT siren sends {"state":"alarm"}: send
		// the bare word instead.
		"command_template":     "{{ value }}",
		"command_off_template": "{{ value }}",
		"retain":               false,
		"support_duration":     false,
		"support_volume_set":   false,
		"state_topic":          l.t.status,
		"state_value_template": "{{ 'ON' if value_json.alarm else 'OFF' }}",
		"state_on":             "ON",
		"state_off":            "OFF",
	})
	obstruction := common(map[string]any{
		"name":           "Obstruction",
		"unique_id":      node + "_obstruction",
		"device_class":   "safety",
		"state_topic":    l.t.status,
		"value_template": "{{ 'ON' if value_json.obstructed else 'OFF' }}",
		"payload_on":     "ON",
		"payload_off":    "OFF",
	})
	p := l.cfg.DiscoveryPrefix
	doc := func(component, object string, m map[string]any) discoveryDoc {
		b, _ := json.Marshal(m) // strings, bools and numbers only
		return discoveryDoc{topic: p + "/" + component + "/" + node + "/" + object + "/config", payload: b}
	}
	return []discoveryDoc{
		doc("cover", "gate", cover),
		doc("siren", "alarm", siren),
		doc("binary_sensor", "obstruction", obstruction),
	}
}
