package mqttlink

// Long on purpose: one table of Home Assistant's field rules, each with its source, and a
// break of every rule to show the table catches it; splitting it would split the table.

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// The Home Assistant schema test: the field rules of Home Assistant's MQTT
// integration that a device discovery document must pass, each written down
// with where it comes from, and every document haDevice builds checked
// against all of them. Home Assistant cannot run here; these rules are what
// it would check (or silently get wrong) on receiving the document.
//
// Sources, read with the search tools in home-assistant/core,
// homeassistant/components/mqtt/ (the index gave no commit for these copies;
// each is named by what marks its version):
//   - schemas.py: DEVICE_DISCOVERY_SCHEMA, _COMPONENT_CONFIG_SCHEMA,
//     check_unique_id, MQTT_ENTITY_DEVICE_INFO_SCHEMA,
//     validate_device_has_at_least_one_identifier, MQTT_ORIGIN_INFO_SCHEMA,
//     MQTT_ENTITY_COMMON_SCHEMA, _MQTT_AVAILABILITY_SCHEMA, SHARED_OPTIONS;
//     the version importing probatio (HA 2026.9 and later, core PR #182112).
//   - config.py: MQTT_BASE_SCHEMA, MQTT_RO_SCHEMA, MQTT_RW_SCHEMA; the
//     probatio version.
//   - discovery.py: TOPIC_MATCHER, async_start (subscriptions,
//     async_discovery_message_received), _parse_device_payload,
//     _merge_common_device_options; the version with migrate_discovery.
//   - const.py: SUPPORTED_COMPONENTS, ENTITY_PLATFORMS; the version with
//     CONF_COMPONENTS.
//   - util.py: valid_topic, valid_publish_topic, valid_subscribe_topic,
//     valid_qos_schema.
//   - cover.py: _PLATFORM_SCHEMA_BASE, validate_options, DISCOVERY_SCHEMA
//     (extra=REMOVE_EXTRA), _setup_from_config, _state_message_received,
//     _position_message_received; the version with the PR #104726 fix
//     (stopped without position_topic: closed if it was closed or closing).
//   - siren.py: PLATFORM_SCHEMA_MODERN, DISCOVERY_SCHEMA, _async_publish.
//   - binary_sensor.py: PLATFORM_SCHEMA_MODERN, DISCOVERY_SCHEMA,
//     state_message_received.
//   - sensor.py: _PLATFORM_SCHEMA_BASE,
//     validate_sensor_state_and_device_class_config.
//
// and homeassistant/components/cover (CoverDeviceClass),
// binary_sensor (BinarySensorDeviceClass), sensor (SensorStateClass),
// helpers/entity.py (ENTITY_CATEGORIES_SCHEMA), helpers/config_validation.py
// (icon, configuration_url); and home-assistant/home-assistant.io
// source/_integrations/mqtt.markdown, "Device discovery payload" and
// "Migration from single component to device-based discovery".

const (
	srcSchemas   = "core mqtt/schemas.py"
	srcConfig    = "core mqtt/config.py"
	srcDiscovery = "core mqtt/discovery.py"
	srcConst     = "core mqtt/const.py"
	srcUtil      = "core mqtt/util.py"
	srcCover     = "core mqtt/cover.py"
	srcSiren     = "core mqtt/siren.py"
	srcBinary    = "core mqtt/binary_sensor.py"
	srcSensor    = "core mqtt/sensor.py"
	srcDocs      = "home-assistant.io _integrations/mqtt.markdown"
)

// haDoc is a device discovery message, and its components as Home
// Assistant hands them to the platforms: platform taken out, device and
// origin put in, the shared options merged where a component has none
// (discovery.py async_discovery_message_received,
// _merge_common_device_options).
type haDoc struct {
	topic    string
	root     map[string]any
	platform map[string]string         // component id -> platform
	comps    map[string]map[string]any // component id -> config as the platform sees it
	raw      map[string]map[string]any // component id -> config as published
}

// sharedOptions is schemas.py SHARED_OPTIONS.
var sharedOptions = []string{
	"availability", "availability_mode", "availability_template", "availability_topic",
	"command_topic", "encoding", "message_expiry_interval", "payload_available",
	"payload_not_available", "state_topic", "qos",
}

func parseHADoc(topic string, payload []byte) (haDoc, error) {
	d := haDoc{topic: topic, platform: map[string]string{}, comps: map[string]map[string]any{}, raw: map[string]map[string]any{}}
	if err := json.Unmarshal(payload, &d.root); err != nil {
		return d, err
	}
	if d.root == nil {
		return d, errors.New("payload is not a JSON object")
	}
	cs, _ := d.root["components"].(map[string]any)
	for id, v := range cs {
		c, ok := v.(map[string]any)
		if !ok {
			continue // a rule says so
		}
		d.raw[id] = c
		m := map[string]any{}
		for k, v := range c {
			m[k] = v
		}
		d.platform[id], _ = m["platform"].(string)
		delete(m, "platform")
		if len(m) > 0 {
			m["device"], m["origin"] = d.root["device"], d.root["origin"]
			for _, o := range sharedOptions {
				if _, set := m[o]; !set {
					if v, ok := d.root[o]; ok {
						m[o] = v
					}
				}
			}
		}
		d.comps[id] = m
	}
	return d, nil
}

// of returns the components of one platform, by id.
func (d haDoc) of(platform string) map[string]map[string]any {
	out := map[string]map[string]any{}
	for id, p := range d.platform {
		if p == platform {
			out[id] = d.comps[id]
		}
	}
	return out
}

// haRule is one rule of Home Assistant's, with its source.
type haRule struct {
	id, rule, source string
	check            func(haDoc) error
}

