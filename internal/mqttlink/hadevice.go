package mqttlink

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Home Assistant's MQTT device discovery, as SPEC.md "Home Assistant" asks:
// one retained document at <discovery_prefix>/device/<node_id>/config that
// makes the gate one device with a cover, a siren, two binary sensors and
// three counters. The field names and rules are those of Home Assistant's
// MQTT integration (homeassistant/components/mqtt: discovery.py, schemas.py,
// cover.py, siren.py, binary_sensor.py, sensor.py); hadevice_test.go checks
// every document against them, rule by rule, with where each comes from.

// haDevice is what the device discovery document is built from.
type haDevice struct {
	// NodeID is the gate's id in discovery topics and unique_ids, as
	// Link.nodeID makes it from the client id: stable for one gate,
	// distinct between gates, [a-zA-Z0-9_-]+.
	NodeID string
	// Name is the device's name in Home Assistant ([gate] name).
	Name string
	// Kind is [gate] kind, "gate" or "garage": the cover's device_class.
	Kind string
	// Version is gated's version, the device's and the origin's sw_version;
	// "" leaves them out.
	Version string
	// SupportURL is the origin's support_url, an http(s) URL; "" leaves it
	// out.
	SupportURL string
	// TopicPrefix is <prefix> (topic_prefix), DiscoveryPrefix
	// <discovery_prefix>.
	TopicPrefix, DiscoveryPrefix string
}

// Component ids in the device document. Home Assistant identifies a
// discovered entity by (platform, "<device object_id> <component id>"),
// the same pair as (platform, "<node_id> <object_id>") of a per-entity
// document, so gate, alarm and obstruction, the object ids earlier versions
// used under the node id, carry those entities over with their settings and
// history (HA's "migration from single component to device-based discovery").
const (
	haCompCover        = "gate"
	haCompSiren        = "alarm"
	haCompObstruction  = "obstruction"
	haCompFault        = "fault"
	haCompOpenings     = "openings"
	haCompObstructions = "obstructions"
	haCompFaults       = "faults"
)

// haMigratePayload, published to a per-entity discovery topic, makes Home
// Assistant unload that entity but keep its registry entry, so the device
// document can take it over; an empty retained message then clears the old
// topic. Without it, Home Assistant ignores the device document's component
// as "conflicting" with the entity already discovered on the old topic, and
// the empty message that clears the old topic removes the entity.
const haMigratePayload = `{"migrate_discovery":true}`

// haOnline is what Home Assistant publishes to <discovery_prefix>/status
// (its birth message) when its MQTT integration starts: the cue to publish
// discovery and state again.
const haOnline = "online"

// haStatusTopic is Home Assistant's birth and last-will topic.
func haStatusTopic(discoveryPrefix string) string { return discoveryPrefix + "/status" }

// topic is where the device document goes (retained).
func (d haDevice) topic() string {
	return d.DiscoveryPrefix + "/device/" + d.NodeID + "/config"
}

// legacyTopics are the per-entity discovery topics earlier versions
// retained (discovery.go): each gets haMigratePayload and then an empty
// retained message, so that no entity shows twice.
func (d haDevice) legacyTopics() []string {
	p, n := d.DiscoveryPrefix, d.NodeID
	return []string{
		p + "/cover/" + n + "/" + haCompCover + "/config",
		p + "/siren/" + n + "/" + haCompSiren + "/config",
		p + "/binary_sensor/" + n + "/" + haCompObstruction + "/config",
	}
}

func (d haDevice) check() error {
	if d.NodeID == "" || strings.ContainsFunc(d.NodeID, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-')
	}) {
		return fmt.Errorf("home assistant: node id %q: want letters, digits, _ and -", d.NodeID)
	}
	if d.Kind != "gate" && d.Kind != "garage" {
		return fmt.Errorf("home assistant: kind %q: want gate or garage", d.Kind)
	}
	for key, p := range map[string]string{"topic_prefix": d.TopicPrefix, "discovery_prefix": d.DiscoveryPrefix} {
		if p == "" || strings.ContainsAny(p, "+#") {
			return fmt.Errorf("home assistant: %s %q: want a topic without wildcards", key, p)
		}
	}
	if d.SupportURL != "" && !strings.HasPrefix(d.SupportURL, "https://") && !strings.HasPrefix(d.SupportURL, "http://") {
		return errors.New("home assistant: support url: want http:// or https://")
	}
	return nil
}

