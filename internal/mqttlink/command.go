package mqttlink

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"rocksaying.tw/gated/internal/gate"
)

// MaxPayload is the largest command payload read, in bytes. Anything larger
// is refused as too_large without being parsed (SPEC.md invariant 7).
const MaxPayload = 1024

// Reasons for refusing a command message before it reaches the gate. They go
// in the result's "error" field, next to the gate's own reasons (obstructed,
// fault, busy, unknown, stopped).
const (
	ReasonStale     gate.Reason = "stale"     // ts older than max_command_age, or as far in the future
	ReasonRetained  gate.Reason = "retained"  // a retained message: an old command replayed by the broker
	ReasonMalformed gate.Reason = "malformed" // empty, binary, or broken JSON
	ReasonTooLarge  gate.Reason = "too_large" // over MaxPayload bytes
)

// request is a command message that passed every check: only its Cmd may
// reach the gate.
type request struct {
	ID  string       // the JSON "id", echoed in the result; "" for a bare word
	Cmd gate.Command // valid when the parse succeeded
	// Word is what the result's "command" field says: the command, or as
	// much of the unknown word as is safe to echo.
	Word string
	// Target is a position command's position (Cmd gate.CmdPosition).
	Target int
	// Unjudged: the command has a ts that was not judged, as the clock
	// could not be trusted.
	Unjudged  bool
	hasTarget bool // the JSON had "position"
}

// commandJSON is the JSON form of a command. Unknown fields are ignored so
// that senders may add their own.
type commandJSON struct {
	Command *string         `json:"command"`
	ID      json.RawMessage `json:"id"`
	TS      json.RawMessage `json:"ts"`
	// Position is the target of {"command":"position","position":40}.
	Position json.RawMessage `json:"position"`
}

// parseCommand decides what a message on the command topic asks for. It is
// a pure function of the message and the time it arrived: on error the
// *gate.RefusedError says why, and the request carries whatever id and word
// could be read, for the result. maxAge bounds how old (or how far in the
// future, for a sender whose clock is wrong) a JSON command's ts may be.
// A zero now means that the time is not known (the system clock was not
// synchronized): ts must still be well-formed, but its age is not judged.
func parseCommand(payload []byte, retained bool, now time.Time, maxAge time.Duration) (request, error) {
	if len(payload) > MaxPayload {
		return request{}, refuse(ReasonTooLarge, "command of %d bytes is over the %d-byte limit: not read", len(payload), MaxPayload)
	}
	req, ts, hasTS, perr := parsePayload(payload)
	if retained {
		// A retained command would run again on every reconnect of every
		// client: never, whatever it says.
		return req, refuse(ReasonRetained, "retained command refused: publish commands without the retain flag (clear it with mosquitto_pub -r -n -t TOPIC)")
	}
	if perr != nil {
		return req, perr
	}
	var cmd gate.Command
	if strings.EqualFold(strings.TrimSpace(req.Word), string(gate.CmdPosition)) {
		if !req.hasTarget {
			return req, refuse(ReasonMalformed, `command "position" needs "position": an integer 0 (closed) to 100 (open), in JSON: {"command":"position","position":40}`)
		}
		cmd = gate.CmdPosition
	} else {
		var err error
		if cmd, err = gate.ParseCommand(req.Word); err != nil {
			return req, err
		}
	}
	req.Cmd, req.Word = cmd, string(cmd)
	if hasTS && now.IsZero() {
		req.Unjudged = true
	} else if hasTS {
		age := float64(now.Unix()) + float64(now.Nanosecond())/1e9 - ts
		limit := maxAge.Seconds()
		switch {
		case age > limit:
			return req, refuse(ReasonStale, "command sent %s ago is older than max_command_age %s", secs(age), maxAge)
		case -age > limit:
			return req, refuse(ReasonStale, "command dated %s in the future, more than max_command_age %s: check the sender's clock", secs(-age), maxAge)
		}
	}
	return req, nil
}

// parse is parseCommand at the link's time. While the system clock is not
// synchronized (Options.ClockSynced) the time is not known: a command's ts
// is not judged, lest a Pi without a battery-backed clock refuse every
// command until NTP answers, and the first command so accepted in each
// such period is logged at WARN.
func (l *Link) parse(payload []byte, retained bool) (request, error) {
	synced := l.opt.ClockSynced == nil || l.opt.ClockSynced()
	var now time.Time
	if synced {
		now = l.clk.Now()
	}
	req, err := parseCommand(payload, retained, now, l.cfg.MaxCommandAge)
	l.unsynced.note(l.log, synced, req)
	return req, err
}