func keySet(groups ...[]string) map[string]bool {
	s := map[string]bool{}
	for _, g := range groups {
		for _, k := range g {
			s[k] = true
		}
	}
	return s
}

var (
	availabilityKeys = []string{"availability_topic", "availability_template", "payload_available", "payload_not_available", "availability_mode", "availability"}
	// schemas.py MQTT_ENTITY_COMMON_SCHEMA and config.py MQTT_BASE_SCHEMA.
	entityCommonKeys = []string{
		"device", "entity_picture", "origin", "enabled_by_default", "entity_category", "icon",
		"json_attributes_topic", "json_attributes_template", "default_entity_id",
		"message_expiry_interval", "unique_id", "visible_by_default", "qos", "encoding", "group",
	}
	coverKeys = keySet(availabilityKeys, entityCommonKeys, []string{
		"command_topic", "device_class", "position_topic", "name", "optimistic", "payload_close",
		"payload_open", "payload_stop", "payload_stop_tilt", "position_closed", "position_open", "retain",
		"set_position_template", "set_position_topic", "state_closed", "state_closing", "state_open",
		"state_opening", "state_stopped", "state_topic", "tilt_closed_value", "tilt_command_topic",
		"tilt_max", "tilt_min", "tilt_opened_value", "tilt_optimistic", "tilt_status_topic",
		"tilt_status_template", "value_template", "position_template", "tilt_command_template",
	})
	sirenKeys = keySet(availabilityKeys, entityCommonKeys, []string{
		"command_topic", "optimistic", "retain", "state_topic", // MQTT_RW_SCHEMA
		"available_tones", "command_template", "command_off_template", "name", "payload_off",
		"payload_on", "state_off", "state_on", "state_value_template", "support_duration", "support_volume_set",
	})
	binarySensorKeys = keySet(availabilityKeys, entityCommonKeys, []string{
		"state_topic", "value_template", // MQTT_RO_SCHEMA
		"device_class", "expire_after", "force_update", "name", "off_delay", "payload_off", "payload_on",
	})
	sensorKeys = keySet(availabilityKeys, entityCommonKeys, []string{
		"state_topic", "value_template", // MQTT_RO_SCHEMA
		"device_class", "expire_after", "force_update", "last_reset_value_template", "name", "options",
		"suggested_display_precision", "state_class", "unit_of_measurement",
	})
	deviceDiscoveryKeys = keySet(availabilityKeys, []string{
		"device", "components", "origin", "state_topic", "command_topic", "message_expiry_interval", "qos", "encoding",
	})
	deviceInfoKeys = keySet([]string{
		"identifiers", "connections", "manufacturer", "model", "model_id", "name", "hw_version",
		"serial_number", "sw_version", "via_device", "suggested_area", "configuration_url",
	})
	// const.py SUPPORTED_COMPONENTS; ENTITY_PLATFORMS is the same less
	// device_automation and tag.
	supportedComponents = []string{
		"alarm_control_panel", "binary_sensor", "button", "camera", "climate", "cover",
		"device_automation", "device_tracker", "event", "fan", "humidifier", "image", "lawn_mower",
		"light", "lock", "notify", "number", "scene", "siren", "select", "sensor", "switch", "tag",
		"text", "update", "vacuum", "valve", "water_heater",
	}
	coverDeviceClasses        = []string{"awning", "blind", "curtain", "damper", "door", "garage", "gate", "shade", "shutter", "window"}
	binarySensorDeviceClasses = []string{
		"battery", "battery_charging", "carbon_monoxide", "cold", "connectivity", "door", "garage_door",
		"gas", "heat", "light", "lock", "moisture", "motion", "moving", "occupancy", "opening", "plug",
		"power", "presence", "problem", "running", "safety", "smoke", "sound", "tamper", "update",
		"vibration", "window",
	}
	sensorStateClasses = []string{"measurement", "measurement_angle", "total", "total_increasing"}
	// gated's state words (SPEC.md "The gate").
	gateStates = []string{"closed", "opening", "open", "closing", "stopped", "unknown", "fault"}
)

func str(m map[string]any, k string) (string, bool) { s, ok := m[k].(string); return s, ok }

func isInt(v any) bool { f, ok := v.(float64); return ok && f == float64(int64(f)) }

// eachComp runs f on every component of the platforms given (all if none).
func eachComp(d haDoc, f func(id string, c map[string]any) error, platforms ...string) error {
	ids := make([]string, 0, len(d.comps))
	for id := range d.comps {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		if len(platforms) > 0 && !slices.Contains(platforms, d.platform[id]) {
			continue
		}
		if err := f(id, d.comps[id]); err != nil {
			return fmt.Errorf("component %s: %w", id, err)
		}
	}
	return nil
}

func onlyKeys(c map[string]any, allowed map[string]bool) error {
	for k := range c {
		if !allowed[k] {
			return fmt.Errorf("option %q unknown to the platform", k)
		}
	}
	return nil
}

func areStrings(c map[string]any, keys ...string) error {
	for _, k := range keys {
		if v, ok := c[k]; ok {
			if _, isStr := v.(string); !isStr {
				return fmt.Errorf("%s = %v, want a string", k, v)
			}
		}
	}
	return nil
}

func areBools(c map[string]any, keys ...string) error {
	for _, k := range keys {
		if v, ok := c[k]; ok {
			if _, isBool := v.(bool); !isBool {
				return fmt.Errorf("%s = %v, want a boolean", k, v)
			}
		}
	}
	return nil
}

func required(c map[string]any, keys ...string) error {
	for _, k := range keys {
		if _, ok := c[k]; !ok {
			return fmt.Errorf("%s missing", k)
		}
	}
	return nil
}

