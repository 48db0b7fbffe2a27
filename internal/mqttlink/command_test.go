package mqttlink

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"rocksaying.tw/gated/internal/gate"
)

var parseNow = time.Unix(1763806503, 0) // 2025-11-22T10:15:03Z

func TestParseCommand(t *testing.T) {
	const maxAge = 10 * time.Second
	tests := []struct {
		name       string
		payload    string
		retained   bool
		wantCmd    gate.Command
		wantID     string
		wantWord   string
		wantErr    gate.Reason // "" = accepted
		wantTarget int
	}{
		{name: "word", payload: "open", wantCmd: gate.CmdOpen, wantWord: "open"},
		{name: "Home Assistant upper case", payload: "CLOSE", wantCmd: gate.CmdClose, wantWord: "close"},
		{name: "surrounding space", payload: " \tStop\r\n", wantCmd: gate.CmdStop, wantWord: "stop"},
		{name: "alarm", payload: "alarm", wantCmd: gate.CmdAlarm, wantWord: "alarm"},
		{name: "silence", payload: "silence", wantCmd: gate.CmdSilence, wantWord: "silence"},
		{name: "unknown word", payload: "fly", wantWord: "fly", wantErr: gate.ReasonUnknown},
		{name: "long unknown word echoed short", payload: strings.Repeat("x", 100), wantWord: strings.Repeat("x", 32) + "…", wantErr: gate.ReasonUnknown},
		{name: "empty", payload: "", wantErr: ReasonMalformed},
		{name: "only space", payload: "  \n", wantErr: ReasonMalformed},
		{name: "binary", payload: "\x00\x01\xfe\xff", wantErr: ReasonMalformed},
		{name: "control character", payload: "op\x07en", wantErr: ReasonMalformed},
		{name: "invalid UTF-8", payload: "open\xc3", wantErr: ReasonMalformed},
		{name: "oversize", payload: strings.Repeat("a", MaxPayload+1), wantErr: ReasonTooLarge},
		{name: "oversize retained", payload: strings.Repeat("a", MaxPayload+1), retained: true, wantErr: ReasonTooLarge},
		{name: "exactly the limit", payload: "open" + strings.Repeat(" ", MaxPayload-4), wantCmd: gate.CmdOpen, wantWord: "open"},
		{name: "retained word", payload: "open", retained: true, wantWord: "open", wantErr: ReasonRetained},
		{name: "retained JSON keeps its id", payload: `{"command":"open","id":"r1"}`, retained: true, wantID: "r1", wantWord: "open", wantErr: ReasonRetained},
		{name: "retained garbage", payload: "\x00", retained: true, wantErr: ReasonRetained},
		{name: "JSON", payload: `{"command":"open","id":"a1"}`, wantCmd: gate.CmdOpen, wantID: "a1", wantWord: "open"},
		{name: "JSON upper case", payload: `{"command":" OPEN "}`, wantCmd: gate.CmdOpen, wantWord: "open"},
		{name: "JSON numeric id", payload: `{"command":"stop","id":42}`, wantCmd: gate.CmdStop, wantID: "42", wantWord: "stop"},
		{name: "JSON extra fields ignored", payload: `{"command":"stop","by":"me"}`, wantCmd: gate.CmdStop, wantWord: "stop"},
		{name: "JSON ts now", payload: `{"command":"open","id":"t","ts":1763806503}`, wantCmd: gate.CmdOpen, wantID: "t", wantWord: "open"},
		{name: "JSON ts float", payload: `{"command":"open","ts":1763806497.5}`, wantCmd: gate.CmdOpen, wantWord: "open"},
		{name: "JSON ts RFC 3339", payload: `{"command":"open","ts":"2025-11-22T10:15:00Z"}`, wantCmd: gate.CmdOpen, wantWord: "open"},
		{name: "JSON ts RFC 3339 with zone", payload: `{"command":"open","ts":"2025-11-22T18:15:01+08:00"}`, wantCmd: gate.CmdOpen, wantWord: "open"},
		{name: "JSON ts null", payload: `{"command":"open","ts":null}`, wantCmd: gate.CmdOpen, wantWord: "open"},
		{name: "stale", payload: `{"command":"open","id":"s","ts":1763806492}`, wantID: "s", wantWord: "open", wantErr: ReasonStale},
		{name: "stale RFC 3339", payload: `{"command":"open","ts":"2025-11-22T10:00:00Z"}`, wantWord: "open", wantErr: ReasonStale},
		{name: "ts zero", payload: `{"command":"open","ts":0}`, wantWord: "open", wantErr: ReasonStale},
		{name: "ts negative", payload: `{"command":"open","ts":-1e300}`, wantWord: "open", wantErr: ReasonStale},
		{name: "far future", payload: `{"command":"open","ts":1763806600}`, wantWord: "open", wantErr: ReasonStale},
		{name: "absurd future", payload: `{"command":"open","ts":1e300}`, wantWord: "open", wantErr: ReasonStale},
		{name: "year 9999", payload: `{"command":"open","ts":"9999-12-31T23:59:59Z"}`, wantWord: "open", wantErr: ReasonStale},
		{name: "ts overflow", payload: `{"command":"open","ts":1e999}`, wantWord: "open", wantErr: ReasonMalformed},
		{name: "ts bad string", payload: `{"command":"open","ts":"yesterday"}`, wantWord: "open", wantErr: ReasonMalformed},
		{name: "ts bool", payload: `{"command":"open","ts":true}`, wantWord: "open", wantErr: ReasonMalformed},
		{name: "broken JSON", payload: `{"command":"open"`, wantErr: ReasonMalformed},
		{name: "trailing garbage", payload: `{"command":"open"} x`, wantErr: ReasonMalformed},
		{name: "no command", payload: `{"id":"x"}`, wantID: "x", wantErr: ReasonMalformed},
		{name: "command not a string", payload: `{"command":1}`, wantErr: ReasonMalformed},
		{name: "id an object", payload: `{"command":"open","id":{}}`, wantErr: ReasonMalformed},
		{name: "unknown JSON command", payload: `{"command":"fly","id":"u"}`, wantID: "u", wantWord: "fly", wantErr: gate.ReasonUnknown},
		{name: "JSON array", payload: `["open"]`, wantWord: `["open"]`, wantErr: gate.ReasonUnknown},
		{name: "JSON string", payload: `"open"`, wantWord: `"open"`, wantErr: gate.ReasonUnknown},
		{name: "position", payload: `{"command":"position","position":40,"id":"p"}`, wantCmd: gate.CmdPosition, wantID: "p", wantWord: "position", wantTarget: 40},
		{name: "position upper case", payload: `{"command":"POSITION","position":0}`, wantCmd: gate.CmdPosition, wantWord: "position", wantTarget: 0},
		{name: "position out of range: the gate says", payload: `{"command":"position","position":101}`, wantCmd: gate.CmdPosition, wantWord: "position", wantTarget: 101},
		{name: "position without one", payload: `{"command":"position"}`, wantWord: "position", wantErr: ReasonMalformed},
		{name: "position null", payload: `{"command":"position","position":null}`, wantWord: "position", wantErr: ReasonMalformed},
		{name: "position a fraction", payload: `{"command":"position","position":40.5}`, wantWord: "position", wantErr: ReasonMalformed},
		{name: "position a string", payload: `{"command":"position","position":"40"}`, wantWord: "position", wantErr: ReasonMalformed},
		{name: "position huge", payload: `{"command":"position","position":1e99}`, wantWord: "position", wantErr: ReasonMalformed},
		{name: "position as a bare word", payload: "position", wantWord: "position", wantErr: ReasonMalformed},
		{name: "pedestrian word", payload: "Pedestrian", wantCmd: gate.CmdPedestrian, wantWord: "pedestrian"},
		{name: "retained position", payload: `{"command":"position","position":40}`, retained: true, wantWord: "position", wantErr: ReasonRetained},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := parseCommand([]byte(tt.payload), tt.retained, parseNow, maxAge)
			var got gate.Reason
			if err != nil {
				var re *gate.RefusedError
				if !errors.As(err, &re) {
					t.Fatalf("err %T %v, want *gate.RefusedError", err, err)
				}
				got = re.Reason
				if re.Msg == "" {
					t.Errorf("refusal %s has no message", re.Reason)
				}
			}
			if got != tt.wantErr {
				t.Errorf("reason %q (%v), want %q", got, err, tt.wantErr)
			}
			if err == nil && req.Cmd != tt.wantCmd {
				t.Errorf("command %q, want %q", req.Cmd, tt.wantCmd)
			}
			if err != nil && req.Cmd != "" && tt.wantErr != "" {
				// A refused request must carry nothing the gate could run.
				if tt.wantErr != ReasonStale && tt.wantErr != ReasonMalformed {
					t.Errorf("refused request carries command %q", req.Cmd)
				}
			}
			if err == nil && req.Target != tt.wantTarget {
				t.Errorf("target %d, want %d", req.Target, tt.wantTarget)
			}
			if req.ID != tt.wantID {
				t.Errorf("id %q, want %q", req.ID, tt.wantID)
			}
			if req.Word != tt.wantWord {
				t.Errorf("word %q, want %q", req.Word, tt.wantWord)
			}
		})
	}
}