// unsyncedNote remembers whether the link said that it takes commands of
// any age, so that it says it once per period of unsynchronized clock.
type unsyncedNote struct{ said atomic.Bool }

func (n *unsyncedNote) note(log *slog.Logger, synced bool, req request) {
	switch {
	case synced:
		if n.said.Swap(false) {
			log.Info("system clock synchronized: the age (ts) of commands is judged again")
		}
	case req.Unjudged && !n.said.Swap(true):
		log.Warn("system clock not synchronized: command accepted without judging its age (ts); so are all until the clock is synchronized",
			"id", echo(req.ID), "command", req.Word)
	}
}

// parsePayload reads a bare word or a JSON object; ts is in Unix seconds.
func parsePayload(payload []byte) (req request, ts float64, hasTS bool, err error) {
	p := bytes.TrimSpace(payload)
	if len(p) == 0 {
		return req, 0, false, refuse(ReasonMalformed, "empty command: want one of open, close, stop, alarm, silence")
	}
	if !utf8.Valid(p) || bytes.ContainsFunc(p, func(r rune) bool { return unicode.IsControl(r) && r != '\t' && r != '\n' && r != '\r' }) {
		return req, 0, false, refuse(ReasonMalformed, "command is not text (%d bytes of binary data)", len(payload))
	}
	if p[0] != '{' {
		req.Word = echo(string(p))
		return req, 0, false, nil
	}
	var j commandJSON
	if err := json.Unmarshal(p, &j); err != nil {
		return req, 0, false, refuse(ReasonMalformed, "command JSON: %v", err)
	}
	if id, err := parseID(j.ID); err != nil {
		return req, 0, false, err
	} else {
		req.ID = id
	}
	if j.Command == nil {
		return req, 0, false, refuse(ReasonMalformed, `command JSON has no "command" string`)
	}
	req.Word = echo(*j.Command)
	if len(j.Position) > 0 && string(j.Position) != "null" {
		n, err := parsePosition(j.Position)
		if err != nil {
			return req, 0, false, err
		}
		req.Target, req.hasTarget = n, true
	}
	ts, hasTS, err = parseTS(j.TS)
	return req, ts, hasTS, err
}

// parseID accepts a string or a number as id: senders use both.
func parseID(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, nil
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String(), nil
	}
	return "", refuse(ReasonMalformed, `command JSON: "id" must be a string or a number`)
}

// parseTS reads ts as Unix seconds (integer or fraction) or RFC 3339.
func parseTS(raw json.RawMessage) (float64, bool, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, false, nil
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		f, err := strconv.ParseFloat(n.String(), 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return 0, false, refuse(ReasonMalformed, `command JSON: "ts" %s is not a usable number of seconds`, n)
		}
		return f, true, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return 0, false, refuse(ReasonMalformed, `command JSON: "ts" %q is not RFC 3339 (2006-01-02T15:04:05Z)`, echo(s))
		}
		return float64(t.Unix()) + float64(t.Nanosecond())/1e9, true, nil
	}
	return 0, false, refuse(ReasonMalformed, `command JSON: "ts" must be Unix seconds or an RFC 3339 string`)
}

func refuse(r gate.Reason, format string, args ...any) error {
	return &gate.RefusedError{Reason: r, Msg: fmt.Sprintf(format, args...)}
}

// echo shortens text taken from a message before it is echoed in a result
// or a log line.
func echo(s string) string {
	const most = 32 // runes
	s = strings.TrimSpace(s)
	if utf8.RuneCountInString(s) <= most {
		return s
	}
	r := []rune(s)
	return string(r[:most]) + "…"
}

// secs formats seconds for people, without an overflow for absurd values:
// beyond a day, in days (a ts in milliseconds, or of 0, lands there).
func secs(f float64) string {
	switch {
	case f >= 86400*1e6:
		return "more than a million days"
	case f >= 86400:
		return fmt.Sprintf("%.0f days", f/86400)
	}
	return time.Duration(f * float64(time.Second)).Round(time.Millisecond).String()
}