func oneOf(c map[string]any, k string, allowed []string) error {
	v, ok := c[k]
	if !ok {
		return nil
	}
	if s, _ := v.(string); !slices.Contains(allowed, strings.ToLower(s)) {
		return fmt.Errorf("%s = %v, want one of %v", k, v, allowed)
	}
	return nil
}

// validTopic is util.py valid_topic.
func validTopic(t string) error {
	switch {
	case t == "":
		return errors.New("empty topic")
	case !utf8.ValidString(t):
		return errors.New("topic not UTF-8")
	case len(t) > 65535:
		return errors.New("topic longer than 65535 bytes")
	}
	for _, r := range t {
		switch {
		case r == 0:
			return errors.New("NUL in topic")
		case r <= 0x1f, r >= 0x7f && r <= 0x9f:
			return fmt.Errorf("control character %U in topic", r)
		case r >= 0xfdd0 && r <= 0xfdef, r&0xfffe == 0xfffe:
			return fmt.Errorf("non-character %U in topic", r)
		}
	}
	return nil
}

// topicKeys returns the options of c that name topics, with what Home
// Assistant does with each: publish to it or subscribe to it.
func topicKeys(c map[string]any) (publish, subscribe map[string]string) {
	publish, subscribe = map[string]string{}, map[string]string{}
	for k, v := range c {
		s, _ := v.(string)
		if !strings.HasSuffix(k, "_topic") {
			continue
		}
		if k == "command_topic" || strings.HasSuffix(k, "command_topic") || k == "set_position_topic" {
			publish[k] = s
		} else {
			subscribe[k] = s
		}
	}
	return publish, subscribe
}

// balanced is a coarse stand-in for Jinja2 compiling a template
// (config_validation.template): every {{ and {% is closed in order.
func balanced(t string) bool {
	for t != "" {
		i := strings.IndexAny(t, "{}%")
		if i < 0 {
			return true
		}
		t = t[i:]
		switch {
		case strings.HasPrefix(t, "{{"):
			j := strings.Index(t, "}}")
			if j < 0 || strings.Contains(t[2:j], "{{") {
				return false
			}
			t = t[j+2:]
		case strings.HasPrefix(t, "{%"):
			j := strings.Index(t, "%}")
			if j < 0 || strings.Contains(t[2:j], "{%") {
				return false
			}
			t = t[j+2:]
		case strings.HasPrefix(t, "}}"), strings.HasPrefix(t, "%}"):
			return false
		default:
			t = t[1:]
		}
	}
	return true
}

var objectIDRE = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

