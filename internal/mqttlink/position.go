package mqttlink

// SPEC.md "Position" on MQTT: <prefix>/position/set takes a bare integer,
// the command topic takes {"command":"position","position":40}, and the
// publisher keeps <prefix>/position retained.

import (
	"bytes"
	"encoding/json"
	"strconv"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"rocksaying.tw/gated/internal/gate"
)

// parsePosition reads a position: an integer. The gate judges its range
// (out_of_range); a fraction, a string or a huge number is malformed.
func parsePosition(raw json.RawMessage) (int, error) {
	n, err := strconv.ParseInt(string(bytes.TrimSpace(raw)), 10, 32)
	if err != nil {
		return 0, refuse(ReasonMalformed, "position %q: want an integer 0 (closed) to 100 (open)", echo(string(raw)))
	}
	return int(n), nil
}

// parsePositionSet decides what a message on <prefix>/position/set asks
// for, with the rules of the command topic: not too large, not retained.
func parsePositionSet(payload []byte, retained bool) (request, error) {
	req := request{Word: string(gate.CmdPosition)}
	if len(payload) > MaxPayload {
		return req, refuse(ReasonTooLarge, "position of %d bytes is over the %d-byte limit: not read", len(payload), MaxPayload)
	}
	if retained {
		return req, refuse(ReasonRetained, "retained position refused: publish it without the retain flag (clear it with mosquitto_pub -r -n -t TOPIC)")
	}
	n, err := parsePosition(payload)
	if err != nil {
		return req, err
	}
	req.Cmd, req.Target = gate.CmdPosition, n
	return req, nil
}

func (l *Link) onPositionSet(_ mqtt.Client, m mqtt.Message) {
	l.enqueue(parsePositionSet(m.Payload(), m.Retained()))
}

// positionPayload is <prefix>/position's payload for st: the bare integer,
// or empty while the position is unknown (SPEC.md says a bare integer; an
// empty retained message clears the topic, which Home Assistant takes as
// no position rather than as a wrong one; README "Departures").
func positionPayload(st gate.Status) string {
	if !st.PositionKnown {
		return ""
	}
	return strconv.Itoa(st.Position)
}
