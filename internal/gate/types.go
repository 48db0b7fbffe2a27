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
	// CmdPosition goes to Event.Target (SPEC.md "Position"); it has no word
	// of its own: Gate.Send sends it with its Target.
	CmdPosition Command = "position"
	// CmdPedestrian goes to pedestrian_position; with 0 there it is refused
	// as unknown.
	CmdPedestrian Command = "pedestrian"
)

// Commands lists every command, in the order of SPEC.md.
var Commands = []Command{CmdOpen, CmdClose, CmdStop, CmdAlarm, CmdSilence}

// ParseCommand parses a command word: case-insensitive, surrounding white
// space ignored, so Home Assistant's OPEN/CLOSE/STOP work.
func ParseCommand(s string) (Command, error) {
	w := Command(strings.ToLower(strings.TrimSpace(s)))
	if w == CmdPedestrian {
		return w, nil // the gate refuses it unless pedestrian_position is set
	}
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
	FaultSensorTest    Fault = "sensor_test" // the photo eye failed its self-test
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

	// Warning: the pre-close warning is on, the motor not yet (warning.go).
	Warning bool `json:"warning"`
	// AutoClose is what automatic closing is doing: AutoCloseOff, …Idle,
	// …Armed or …Suspended.
	AutoClose AutoCloseState `json:"auto_close"`
	// Counters kept across restarts (counters.go).
	Openings     uint64 `json:"openings"`
	Obstructions uint64 `json:"obstructions"`
	Faults       uint64 `json:"faults"`

	// TwoStrikes: automatic closing is suspended by two strikes (AutoClose
	// says suspended for a failed self-test too). Not in the document: the
	// state file keeps it.
	TwoStrikes bool `json:"-"`

	// Position is 0 (closed) to 100 (open) when PositionKnown; the
	// document says null otherwise (SPEC.md "Position").
	Position      int
	PositionKnown bool
	// OpenTime and CloseTime are the travel times the estimate uses,
	// configured or learned (0: not known yet): extra fields open_time and
	// close_time for gatectl status.
	OpenTime, CloseTime time.Duration
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
	Position   *int   `json:"position"`

	Warning      bool           `json:"warning"`
	AutoClose    AutoCloseState `json:"auto_close"`
	Openings     uint64         `json:"openings"`
	Obstructions uint64         `json:"obstructions"`
	Faults       uint64         `json:"faults"`
	OpenTime     string         `json:"open_time,omitempty"`
	CloseTime    string         `json:"close_time,omitempty"`
}

// TimeFormat is the format of since in the status document.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// MarshalJSON implements json.Marshaler.
func (s Status) MarshalJSON() ([]byte, error) {
	j := statusJSON{Gate: s.Gate, State: s.State, Moving: s.Moving, Alarm: s.Alarm, Obstructed: s.Obstructed, Fault: s.Fault, Cause: s.Cause, Since: s.Since.UTC().Format(TimeFormat), Seq: s.Seq,
		Warning: s.Warning, AutoClose: s.AutoClose, Openings: s.Openings, Obstructions: s.Obstructions, Faults: s.Faults}
	if s.PositionKnown {
		p := s.Position
		j.Position = &p
	}
	if s.OpenTime > 0 {
		j.OpenTime = s.OpenTime.String()
	}
	if s.CloseTime > 0 {
		j.CloseTime = s.CloseTime.String()
	}
	return json.Marshal(j)
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
	*s = Status{Gate: j.Gate, State: j.State, Moving: j.Moving, Alarm: j.Alarm, Obstructed: j.Obstructed, Fault: j.Fault, Cause: j.Cause, Since: t, Seq: j.Seq,
		Warning: j.Warning, AutoClose: j.AutoClose, Openings: j.Openings, Obstructions: j.Obstructions, Faults: j.Faults}
	if j.Position != nil {
		s.Position, s.PositionKnown = *j.Position, true
	}
	for _, d := range []struct {
		in  string
		out *time.Duration
	}{{j.OpenTime, &s.OpenTime}, {j.CloseTime, &s.CloseTime}} {
		if d.in == "" {
			continue
		}
		v, err := time.ParseDuration(d.in)
		if err != nil {
			return fmt.Errorf("status: %w", err)
		}
		*d.out = v
	}
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
	ReasonObstructed Reason = "obstructed"  // close while the obstruction sensor is active
	ReasonFault      Reason = "fault"       // the inputs forbid motion (both limits active)
	ReasonBusy       Reason = "busy"        // the gate did not take the command in time
	ReasonUnknown    Reason = "unknown"     // not a command
	ReasonStopped    Reason = "stopped"     // the gate is shutting down
	ReasonSensorTest Reason = "sensor_test" // close: the photo eye failed its self-test
	// ReasonPositionUnknown: a position command while the estimate is
	// unknown (or no full run has taught the travel time that way).
	ReasonPositionUnknown Reason = "position_unknown"
	ReasonRange           Reason = "out_of_range" // a position outside 0..100
)

// RefusedError is a command the gate did not accept. Nothing moved.
type RefusedError struct {
	Reason Reason
	Msg    string // a sentence for people
}

func (e *RefusedError) Error() string { return e.Msg }