var haRules = []haRule{
	// Device discovery.
	{"D1", "the topic is <discovery_prefix>/device/<object_id>/config, object_id [a-zA-Z0-9_-]+",
		srcDiscovery + " TOPIC_MATCHER; async_start subscribes <prefix>/device/+/config",
		func(d haDoc) error {
			parts := strings.Split(d.topic, "/")
			if len(parts) < 4 || parts[len(parts)-3] != "device" || parts[len(parts)-1] != "config" || !objectIDRE.MatchString(parts[len(parts)-2]) {
				return fmt.Errorf("topic %q", d.topic)
			}
			return nil
		}},
	{"D2", "the document has only the options of DEVICE_DISCOVERY_SCHEMA: any other invalidates it whole",
		srcSchemas + " DEVICE_DISCOVERY_SCHEMA (a Schema without extra keys); " + srcDiscovery + " _parse_device_payload",
		func(d haDoc) error { return onlyKeys(d.root, deviceDiscoveryKeys) }},
	{"D3", "device is required, with at least one identifier or connection, and only device info options",
		srcSchemas + " MQTT_ENTITY_DEVICE_INFO_SCHEMA, validate_device_has_at_least_one_identifier",
		func(d haDoc) error {
			dev, ok := d.root["device"].(map[string]any)
			if !ok {
				return errors.New("device missing or not a mapping")
			}
			if err := onlyKeys(dev, deviceInfoKeys); err != nil {
				return err
			}
			ids, _ := dev["identifiers"].([]any)
			conns, _ := dev["connections"].([]any)
			if len(ids) == 0 && len(conns) == 0 {
				return errors.New("no identifiers or connections")
			}
			for _, id := range ids {
				if _, ok := id.(string); !ok {
					return fmt.Errorf("identifier %v not a string", id)
				}
			}
			return areStrings(dev, "manufacturer", "model", "model_id", "name", "hw_version", "serial_number", "sw_version", "via_device", "suggested_area")
		}},
	{"D4", "origin is required, with a name; only name, sw_version and support_url (a URL)",
		srcSchemas + " MQTT_ORIGIN_INFO_SCHEMA; DEVICE_DISCOVERY_SCHEMA Required(CONF_ORIGIN)",
		func(d haDoc) error {
			o, ok := d.root["origin"].(map[string]any)
			if !ok {
				return errors.New("origin missing or not a mapping")
			}
			if err := onlyKeys(o, keySet([]string{"name", "sw_version", "support_url"})); err != nil {
				return err
			}
			if n, ok := str(o, "name"); !ok || n == "" {
				return errors.New("origin name missing")
			}
			if err := areStrings(o, "sw_version"); err != nil {
				return err
			}
			if v, ok := o["support_url"]; ok {
				s, _ := v.(string)
				u, err := url.Parse(s)
				if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
					return fmt.Errorf("support_url %v is not an http(s) URL (config_validation.configuration_url)", v)
				}
			}
			return nil
		}},
	{"D5", "components is required: a mapping of component id to a mapping",
		srcSchemas + " DEVICE_DISCOVERY_SCHEMA Required(CONF_COMPONENTS): Schema({str: _COMPONENT_CONFIG_SCHEMA})",
		func(d haDoc) error {
			cs, ok := d.root["components"].(map[string]any)
			if !ok || len(cs) == 0 {
				return errors.New("components missing, empty or not a mapping")
			}
			for id, c := range cs {
				if _, ok := c.(map[string]any); !ok {
					return fmt.Errorf("component %s is not a mapping", id)
				}
			}
			return nil
		}},
	{"D6", "every component has a platform Home Assistant supports",
		srcSchemas + " _COMPONENT_CONFIG_SCHEMA Required(CONF_PLATFORM): In(SUPPORTED_COMPONENTS); " + srcConst + " SUPPORTED_COMPONENTS",
		func(d haDoc) error {
			for id, c := range d.raw {
				if p, _ := str(c, "platform"); !slices.Contains(supportedComponents, p) {
					return fmt.Errorf("component %s: platform %q", id, c["platform"])
				}
			}
			return nil
		}},
	{"D7", "every entity component with options has a unique_id, and no two share one",
		srcSchemas + " check_unique_id; " + srcDocs + " \"Entity components must have set the unique_id option\"; a unique_id taken twice is refused by the entity registry",
		func(d haDoc) error {
			seen := map[string]string{}
			return eachComp(d, func(id string, c map[string]any) error {
				if len(c) == 0 {
					return nil
				}
				u, ok := str(c, "unique_id")
				if !ok || u == "" {
					return errors.New("no unique_id")
				}
				if other, dup := seen[u]; dup {
					return fmt.Errorf("unique_id %q also used by %s", u, other)
				}
				seen[u] = id
				return nil
			})
		}},
	{"D8", "components carry no device or origin of their own: Home Assistant replaces them with the document's",
		srcDiscovery + " async_discovery_message_received: discovery_payload[CONF_DEVICE] = device_config",
		func(d haDoc) error {
			for id, c := range d.raw {
				if _, ok := c["device"]; ok {
					return fmt.Errorf("component %s has a device", id)
				}
				if _, ok := c["origin"]; ok {
					return fmt.Errorf("component %s has an origin", id)
				}
			}
			return nil
		}},
	{"D9", "availability_topic and availability exclude each other; the payloads are strings",
		srcSchemas + " _MQTT_AVAILABILITY_SINGLE_SCHEMA / _LIST_SCHEMA: Exclusive(..., \"availability\")",
		func(d haDoc) error {
			return eachComp(d, func(_ string, c map[string]any) error {
				_, single := c["availability_topic"]
				_, list := c["availability"]
				if single && list {
					return errors.New("both availability_topic and availability")
				}
				return areStrings(c, "payload_available", "payload_not_available", "availability_template")
			})
		}},
	{"D10", "qos is 0, 1 or 2",
		srcUtil + " valid_qos_schema; " + srcConfig + " MQTT_BASE_SCHEMA",
		func(d haDoc) error {
			check := func(m map[string]any) error {
				if v, ok := m["qos"]; ok && !(isInt(v) && v.(float64) >= 0 && v.(float64) <= 2) {
					return fmt.Errorf("qos %v", v)
				}
				return nil
			}
			if err := check(d.root); err != nil {
				return err
			}
			return eachComp(d, func(_ string, c map[string]any) error { return check(c) })
		}},

	// Topics and templates.
	{"T1", "every topic is a valid MQTT topic: not empty, UTF-8, at most 65535 bytes, no NUL, control or non-characters",
		srcUtil + " valid_topic",
		func(d haDoc) error {
			return eachComp(d, func(_ string, c map[string]any) error {
				pub, sub := topicKeys(c)
				for k, t := range pub {
					if err := validTopic(t); err != nil {
						return fmt.Errorf("%s: %w", k, err)
					}
				}
				for k, t := range sub {
					if err := validTopic(t); err != nil {
						return fmt.Errorf("%s: %w", k, err)
					}
				}
				return nil
			})
		}},
	{"T2", "topics Home Assistant publishes to (command_topic, set_position_topic) have no wildcard",
		srcUtil + " valid_publish_topic",
		func(d haDoc) error {
			return eachComp(d, func(_ string, c map[string]any) error {
				pub, _ := topicKeys(c)
				for k, t := range pub {
					if strings.ContainsAny(t, "+#") {
						return fmt.Errorf("%s %q has a wildcard", k, t)
					}
				}
				return nil
			})
		}},
	{"T3", "in topics Home Assistant subscribes to, + fills a whole level and # is last, after a /",
		srcUtil + " valid_subscribe_topic",
		func(d haDoc) error {
			return eachComp(d, func(_ string, c map[string]any) error {
				_, sub := topicKeys(c)
				for k, t := range sub {
					for _, level := range strings.Split(t, "/") {
						if strings.Contains(level, "+") && level != "+" {
							return fmt.Errorf("%s %q: + not a whole level", k, t)
						}
					}
					if i := strings.Index(t, "#"); i >= 0 && (i != len(t)-1 || (i > 0 && t[i-1] != '/')) {
						return fmt.Errorf("%s %q: # not last after /", k, t)
					}
				}
				return nil
			})
		}},
	{"T4", "templates are strings Jinja2 can compile",
		"core helpers/config_validation.py template (cv.template on every *_template option)",
		func(d haDoc) error {
			return eachComp(d, func(_ string, c map[string]any) error {
				for k, v := range c {
					if !strings.HasSuffix(k, "_template") {
						continue
					}
					s, ok := v.(string)
					if !ok || !balanced(s) {
						return fmt.Errorf("%s %v", k, v)
					}
				}
				return nil
			})
		}},

	// What every entity takes.
	{"E1", "name is a string or null (null: the entity takes the device's name)",
		srcCover + ", " + srcSiren + ", " + srcSensor + " Optional(CONF_NAME): Any(cv.string, None)",
		func(d haDoc) error {
			return eachComp(d, func(_ string, c map[string]any) error {
				if v, ok := c["name"]; ok && v != nil {
					if _, ok := v.(string); !ok {
						return fmt.Errorf("name %v", v)
					}
				}
				return nil
			})
		}},
	{"E2", "entity_category is config or diagnostic; icon is prefix:name; enabled_by_default a boolean",
		srcSchemas + " MQTT_ENTITY_COMMON_SCHEMA (ENTITY_CATEGORIES_SCHEMA, cv.icon, cv.boolean)",
		func(d haDoc) error {
			return eachComp(d, func(_ string, c map[string]any) error {
				if err := oneOf(c, "entity_category", []string{"config", "diagnostic"}); err != nil {
					return err
				}
				if v, ok := c["icon"]; ok {
					if s, _ := v.(string); !strings.Contains(s, ":") {
						return fmt.Errorf("icon %v", v)
					}
				}
				return areBools(c, "enabled_by_default")
			})
		}},

	// Cover.
	{"C1", "cover: only options the cover knows (DISCOVERY_SCHEMA drops others silently)",
		srcCover + " _PLATFORM_SCHEMA_BASE; DISCOVERY_SCHEMA extend({}, extra=REMOVE_EXTRA)",
		func(d haDoc) error {
			return eachComp(d, func(_ string, c map[string]any) error { return onlyKeys(c, coverKeys) }, "cover")
		}},
	{"C2", "cover: device_class is one of CoverDeviceClass",
		srcCover + " Optional(CONF_DEVICE_CLASS): Any(DEVICE_CLASSES_SCHEMA, None); core cover CoverDeviceClass",
		func(d haDoc) error {
			return eachComp(d, func(_ string, c map[string]any) error { return oneOf(c, "device_class", coverDeviceClasses) }, "cover")
		}},
	{"C3", "cover: set_position_topic needs position_topic; value_template needs state_topic; position_template needs position_topic; set_position_template needs set_position_topic",
		srcCover + " validate_options",
		func(d haDoc) error {
			return eachComp(d, func(_ string, c map[string]any) error {
				for k, needs := range map[string]string{
					"set_position_topic": "position_topic", "value_template": "state_topic",
					"position_template": "position_topic", "set_position_template": "set_position_topic",
					"tilt_command_template": "tilt_command_topic", "tilt_status_template": "tilt_status_topic",
				} {
					if _, ok := c[k]; ok {
						if _, ok := c[needs]; !ok {
							return fmt.Errorf("%s without %s", k, needs)
						}
					}
				}
				return nil
			}, "cover")
		}},
	{"C4", "cover: position_open and position_closed are integers and differ",
		srcCover + " _PLATFORM_SCHEMA_BASE (int); _setup_from_config _pos_range = (position_closed + 1, position_open), which ranged_value_to_percentage divides by",
		func(d haDoc) error {
			return eachComp(d, func(_ string, c map[string]any) error {
				o, okO := c["position_open"]
				cl, okC := c["position_closed"]
				if (okO && !isInt(o)) || (okC && !isInt(cl)) {
					return fmt.Errorf("position_open %v position_closed %v", o, cl)
				}
				if okO && okC && o.(float64) == cl.(float64) {
					return errors.New("position_open equals position_closed")
				}
				return nil
			}, "cover")
		}},
	{"C5", "cover: payloads and state words are strings; optimistic and retain booleans",
		srcCover + " _PLATFORM_SCHEMA_BASE (cv.string, cv.boolean)",
		func(d haDoc) error {
			return eachComp(d, func(_ string, c map[string]any) error {
				if err := areStrings(c, "payload_open", "payload_close", "payload_stop", "state_open", "state_opening",
					"state_closed", "state_closing", "state_stopped"); err != nil {
					return err
				}
				return areBools(c, "optimistic", "retain")
			}, "cover")
		}},

	// Siren.
	{"S1", "siren: command_topic is required", srcConfig + " MQTT_RW_SCHEMA Required(CONF_COMMAND_TOPIC); " + srcSiren + " PLATFORM_SCHEMA_MODERN",
		func(d haDoc) error {
			return eachComp(d, func(_ string, c map[string]any) error { return required(c, "command_topic") }, "siren")
		}},
	{"S2", "siren: only options the siren knows", srcSiren + " PLATFORM_SCHEMA_MODERN; DISCOVERY_SCHEMA extra=REMOVE_EXTRA",
		func(d haDoc) error {
			return eachComp(d, func(_ string, c map[string]any) error { return onlyKeys(c, sirenKeys) }, "siren")
		}},
	{"S3", "siren: payloads and states are strings; support_* booleans; available_tones a list",
		srcSiren + " PLATFORM_SCHEMA_MODERN",
		func(d haDoc) error {
			return eachComp(d, func(_ string, c map[string]any) error {
				if err := areStrings(c, "payload_on", "payload_off", "state_on", "state_off"); err != nil {
					return err
				}
				if v, ok := c["available_tones"]; ok {
					if _, ok := v.([]any); !ok {
						return fmt.Errorf("available_tones %v", v)
					}
				}
				return areBools(c, "support_duration", "support_volume_set", "optimistic", "retain")
			}, "siren")
		}},

	// Binary sensor.
	{"B1", "binary_sensor: state_topic is required", srcConfig + " MQTT_RO_SCHEMA Required(CONF_STATE_TOPIC)",
		func(d haDoc) error {
			return eachComp(d, func(_ string, c map[string]any) error { return required(c, "state_topic") }, "binary_sensor")
		}},
	{"B2", "binary_sensor: device_class is one of BinarySensorDeviceClass",
		srcBinary + " Optional(CONF_DEVICE_CLASS): DEVICE_CLASSES_SCHEMA; core binary_sensor BinarySensorDeviceClass",
		func(d haDoc) error {
			return eachComp(d, func(_ string, c map[string]any) error { return oneOf(c, "device_class", binarySensorDeviceClasses) }, "binary_sensor")
		}},
	{"B3", "binary_sensor: only options the binary sensor knows; payloads strings, off_delay and expire_after positive integers",
		srcBinary + " PLATFORM_SCHEMA_MODERN; DISCOVERY_SCHEMA extra=REMOVE_EXTRA",
		func(d haDoc) error {
			return eachComp(d, func(_ string, c map[string]any) error {
				if err := onlyKeys(c, binarySensorKeys); err != nil {
					return err
				}
				for _, k := range []string{"off_delay", "expire_after"} {
					if v, ok := c[k]; ok && !(isInt(v) && v.(float64) >= 0) {
						return fmt.Errorf("%s %v", k, v)
					}
				}
				return areStrings(c, "payload_on", "payload_off")
			}, "binary_sensor")
		}},

	// Sensor.
	{"N1", "sensor: state_topic is required", srcConfig + " MQTT_RO_SCHEMA Required(CONF_STATE_TOPIC)",
		func(d haDoc) error {
			return eachComp(d, func(_ string, c map[string]any) error { return required(c, "state_topic") }, "sensor")
		}},
	{"N2", "sensor: state_class is one of SensorStateClass", srcSensor + " Optional(CONF_STATE_CLASS): Any(STATE_CLASSES_SCHEMA, None); core sensor SensorStateClass",
		func(d haDoc) error {
			return eachComp(d, func(_ string, c map[string]any) error { return oneOf(c, "state_class", sensorStateClasses) }, "sensor")
		}},
	{"N3", "sensor: last_reset_value_template only with state_class total; options only with device_class enum and no state_class or unit",
		srcSensor + " validate_sensor_state_and_device_class_config",
		func(d haDoc) error {
			return eachComp(d, func(_ string, c map[string]any) error {
				if _, ok := c["last_reset_value_template"]; ok && c["state_class"] != "total" {
					return errors.New("last_reset_value_template without state_class total")
				}
				if _, ok := c["options"]; ok {
					_, sc := c["state_class"]
					_, unit := c["unit_of_measurement"]
					if c["device_class"] != "enum" || sc || unit {
						return errors.New("options without device_class enum, or with state_class or unit")
					}
				}
				return nil
			}, "sensor")
		}},
	{"N4", "sensor: only options the sensor knows", srcSensor + " _PLATFORM_SCHEMA_BASE; DISCOVERY_SCHEMA extra=REMOVE_EXTRA",
		func(d haDoc) error {
			return eachComp(d, func(_ string, c map[string]any) error { return onlyKeys(c, sensorKeys) }, "sensor")
		}},
}

