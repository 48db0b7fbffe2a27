// Package gate decides what a gate does. A pure Controller (events in,
// actions out) holds every decision: debouncing, the state machine
// (Machine), which output lines to drive and when, pulses, retries, status
// numbering and the answers to commands. Gate is its thin shell: the one
// goroutine that reads the pins, feeds the controller and carries out its
// actions.
//
// It knows nothing of MQTT, D-Bus or systemd: the links submit commands with
// Gate.Do and watch statuses with Gate.Subscribe.
package gate

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// State is the gate's state as published in the status document.
type State string

// The states of SPEC.md.
const (
	Closed  State = "closed"
	Opening State = "opening"
	Open    State = "open"
	Closing State = "closing"
	Stopped State = "stopped" // halted between the limits
	Unknown State = "unknown" // neither limit active and no motion known
	Faulted State = "fault"
)

// Command is what a user may ask of the gate.
type Command string

// The commands of SPEC.md.
const (
	CmdOpen    Command = "open"
	CmdClose   Command = "close"
	CmdStop    Command = "stop"
	CmdAlarm   Command = "alarm"
	CmdSilence Command = "silence"
)

// Commands lists every command, in the order of SPEC.md.
var Commands = []Command{CmdOpen, CmdClose, CmdStop, CmdAlarm, CmdSilence}

// ParseCommand parses a command word: case-insensitive, surrounding white
// space ignored, so Home Assistant's OPEN/CLOSE/STOP work.
func ParseCommand(s string) (Command, error) {
	w := Command(strings.ToLower(strings.TrimSpace(s)))
	for _, c := range Commands {
		if w == c {
			return c, nil
		}
	}
	const shown = 32 // of an unknown word in the error
	if len(s) > shown {
		s = s[:shown] + "…"
	}
	return "", &RefusedError{Reason: ReasonUnknown, Msg: fmt.Sprintf("unknown command %q: want one of open, close, stop, alarm, silence", s)}
}

// Fault says why the gate is in state fault.
type Fault string

// The faults of SPEC.md.
const (
	NoFault            Fault = ""
	FaultTravel        Fault = "travel_timeout"
	FaultLimitConflict Fault = "limit_conflict"
	FaultGPIO          Fault = "gpio"
)

// Cause says what started the current state.
type Cause string

// The causes of SPEC.md. The links pass their own (CauseMQTT, CauseDBus).
const (
	CauseMQTT      Cause = "mqtt"
	CauseDBus      Cause = "dbus"
	CauseWeb       Cause = "web"
	CauseAutoClose Cause = "auto_close"
	CauseInput     Cause = "input"
	CauseTimeout   Cause = "timeout"
	CauseStartup   Cause = "startup"
)

// Status is the status document of SPEC.md: the same bytes go to MQTT and
// D-Bus. Use JSON to get them.
type Status struct {
	Gate       string    `json:"gate"`
	State      State     `json:"state"`
	Moving     bool      `json:"moving"`
	Alarm      bool      `json:"alarm"`
	Obstructed bool      `json:"obstructed"`
	Fault      Fault     `json:"fault"`
	Cause      Cause     `json:"cause"`
	Since      time.Time `json:"since"`
	Seq        uint64    `json:"seq"`
}

// sameAs reports whether two statuses say the same thing (seq aside).
func (s Status) sameAs(o Status) bool {
	if !s.Since.Equal(o.Since) {
		return false // Equal, not ==: == also compares locations and monotonic readings
	}
	s.Seq, o.Seq, s.Since, o.Since = 0, 0, time.Time{}, time.Time{}
	return s == o
}

// statusJSON fixes the wire format of since: UTC, milliseconds, as SPEC.md
// shows it ("2026-11-22T10:15:03.512Z").
type statusJSON struct {
	Gate       string `json:"gate"`
	State      State  `json:"state"`
	Moving     bool   `json:"moving"`
	Alarm      bool   `json:"alarm"`
	Obstructed bool   `json:"obstructed"`
	Fault      Fault  `json:"fault"`
	Cause      Cause  `json:"cause"`
	Since      string `json:"since"`
	Seq        uint64 `json:"seq"`
}

// TimeFormat is the format of since in the status document.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// MarshalJSON implements json.Marshaler.
func (s Status) MarshalJSON() ([]byte, error) {
	return json.Marshal(statusJSON{s.Gate, s.State, s.Moving, s.Alarm, s.Obstructed, s.Fault, s.Cause, s.Since.UTC().Format(TimeFormat), s.Seq})
}

// UnmarshalJSON implements json.Unmarshaler, for clients of the document.
func (s *Status) UnmarshalJSON(b []byte) error {
	var j statusJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	t, err := time.Parse(time.RFC3339Nano, j.Since)
	if err != nil && j.Since != "" {
		return fmt.Errorf("status: since: %w", err)
	}
	*s = Status{j.Gate, j.State, j.Moving, j.Alarm, j.Obstructed, j.Fault, j.Cause, t, j.Seq}
	return nil
}

// JSON returns the status document.
func (s Status) JSON() []byte {
	b, _ := s.MarshalJSON() // cannot fail: only strings, bools and numbers
	return b
}

// Reason is the machine-readable reason of a refusal. The links map it to
// their own error names (MQTT result "error", D-Bus error name).
type Reason string

// Reasons for refusing a command.
const (
	ReasonObstructed Reason = "obstructed" // close while the obstruction sensor is active
	ReasonFault      Reason = "fault"      // the inputs forbid motion (both limits active)
	ReasonBusy       Reason = "busy"       // the gate did not take the command in time
	ReasonUnknown    Reason = "unknown"    // not a command
	ReasonStopped    Reason = "stopped"    // the gate is shutting down
)

// RefusedError is a command the gate did not accept. Nothing moved.
type RefusedError struct {
	Reason Reason
	Msg    string // a sentence for people
}

func (e *RefusedError) Error() string { return e.Msg }
