package history

import (
	"encoding/json"
	"fmt"
	"time"
)

// Kind says what an Event records.
type Kind string

// The kinds of SPEC.md.
const (
	KindCommand Kind = "command" // a command, accepted or refused, from any source
	KindStatus  Kind = "status"  // a published status change
)

// TimeFormat is the format of at: UTC with milliseconds, as the status
// document's since ("2026-12-02T10:15:03.512Z").
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// Event is one entry of the history. The fields are plain strings so that
// this package needs nothing of the gate; the caller copies them from its
// command result or status.
//
// A command event is written with seq, at, kind, command, source, who, ok,
// error and state (SPEC.md's example), plus position when the command had a
// target position. A status event is written with seq, at, kind, state,
// cause, fault and position (null while unknown). An event of another kind
// is written with every field that is set.
type Event struct {
	// Seq is assigned by the store when the event is written: 1 for the
	// first event ever, one more for each next, across restarts. Add
	// ignores the caller's value.
	Seq uint64
	// At is when it happened; Add uses the store's clock when it is zero.
	At   time.Time
	Kind Kind

	// Command events.
	Command string // open, close, stop, alarm, silence, position, …
	Source  string // mqtt, dbus, web, auto_close, input, startup
	Who     string // mqtt: the command's id; dbus: "uid 1000 (alice)"; web: the user name
	OK      bool
	Error   string // the refusal reason when !OK

	// Both: the gate's state after the command, or the new state.
	State string

	// Status events.
	Cause    string
	Fault    string
	Position *int // 0–100, nil while unknown; for a command, its target
}

type commandJSON struct {
	Seq      uint64 `json:"seq"`
	At       string `json:"at"`
	Kind     Kind   `json:"kind"`
	Command  string `json:"command"`
	Source   string `json:"source"`
	Who      string `json:"who"`
	OK       bool   `json:"ok"`
	Error    string `json:"error"`
	State    string `json:"state"`
	Position *int   `json:"position,omitempty"`
}

type statusJSON struct {
	Seq      uint64 `json:"seq"`
	At       string `json:"at"`
	Kind     Kind   `json:"kind"`
	State    string `json:"state"`
	Cause    string `json:"cause"`
	Fault    string `json:"fault"`
	Position *int   `json:"position"` // null while unknown, as in the status document
}

// anyJSON is every field; it writes events of other kinds and reads all.
type anyJSON struct {
	Seq      uint64 `json:"seq"`
	At       string `json:"at"`
	Kind     Kind   `json:"kind"`
	Command  string `json:"command,omitempty"`
	Source   string `json:"source,omitempty"`
	Who      string `json:"who,omitempty"`
	OK       bool   `json:"ok,omitempty"`
	Error    string `json:"error,omitempty"`
	State    string `json:"state,omitempty"`
	Cause    string `json:"cause,omitempty"`
	Fault    string `json:"fault,omitempty"`
	Position *int   `json:"position,omitempty"`
}

// MarshalJSON implements json.Marshaler with the document of SPEC.md.
func (e Event) MarshalJSON() ([]byte, error) {
	at := e.At.UTC().Format(TimeFormat)
	switch e.Kind {
	case KindCommand:
		return json.Marshal(commandJSON{e.Seq, at, e.Kind, e.Command, e.Source, e.Who, e.OK, e.Error, e.State, e.Position})
	case KindStatus:
		return json.Marshal(statusJSON{e.Seq, at, e.Kind, e.State, e.Cause, e.Fault, e.Position})
	}
	return json.Marshal(anyJSON{e.Seq, at, e.Kind, e.Command, e.Source, e.Who, e.OK, e.Error, e.State, e.Cause, e.Fault, e.Position})
}

// UnmarshalJSON implements json.Unmarshaler, for clients of the history.
func (e *Event) UnmarshalJSON(b []byte) error {
	var j anyJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	var at time.Time
	if j.At != "" {
		var err error
		if at, err = time.Parse(time.RFC3339Nano, j.At); err != nil {
			return fmt.Errorf("event: at: %w", err)
		}
	}
	*e = Event{
		Seq: j.Seq, At: at, Kind: j.Kind,
		Command: j.Command, Source: j.Source, Who: j.Who, OK: j.OK, Error: j.Error,
		State: j.State, Cause: j.Cause, Fault: j.Fault, Position: j.Position,
	}
	return nil
}