// gatedRules are gated's own requirements of the document, each resting on
// how Home Assistant reads it.
var gatedRules = []haRule{
	{"G1", "the components gate, alarm and obstruction keep the object ids of the per-entity documents, so Home Assistant carries those entities over",
		srcDiscovery + " discovery_id = \"<node_id> <object_id>\" for both schemas; " + srcDocs + " Migration from single component to device-based discovery, steps 2-4",
		func(d haDoc) error {
			for id, platform := range map[string]string{"gate": "cover", "alarm": "siren", "obstruction": "binary_sensor"} {
				if d.platform[id] != platform {
					return fmt.Errorf("component %s: platform %q, want %s", id, d.platform[id], platform)
				}
			}
			return nil
		}},
	{"G2", "the cover supports open, close, stop and set position: command_topic with the three payloads, and set_position_topic",
		srcCover + " _setup_from_config supported_features",
		func(d haDoc) error {
			covers := d.of("cover")
			if len(covers) != 1 {
				return fmt.Errorf("%d covers, want 1", len(covers))
			}
			for _, c := range covers {
				return required(c, "command_topic", "payload_open", "payload_close", "payload_stop", "set_position_topic", "position_topic")
			}
			return nil
		}},
	{"G3", "the cover's state words are gated's and distinct (the first that matches wins)",
		srcCover + " _state_message_received (compares the payload with state_stopped, state_opening, state_closing, state_open, state_closed in turn; others are logged and dropped)",
		func(d haDoc) error {
			return eachComp(d, func(_ string, c map[string]any) error {
				seen := map[string]bool{}
				for _, k := range []string{"state_open", "state_opening", "state_closed", "state_closing", "state_stopped"} {
					s, _ := str(c, k)
					if !slices.Contains(gateStates, s) || seen[s] {
						return fmt.Errorf("%s %q", k, s)
					}
					seen[s] = true
				}
				return nil
			}, "cover")
		}},
	{"G4", "position_open 100 and position_closed 0: Home Assistant's percent is gated's bare integer, both ways",
		srcCover + " _position_message_received, async_set_cover_position (percentage_to_ranged_value over (position_closed + 1, position_open))",
		func(d haDoc) error {
			return eachComp(d, func(_ string, c map[string]any) error {
				if c["position_open"] != 100.0 || c["position_closed"] != 0.0 {
					return fmt.Errorf("position_open %v position_closed %v", c["position_open"], c["position_closed"])
				}
				return nil
			}, "cover")
		}},
}

