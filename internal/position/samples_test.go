package position_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"rocksaying.tw/gated/internal/position"
)

// TestSamplesRoundTrip learns, saves the samples as the state file would,
// and gives them to a fresh estimator, as after a restart.
func TestSamplesRoundTrip(t *testing.T) {
	learned := position.New(position.Config{})
	ops, _ := fullRuns(0, []time.Duration{12 * s, 12100 * ms, 11900 * ms}, []time.Duration{10 * s, 9800 * ms})
	apply(&learned, ops)

	b, err := json.Marshal(learned.Samples())
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"open":["12s","12.1s","11.9s"],"close":["10s","9.8s"]}`; string(b) != want {
		t.Errorf("JSON: got %s, want %s", b, want)
	}
	var back position.Samples
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("Unmarshal(%s): %v", b, err)
	}
	restarted := position.New(position.Config{})
	if err := restarted.SetSamples(back); err != nil {
		t.Fatalf("SetSamples: %v", err)
	}
	if diff := cmp.Diff(learned.Samples(), restarted.Samples()); diff != "" {
		t.Errorf("Samples after the round trip (-before +after):\n%s", diff)
	}
	o1, c1 := learned.TravelTimes()
	o2, c2 := restarted.TravelTimes()
	if o1 != o2 || c1 != c2 || o2 != 12*s || c2 != 9900*ms {
		t.Errorf("TravelTimes: before %v/%v, after %v/%v, want 12s/9.9s both", o1, c1, o2, c2)
	}
	// Learning goes on from the restored runs.
	more, _ := fullRuns(time.Hour, []time.Duration{15 * s, 15 * s}, nil)
	apply(&restarted, more)
	if got := restarted.Samples().Open; len(got) != 5 || got[4] != 15*s {
		t.Errorf("Samples().Open after two more runs: got %v, want five, newest 15s", got)
	}

	empty, err := json.Marshal(position.New(position.Config{}).Samples())
	if err != nil || string(empty) != `{"open":[],"close":[]}` {
		t.Errorf("JSON of nothing learned: got %s, %v", empty, err)
	}
}

func TestSetSamplesRefusesCorrupt(t *testing.T) {
	six := []time.Duration{s, s, s, s, s, s}
	tests := []struct {
		name string
		in   position.Samples
		want string
	}{
		{"six runs", position.Samples{Open: six}, "6 open samples"},
		{"zero", position.Samples{Close: []time.Duration{0}}, "close sample 0s"},
		{"negative", position.Samples{Open: []time.Duration{-s}}, "open sample -1s"},
		{"too long", position.Samples{Open: []time.Duration{2 * time.Hour}}, "open sample 2h0m0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := position.New(position.Config{})
			good := position.Samples{Open: []time.Duration{12 * s}, Close: []time.Duration{10 * s}}
			if err := e.SetSamples(good); err != nil {
				t.Fatal(err)
			}
			err := e.SetSamples(tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("SetSamples(%v): got error %v, want one saying %q", tt.in, err, tt.want)
			}
			if diff := cmp.Diff(good, e.Samples()); diff != "" {
				t.Errorf("a refused SetSamples changed the samples (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSamplesUnmarshalRefusesCorrupt(t *testing.T) {
	for _, in := range []string{
		``, `{`, `[]`, `{"open":"12s"}`, `{"open":[12]}`, `{"open":["twelve"]}`, `{"close":["12"]}`,
	} {
		var sm position.Samples
		if err := json.Unmarshal([]byte(in), &sm); err == nil {
			t.Errorf("Unmarshal(%q): got %v, want an error", in, sm)
		}
	}
}
