// Package state keeps what gated remembers across restarts (SPEC.md,
// "Status document"): the counters, the two-strike suspension of auto_close,
// the last fault and the learned travel times, as one small JSON document in
// gated's state directory (Dir).
//
// The gate never waits for the disk: a Store takes the latest document with
// Set or Update, which only copy it in memory, and its own goroutine (Run)
// writes it, atomically and only when its content changed. A missing,
// unreadable or corrupt file never stops gated: Load starts from defaults and
// says why, for a WARN, and moves a bad file aside for a person to look at.
//
// The file's fields are read by name. A field keeps its meaning in every
// version: a new meaning gets a new name, so that a file written by a newer
// gated reads correctly in an older one and the other way round. Fields this
// version does not know are kept as they were and written back.
//
// The package knows nothing of the gate: the caller turns what the gate does
// into a Doc.
package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// Version is the format written in the file's "version" field.
const Version = 1

// TravelRuns is how many full runs each way a Doc keeps (SPEC.md,
// "Position": the median of the last five).
const TravelRuns = 5

// MaxFileSize is the largest state file read; a larger one is corrupt.
const MaxFileSize = 1 << 20

// Doc is what gated keeps across restarts. The zero value is the state of a
// gate seen for the first time.
type Doc struct {
	// Counters for the status document: times the gate started opening,
	// obstruction reversals, times it went to fault.
	Openings, Obstructions, Faults uint64
	// Suspended is the two-strike suspension of auto_close: it lasts until
	// a person commands the gate, across restarts too.
	Suspended bool
	// LastFault is the fault word of the last fault ("" if none yet) and
	// LastFaultAt when it happened (zero if none).
	LastFault   string
	LastFaultAt time.Time
	// OpenRuns and CloseRuns are the durations of the last full,
	// uninterrupted runs each way, oldest first, at most TravelRuns each
	// (see AddRun).
	OpenRuns, CloseRuns []time.Duration

	// extra holds the fields this version does not know, as they were.
	extra map[string]json.RawMessage
}

// Clone returns a deep copy of d.
func (d Doc) Clone() Doc {
	d.OpenRuns = slices.Clone(d.OpenRuns)
	d.CloseRuns = slices.Clone(d.CloseRuns)
	if d.extra != nil {
		e := make(map[string]json.RawMessage, len(d.extra))
		for k, v := range d.extra {
			e[k] = slices.Clone(v)
		}
		d.extra = e
	}
	return d
}

// AddRun returns runs with d appended, keeping the last TravelRuns.
func AddRun(runs []time.Duration, d time.Duration) []time.Duration {
	runs = append(runs, d)
	if n := len(runs); n > TravelRuns {
		runs = slices.Clone(runs[n-TravelRuns:])
	}
	return runs
}

// wire is the file's layout, in the order written.
type wire struct {
	Version      int        `json:"version"`
	Openings     uint64     `json:"openings"`
	Obstructions uint64     `json:"obstructions"`
	Faults       uint64     `json:"faults"`
	Suspended    bool       `json:"auto_close_suspended"`
	LastFault    string     `json:"last_fault"`
	LastFaultAt  *time.Time `json:"last_fault_at"` // null: none
	OpenRuns     []string   `json:"open_runs"`     // Go durations: "8.02s"
	CloseRuns    []string   `json:"close_runs"`
}

// encode returns the file's bytes for d: indented JSON, the known fields in
// a fixed order, then the kept ones sorted by name, so equal documents give
// equal bytes.
func encode(d Doc) []byte {
	w := wire{
		Version:      Version,
		Openings:     d.Openings,
		Obstructions: d.Obstructions,
		Faults:       d.Faults,
		Suspended:    d.Suspended,
		LastFault:    d.LastFault,
		OpenRuns:     durations(d.OpenRuns),
		CloseRuns:    durations(d.CloseRuns),
	}
	if t := d.LastFaultAt.UTC().Round(0); !d.LastFaultAt.IsZero() && t.Year() >= 1 && t.Year() <= 9999 {
		w.LastFaultAt = &t // MarshalJSON fails outside years 1-9999: such a time is dropped
	}
	b, err := json.Marshal(w)
	if err != nil {
		panic(fmt.Sprintf("state: encode: %v", err)) // wire has no type that can fail
	}
	if len(d.extra) > 0 {
		keys := make([]string, 0, len(d.extra))
		for k := range d.extra {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b = b[:len(b)-1] // the closing brace
		for _, k := range keys {
			kb, _ := json.Marshal(k)
			var v bytes.Buffer
			if json.Compact(&v, d.extra[k]) != nil {
				continue // not JSON: cannot have come from a file
			}
			b = append(b, ',')
			b = append(b, kb...)
			b = append(b, ':')
			b = append(b, v.Bytes()...)
		}
		b = append(b, '}')
	}
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		panic(fmt.Sprintf("state: encode: %v", err))
	}
	out.WriteByte('\n')
	return out.Bytes()
}

func durations(ds []time.Duration) []string {
	s := make([]string, 0, len(ds))
	for _, d := range ds {
		s = append(s, d.String())
	}
	return s
}

// errCorrupt is the error of decode for a file that is not a JSON object.
var errCorrupt = errors.New("not a JSON object")

// decode reads a state file. It fails (errCorrupt) only when b is not a JSON
// object; a known field of the wrong type or out of range keeps its default
// and is named in bad, the others are read. Unknown fields are kept.
func decode(b []byte) (d Doc, bad []string, err error) {
	if len(b) > MaxFileSize {
		return Doc{}, nil, fmt.Errorf("%w: %d bytes, over the %d-byte limit", errCorrupt, len(b), MaxFileSize)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return Doc{}, nil, fmt.Errorf("%w: %v", errCorrupt, err)
	}
	if raw == nil { // the file says null
		return Doc{}, nil, errCorrupt
	}
	for k, v := range raw {
		if !field(&d, k, v) {
			bad = append(bad, k)
		}
	}
	sort.Strings(bad)
	return d, bad, nil
}

// field reads one field into d; false means v is not what field k holds.
func field(d *Doc, k string, v json.RawMessage) bool {
	switch k {
	case "version":
		var n int
		return json.Unmarshal(v, &n) == nil && n >= 1
	case "openings":
		return json.Unmarshal(v, &d.Openings) == nil
	case "obstructions":
		return json.Unmarshal(v, &d.Obstructions) == nil
	case "faults":
		return json.Unmarshal(v, &d.Faults) == nil
	case "auto_close_suspended":
		return json.Unmarshal(v, &d.Suspended) == nil
	case "last_fault":
		return json.Unmarshal(v, &d.LastFault) == nil
	case "last_fault_at":
		var t *time.Time
		if json.Unmarshal(v, &t) != nil {
			return false
		}
		if t != nil {
			d.LastFaultAt = t.UTC()
		}
		return true
	case "open_runs":
		return runs(v, &d.OpenRuns)
	case "close_runs":
		return runs(v, &d.CloseRuns)
	}
	if d.extra == nil {
		d.extra = make(map[string]json.RawMessage)
	}
	d.extra[k] = v
	return true
}

// runs reads a list of positive Go durations, keeping the last TravelRuns.
func runs(v json.RawMessage, to *[]time.Duration) bool {
	var ss []string
	if json.Unmarshal(v, &ss) != nil {
		return false
	}
	var ds []time.Duration
	for _, s := range ss {
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil || d <= 0 {
			return false
		}
		ds = AddRun(ds, d)
	}
	*to = ds
	return true
}