// haDevices are the inputs the test builds documents from: both kinds, and
// the optional fields present and absent.
func haDevices() []haDevice {
	base := haDevice{NodeID: "gated-pi_4", Name: "Front gate", Kind: "gate", Version: "1.2.3",
		SupportURL: "https://rocksaying.tw/gated", TopicPrefix: "tw/rocksaying", DiscoveryPrefix: "homeassistant"}
	garage := base
	garage.Kind, garage.Name, garage.NodeID, garage.TopicPrefix = "garage", "Garage", "gated-garage", "home/garage/door"
	bare := base
	bare.Version, bare.SupportURL, bare.DiscoveryPrefix = "", "", "ha"
	return []haDevice{base, garage, bare}
}

func TestHADeviceDocumentPassesHomeAssistantRules(t *testing.T) {
	for _, in := range haDevices() {
		t.Run(in.Kind+"/"+in.NodeID+"/"+in.DiscoveryPrefix, func(t *testing.T) {
			b, err := in.document()
			if err != nil {
				t.Fatalf("document: %v", err)
			}
			d, err := parseHADoc(in.topic(), b)
			if err != nil {
				t.Fatalf("%s: %v", b, err)
			}
			for _, r := range slices.Concat(haRules, gatedRules) {
				if err := r.check(d); err != nil {
					t.Errorf("%s %s (%s): %v", r.id, r.rule, r.source, err)
				}
			}
			// And the document says what gated means.
			cover := d.comps["gate"]
			p := in.TopicPrefix
			for k, want := range map[string]any{
				"device_class": in.Kind, "command_topic": p + "/command", "state_topic": p + "/state",
				"position_topic": p + "/position", "set_position_topic": p + "/position/set",
				"availability_topic": p + "/availability", "json_attributes_topic": p + "/status",
				"unique_id": in.NodeID + "_gate", "qos": 1.0,
				// stopped is open, at its position; unknown and fault unknown.
				"value_template": "{{ 'open' if value == 'stopped' else value if value in ['open', 'opening', 'closed', 'closing'] else 'None' }}",
			} {
				if cover[k] != want {
					t.Errorf("cover %s = %v, want %v", k, cover[k], want)
				}
			}
			for id, class := range map[string]string{"obstruction": "safety", "fault": "problem"} {
				if c := d.comps[id]; c["device_class"] != class || c["state_topic"] != p+"/status" {
					t.Errorf("%s: device_class %v state_topic %v, want %s and %s/status", id, c["device_class"], c["state_topic"], class, p)
				}
			}
			for _, id := range []string{"openings", "obstructions", "faults"} {
				if c := d.comps[id]; c["state_class"] != "total_increasing" || c["value_template"] != "{{ value_json."+id+" | default('None') }}" {
					t.Errorf("%s: state_class %v value_template %v", id, c["state_class"], c["value_template"])
				}
			}
			if o := d.root["origin"].(map[string]any); (in.Version != "") != (o["sw_version"] != nil) || (in.SupportURL != "") != (o["support_url"] != nil) {
				t.Errorf("origin %v for version %q support url %q", o, in.Version, in.SupportURL)
			}
		})
	}
}