// document returns the device discovery document.
func (d haDevice) document() ([]byte, error) {
	if err := d.check(); err != nil {
		return nil, err
	}
	p, n := d.TopicPrefix, d.NodeID
	status := p + "/status"

	device := map[string]any{
		"identifiers":  []string{n},
		"name":         d.Name,
		"manufacturer": "rocksaying.tw",
		"model":        "gated",
	}
	origin := map[string]any{"name": "gated"}
	if d.Version != "" {
		device["sw_version"] = d.Version
		origin["sw_version"] = d.Version
	}
	if d.SupportURL != "" {
		origin["support_url"] = d.SupportURL
	}

	cover := map[string]any{
		"platform":      "cover",
		"name":          nil, // the entity takes the device's name
		"unique_id":     n + "_gate",
		"device_class":  d.Kind,
		"command_topic": p + "/command",
		"payload_open":  "open",
		"payload_close": "close",
		"payload_stop":  "stop",
		"retain":        false, // a retained command would be refused
		"optimistic":    false,
		// The state word. Home Assistant's cover has four states: open,
		// opening, closed, closing, and a position. Sent state_stopped, it
		// takes closed if the position it holds is 0, else open (cover.py
		// _state_message_received; without a position_topic it guesses from
		// the last motion, the ratgdo bug fixed in core PR #104726). gated's
		// stopped is between the limits, never closed, so the template says
		// open itself: Home Assistant shows an open gate at the position of
		// <prefix>/position (1..99), with both open and close offered, not
		// a fully open one. Left to Home Assistant, stopped would be read
		// against whatever position it last received, which can be stale
		// (an unknown position cannot be sent to it) or arrive after the
		// word (MQTT orders messages within a topic only; core PR #174626).
		// unknown and fault are no cover state: "None" makes the state
		// unknown. state_stopped stays the word, should the template go.
		"state_topic":    p + "/state",
		"value_template": "{{ 'open' if value == 'stopped' else value if value in ['open', 'opening', 'closed', 'closing'] else 'None' }}",
		"state_open":     "open",
		"state_opening":  "opening",
		"state_closed":   "closed",
		"state_closing":  "closing",
		"state_stopped":  "stopped",
		// The bare integer percent both ways: with position_open 100 and
		// position_closed 0, Home Assistant's scale is ours unchanged.
		"position_topic":        p + "/position",
		"set_position_topic":    p + "/position/set",
		"position_open":         100,
		"position_closed":       0,
		"json_attributes_topic": status,
	}
	siren := map[string]any{
		"platform":      "siren",
		"name":          "Alarm",
		"unique_id":     n + "_alarm",
		"command_topic": p + "/command",
		"payload_on":    "alarm",
		"payload_off":   "silence",
		// Without templates the MQTT siren sends {"state":"alarm"}: send
		// the bare word instead.
		"command_template":     "{{ value }}",
		"command_off_template": "{{ value }}",
		"retain":               false,
		"support_duration":     false,
		"support_volume_set":   false,
		"state_topic":          status,
		"state_value_template": "{{ 'ON' if value_json.alarm else 'OFF' }}",
		"state_on":             "ON",
		"state_off":            "OFF",
	}
	binary := func(name, id, class, field string) map[string]any {
		return map[string]any{
			"platform":       "binary_sensor",
			"name":           name,
			"unique_id":      n + "_" + id,
			"device_class":   class,
			"state_topic":    status,
			"value_template": "{{ 'ON' if value_json." + field + " else 'OFF' }}",
			"payload_on":     "ON",
			"payload_off":    "OFF",
		}
	}
	// The counters of the status document (kept across restarts); before a
	// status carries one, "None" leaves the sensor unknown.
	counter := func(name, field string) map[string]any {
		return map[string]any{
			"platform":        "sensor",
			"name":            name,
			"unique_id":       n + "_" + field,
			"state_topic":     status,
			"value_template":  "{{ value_json." + field + " | default('None') }}",
			"state_class":     "total_increasing",
			"entity_category": "diagnostic",
			"icon":            "mdi:counter",
		}
	}
	doc := map[string]any{
		"device": device,
		"origin": origin,
		// Shared by every component (schemas.py SHARED_OPTIONS).
		"availability_topic":    p + "/availability",
		"payload_available":     "online",
		"payload_not_available": "offline",
		"qos":                   1,
		"components": map[string]any{
			haCompCover:        cover,
			haCompSiren:        siren,
			haCompObstruction:  binary("Obstruction", "obstruction", "safety", "obstructed"),
			haCompFault:        binary("Fault", "fault", "problem", "fault"),
			haCompOpenings:     counter("Openings", "openings"),
			haCompObstructions: counter("Obstructions", "obstructions"),
			haCompFaults:       counter("Faults", "faults"),
		},
	}
	return json.Marshal(doc)
}