// FuzzParseCommand checks that no payload panics, that only a well-formed,
// fresh, non-retained command is accepted, and that what a result echoes
// stays short and printable.
func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{"open", "CLOSE", " stop ", `{"command":"open","id":"a","ts":1763806503}`,
		`{"command":"alarm","ts":"2025-11-22T10:15:03Z"}`, `{"command":1}`, "\x00\xff", `{"command":"open","ts":1e308}`, `{"command":"position","position":40}`} {
		f.Add([]byte(s), false)
	}
	f.Add([]byte("open"), true)
	f.Fuzz(func(t *testing.T, payload []byte, retained bool) {
		req, err := parseCommand(payload, retained, parseNow, 10*time.Second)
		if err == nil {
			if retained {
				t.Fatal("retained command accepted")
			}
			if len(payload) > MaxPayload {
				t.Fatal("oversize command accepted")
			}
			if req.Cmd == gate.CmdPosition {
				if !bytes.Contains(payload, []byte(`"position"`)) {
					t.Fatalf("position command without a position: %q", payload)
				}
			} else if _, perr := gate.ParseCommand(string(req.Cmd)); perr != nil {
				t.Fatalf("accepted command %q is not a gate command", req.Cmd)
			}
		} else {
			var re *gate.RefusedError
			if !errors.As(err, &re) || re.Reason == "" || re.Msg == "" {
				t.Fatalf("refusal %#v is not a RefusedError with reason and message", err)
			}
		}
		if n := utf8.RuneCountInString(req.Word); n > 33 {
			t.Fatalf("echoed word of %d runes", n)
		}
		if len(req.ID) > MaxPayload {
			t.Fatalf("id of %d bytes", len(req.ID))
		}
	})
}

