package state

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzDecode checks that no file makes the loader panic, and that what it
// accepts is written back in a form it reads again as the same document:
// a state file survives any number of restarts unchanged.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"version":1,"openings":3,"obstructions":1,"faults":0,"auto_close_suspended":true,"last_fault":"gpio","last_fault_at":"2026-11-22T10:15:03Z","open_runs":["8s"],"close_runs":[]}`,
		`{"future":{"a":[1,2,3]},"openings":1}`,
		`{"open_runs":["1s","2s","3s","4s","5s","6s"]}`,
		`null`, ``, `{`, `[]`, `{"openings":-1}`, `{"last_fault_at":"9999-12-31T23:59:59Z"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d, bad, err := decode(b)
		if err != nil {
			return
		}
		if len(d.OpenRuns) > TravelRuns || len(d.CloseRuns) > TravelRuns {
			t.Fatalf("kept %d open and %d close runs, over %d", len(d.OpenRuns), len(d.CloseRuns), TravelRuns)
		}
		for _, r := range append(d.OpenRuns, d.CloseRuns...) {
			if r <= 0 {
				t.Fatalf("kept a run of %v", r)
			}
		}
		_ = bad
		e := encode(d)
		if !json.Valid(e) {
			t.Fatalf("encode wrote invalid JSON:\n%s", e)
		}
		d2, bad2, err := decode(e)
		if err != nil || len(bad2) > 0 {
			t.Fatalf("decode of encode: %v, bad fields %v\n%s", err, bad2, e)
		}
		if e2 := encode(d2); !bytes.Equal(e, e2) {
			t.Fatalf("not stable across a restart:\n%s\nthen\n%s", e, e2)
		}
	})
}