// haBreaks break each rule once: a change to a good document that the rule
// must reject. A rule without one fails TestHARulesCatchBreaks, so no rule
// can pass by accident.
var haBreaks = map[string][]func(topic *string, doc map[string]any){
	"D1": {
		func(tp *string, _ map[string]any) { *tp = "homeassistant/device/gated pi/config" },
		func(tp *string, _ map[string]any) { *tp = "homeassistant/cover/gated/config" },
	},
	"D2": {func(_ *string, m map[string]any) { m["name"] = "Front gate" }},
	"D3": {
		func(_ *string, m map[string]any) { delete(m, "device") },
		func(_ *string, m map[string]any) { dev(m)["identifiers"] = []any{} },
		func(_ *string, m map[string]any) { dev(m)["mf"] = "x" },
	},
	"D4": {
		func(_ *string, m map[string]any) { delete(m, "origin") },
		func(_ *string, m map[string]any) { delete(m["origin"].(map[string]any), "name") },
		func(_ *string, m map[string]any) { m["origin"].(map[string]any)["support_url"] = "rocksaying.tw" },
	},
	"D5": {func(_ *string, m map[string]any) { m["components"] = []any{} }},
	"D6": {func(_ *string, m map[string]any) { comp(m, "fault")["platform"] = "binary-sensor" }},
	"D7": {
		func(_ *string, m map[string]any) { delete(comp(m, "openings"), "unique_id") },
		func(_ *string, m map[string]any) { comp(m, "faults")["unique_id"] = comp(m, "fault")["unique_id"] },
	},
	"D8": {func(_ *string, m map[string]any) { comp(m, "alarm")["device"] = m["device"] }},
	"D9": {func(_ *string, m map[string]any) { m["availability"] = []any{map[string]any{"topic": "x"}} }},
	"D10": {
		func(_ *string, m map[string]any) { m["qos"] = 3 },
		func(_ *string, m map[string]any) { comp(m, "gate")["qos"] = "1" },
	},
	"T1": {func(_ *string, m map[string]any) { comp(m, "gate")["state_topic"] = "" }, func(_ *string, m map[string]any) { comp(m, "fault")["state_topic"] = "a\tb" }},
	"T2": {func(_ *string, m map[string]any) { comp(m, "gate")["set_position_topic"] = "tw/+/position/set" }},
	"T3": {func(_ *string, m map[string]any) { comp(m, "gate")["position_topic"] = "tw/#/position" }},
	"T4": {func(_ *string, m map[string]any) { comp(m, "openings")["value_template"] = "{{ value_json.openings " }},
	"E1": {func(_ *string, m map[string]any) { comp(m, "alarm")["name"] = 7 }},
	"E2": {
		func(_ *string, m map[string]any) { comp(m, "openings")["entity_category"] = "system" },
		func(_ *string, m map[string]any) { comp(m, "openings")["icon"] = "counter" },
	},
	"C1": {func(_ *string, m map[string]any) { comp(m, "gate")["position_topc"] = "x" }},
	"C2": {func(_ *string, m map[string]any) { comp(m, "gate")["device_class"] = "garage_door" }},
	"C3": {func(_ *string, m map[string]any) { delete(comp(m, "gate"), "position_topic") }},
	"C4": {
		func(_ *string, m map[string]any) { comp(m, "gate")["position_open"] = 0 },
		func(_ *string, m map[string]any) { comp(m, "gate")["position_closed"] = 0.5 },
	},
	"C5": {func(_ *string, m map[string]any) { comp(m, "gate")["retain"] = "false" }},
	"S1": {func(_ *string, m map[string]any) { delete(comp(m, "alarm"), "command_topic") }},
	"S2": {func(_ *string, m map[string]any) { comp(m, "alarm")["payload_stop"] = "silence" }},
	"S3": {func(_ *string, m map[string]any) { comp(m, "alarm")["support_duration"] = "no" }},
	"B1": {func(_ *string, m map[string]any) { delete(comp(m, "obstruction"), "state_topic") }},
	"B2": {func(_ *string, m map[string]any) { comp(m, "fault")["device_class"] = "fault" }},
	"B3": {
		func(_ *string, m map[string]any) { comp(m, "fault")["state_class"] = "measurement" },
		func(_ *string, m map[string]any) { comp(m, "fault")["off_delay"] = -1 },
	},
	"N1": {func(_ *string, m map[string]any) { delete(comp(m, "faults"), "state_topic") }},
	"N2": {func(_ *string, m map[string]any) { comp(m, "faults")["state_class"] = "counter" }},
	"N3": {
		func(_ *string, m map[string]any) { comp(m, "faults")["last_reset_value_template"] = "{{ 0 }}" },
		func(_ *string, m map[string]any) { comp(m, "faults")["options"] = []any{"a"} },
	},
	"N4": {func(_ *string, m map[string]any) { comp(m, "faults")["payload_on"] = "ON" }},
	"G1": {func(_ *string, m map[string]any) {
		cs := m["components"].(map[string]any)
		cs["cover"] = cs["gate"]
		delete(cs, "gate")
	}},
	"G2": {func(_ *string, m map[string]any) { delete(comp(m, "gate"), "payload_stop") }},
	"G3": {
		func(_ *string, m map[string]any) { comp(m, "gate")["state_stopped"] = "open" },
		func(_ *string, m map[string]any) { comp(m, "gate")["state_closed"] = "shut" },
	},
	"G4": {func(_ *string, m map[string]any) { comp(m, "gate")["position_open"] = 255 }},
}