func TestSecs(t *testing.T) {
	for _, tc := range []struct {
		in   float64
		want string
	}{
		{11.5, "11.5s"},
		{3600, "1h0m0s"},
		{86400 * 2.4, "2 days"},
		{1.763e9, "20405 days"},
		{1e300, "more than a million days"},
	} {
		if got := secs(tc.in); got != tc.want {
			t.Errorf("secs(%g) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestParsePositionSet(t *testing.T) {
	for _, tt := range []struct {
		payload  string
		retained bool
		want     int
		wantErr  gate.Reason
	}{
		{payload: "40", want: 40},
		{payload: " 0\n", want: 0},
		{payload: "100", want: 100},
		{payload: "150", want: 150}, // the gate refuses it: out_of_range
		{payload: "40", retained: true, wantErr: ReasonRetained},
		{payload: "", wantErr: ReasonMalformed},
		{payload: "forty", wantErr: ReasonMalformed},
		{payload: "40.0", wantErr: ReasonMalformed},
		{payload: `{"position":40}`, wantErr: ReasonMalformed},
		{payload: strings.Repeat("1", MaxPayload+1), wantErr: ReasonTooLarge},
	} {
		req, err := parsePositionSet([]byte(tt.payload), tt.retained)
		var got gate.Reason
		var re *gate.RefusedError
		if errors.As(err, &re) {
			got = re.Reason
		}
		if got != tt.wantErr || (err == nil && (req.Cmd != gate.CmdPosition || req.Target != tt.want)) || req.Word != "position" {
			t.Errorf("parsePositionSet(%q, %v) = %+v, %v; want %d, %q", echo(tt.payload), tt.retained, req, err, tt.want, tt.wantErr)
		}
	}
}
