package gate

import (
	"errors"
	"strings"
	"testing"
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