func dev(m map[string]any) map[string]any { return m["device"].(map[string]any) }

func comp(m map[string]any, id string) map[string]any {
	return m["components"].(map[string]any)[id].(map[string]any)
}

func TestHARulesCatchBreaks(t *testing.T) {
	in := haDevices()[0]
	good, err := in.document()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range slices.Concat(haRules, gatedRules) {
		breaks := haBreaks[r.id]
		if len(breaks) == 0 {
			t.Errorf("rule %s has no break: add one to haBreaks", r.id)
		}
		for i, brk := range breaks {
			topic := in.topic()
			var m map[string]any
			if err := json.Unmarshal(good, &m); err != nil {
				t.Fatal(err)
			}
			brk(&topic, m)
			b, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			d, err := parseHADoc(topic, b)
			if err != nil {
				t.Fatal(err)
			}
			if r.check(d) == nil {
				t.Errorf("rule %s (%s): break %d not caught", r.id, r.rule, i)
			}
		}
	}
}

func TestHADeviceRefusesBadInput(t *testing.T) {
	good := haDevices()[0]
	for name, change := range map[string]func(*haDevice){
		"kind door":          func(d *haDevice) { d.Kind = "door" },
		"empty kind":         func(d *haDevice) { d.Kind = "" },
		"node id with /":     func(d *haDevice) { d.NodeID = "a/b" },
		"empty node id":      func(d *haDevice) { d.NodeID = "" },
		"wildcard prefix":    func(d *haDevice) { d.TopicPrefix = "tw/#" },
		"empty discovery":    func(d *haDevice) { d.DiscoveryPrefix = "" },
		"support url no URL": func(d *haDevice) { d.SupportURL = "rocksaying.tw" },
	} {
		d := good
		change(&d)
		if _, err := d.document(); err == nil {
			t.Errorf("%s: document() accepted %+v", name, d)
		}
	}
}

func TestHALegacyTopics(t *testing.T) {
	in := haDevices()[0]
	want := []string{
		"homeassistant/cover/gated-pi_4/gate/config",
		"homeassistant/siren/gated-pi_4/alarm/config",
		"homeassistant/binary_sensor/gated-pi_4/obstruction/config",
	}
	if got := in.legacyTopics(); !slices.Equal(got, want) {
		t.Errorf("legacyTopics: got %v, want %v", got, want)
	}
	// want are the topics the per-entity documents of gated before the
	// device document went to (<prefix>/<component>/<node id>/<object id>).
	l := &Link{cfg: Config{ClientID: "gated-pi_4", DiscoveryPrefix: "homeassistant", GateName: "Front gate"}}
	if in.NodeID != l.nodeID() {
		t.Errorf("node id: test input %q, Link.nodeID %q", in.NodeID, l.nodeID())
	}
	if got := in.topic(); got != "homeassistant/device/gated-pi_4/config" {
		t.Errorf("topic: got %s", got)
	}
	if got := haStatusTopic("homeassistant"); got != "homeassistant/status" {
		t.Errorf("haStatusTopic: got %s", got)
	}
	var mig map[string]any
	if err := json.Unmarshal([]byte(haMigratePayload), &mig); err != nil || mig["migrate_discovery"] != true || len(mig) != 1 {
		t.Errorf("haMigratePayload %s: want exactly {\"migrate_discovery\": true} (discovery.py MIGRATE_DISCOVERY_SCHEMA)", haMigratePayload)
	}
}
