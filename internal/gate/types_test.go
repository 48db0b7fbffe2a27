package gate

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestParseCommand(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Command
		ok   bool
	}{
		{"open", CmdOpen, true},
		{"OPEN", CmdOpen, true}, // Home Assistant
		{"  Close\n", CmdClose, true},
		{"\tSTOP ", CmdStop, true},
		{"alarm", CmdAlarm, true},
		{"Silence", CmdSilence, true},
		{"", "", false},
		{"op en", "", false},
		{"opened", "", false},
		{`{"command":"open"}`, "", false},
		{"open\x00", "", false},
		{strings.Repeat("x", 2000), "", false},
	} {
		t.Run(c.in[:min(len(c.in), 20)], func(t *testing.T) {
			got, err := ParseCommand(c.in)
			if c.ok {
				if err != nil || got != c.want {
					t.Fatalf("ParseCommand(%q) = %q, %v; want %q, nil", c.in, got, err, c.want)
				}
				return
			}
			var re *RefusedError
			if !errors.As(err, &re) || re.Reason != ReasonUnknown || got != "" {
				t.Fatalf("ParseCommand(%q) = %q, %v; want \"\", a refusal with reason unknown", c.in, got, err)
			}
			if len(re.Msg) > 200 {
				t.Errorf("ParseCommand(%d bytes): message of %d bytes, want the input cut short", len(c.in), len(re.Msg))
			}
		})
	}
}

// FuzzParseCommand: MQTT payloads reach ParseCommand unfiltered.
func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{"open", "CLOSE", " stop\r\n", "Alarm", "silence", "", "jump", "\xff\xfe", "opén"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCommand(s)
		if err != nil {
			var re *RefusedError
			if !errors.As(err, &re) || re.Reason != ReasonUnknown {
				t.Fatalf("ParseCommand(%q): error %v, want a refusal with reason unknown", s, err)
			}
			if c != "" {
				t.Fatalf("ParseCommand(%q) refused but returned %q", s, c)
			}
			if len(re.Msg) > 200 || !utf8.ValidString(re.Msg) {
				t.Fatalf("ParseCommand(%q): message %q too long or not UTF-8", s, re.Msg)
			}
			return
		}
		known := false
		for _, k := range Commands {
			known = known || c == k
		}
		if !known {
			t.Fatalf("ParseCommand(%q) = %q, not a command", s, c)
		}
		if w := strings.ToLower(strings.TrimSpace(s)); w != string(c) {
			t.Fatalf("ParseCommand(%q) = %q, but the word is %q", s, c, w)
		}
		// Round trip: the accepted word parses to itself, in any case.
		for _, v := range []string{string(c), strings.ToUpper(string(c)), " " + string(c) + "\n"} {
			if again, err := ParseCommand(v); err != nil || again != c {
				t.Fatalf("ParseCommand(%q) = %q, %v; want %q", v, again, err, c)
			}
		}
	})
}

func TestStatusJSON(t *testing.T) {
	taipei := time.FixedZone("CST", 8*3600)
	s := Status{Gate: "front", State: Opening, Moving: true, Cause: CauseMQTT,
		Since: time.Date(2026, 11, 22, 18, 15, 3, 512_999_999, taipei), Seq: 42,
		AutoClose: AutoCloseArmed, Openings: 7, Obstructions: 2, Faults: 1}
	got := string(s.JSON())
	want := `{"gate":"front","state":"opening","moving":true,"alarm":false,"obstructed":false,"fault":"","cause":"mqtt","since":"2026-11-22T10:15:03.512Z","seq":42,"position":null,"warning":false,"auto_close":"armed","openings":7,"obstructions":2,"faults":1}`
	if got != want {
		t.Errorf("JSON:\n got %s\nwant %s", got, want)
	}
	b, err := json.Marshal(s)
	if err != nil || !bytes.Equal(b, []byte(want)) {
		t.Errorf("json.Marshal: %s, %v; want the same bytes as JSON", b, err)
	}
	var back Status
	if err := json.Unmarshal([]byte(want), &back); err != nil {
		t.Fatal(err)
	}
	if !back.Since.Equal(time.Date(2026, 11, 22, 10, 15, 3, 512e6, time.UTC)) || back.Seq != 42 || back.State != Opening || back.AutoClose != AutoCloseArmed || back.Openings != 7 || back.Obstructions != 2 || back.Faults != 1 {
		t.Errorf("round trip: %+v", back)
	}
	whole := Status{Since: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Fault: FaultTravel}
	var m map[string]any
	if err := json.Unmarshal(whole.JSON(), &m); err != nil {
		t.Fatal(err)
	}
	if m["since"] != "2026-01-02T03:04:05.000Z" || m["fault"] != "travel_timeout" {
		t.Errorf("since %v fault %v: want 2026-01-02T03:04:05.000Z, travel_timeout", m["since"], m["fault"])
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if want := []string{"alarm", "auto_close", "cause", "fault", "faults", "gate", "moving", "obstructed", "obstructions", "openings", "position", "seq", "since", "state", "warning"}; !slices.Equal(keys, want) {
		t.Errorf("fields %v, want %v (SPEC.md)", keys, want)
	}
}
