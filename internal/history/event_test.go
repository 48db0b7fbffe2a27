package history

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func intp(i int) *int { return &i }

func TestEventJSON(t *testing.T) {
	at := time.Date(2026, 12, 2, 10, 15, 3, 512_000_000, time.UTC)
	tests := []struct {
		name string
		ev   Event
		want string
	}{
		{
			name: "spec example",
			ev:   Event{Seq: 812, At: at, Kind: KindCommand, Command: "open", Source: "dbus", Who: "uid 1000 (alice)", OK: true, State: "opening"},
			want: `{"seq":812,"at":"2026-12-02T10:15:03.512Z","kind":"command","command":"open","source":"dbus","who":"uid 1000 (alice)","ok":true,"error":"","state":"opening"}`,
		},
		{
			name: "refused command",
			ev:   Event{Seq: 9, At: at, Kind: KindCommand, Command: "close", Source: "mqtt", Who: "ha-42", Error: "obstructed", State: "open"},
			want: `{"seq":9,"at":"2026-12-02T10:15:03.512Z","kind":"command","command":"close","source":"mqtt","who":"ha-42","ok":false,"error":"obstructed","state":"open"}`,
		},
		{
			name: "position command carries its target",
			ev:   Event{Seq: 10, At: at, Kind: KindCommand, Command: "position", Source: "web", Who: "alice", OK: true, State: "opening", Position: intp(40)},
			want: `{"seq":10,"at":"2026-12-02T10:15:03.512Z","kind":"command","command":"position","source":"web","who":"alice","ok":true,"error":"","state":"opening","position":40}`,
		},
		{
			name: "status, position unknown is null",
			ev:   Event{Seq: 813, At: at, Kind: KindStatus, State: "opening", Cause: "dbus"},
			want: `{"seq":813,"at":"2026-12-02T10:15:03.512Z","kind":"status","state":"opening","cause":"dbus","fault":"","position":null}`,
		},
		{
			name: "status with fault and position",
			ev:   Event{Seq: 814, At: at, Kind: KindStatus, State: "fault", Cause: "timeout", Fault: "travel_timeout", Position: intp(55)},
			want: `{"seq":814,"at":"2026-12-02T10:15:03.512Z","kind":"status","state":"fault","cause":"timeout","fault":"travel_timeout","position":55}`,
		},
		{
			name: "at in UTC whatever the zone",
			ev:   Event{Seq: 1, At: at.In(time.FixedZone("CST", 8*3600)), Kind: KindStatus, State: "closed", Cause: "startup", Position: intp(0)},
			want: `{"seq":1,"at":"2026-12-02T10:15:03.512Z","kind":"status","state":"closed","cause":"startup","fault":"","position":0}`,
		},
		{
			name: "another kind keeps what is set",
			ev:   Event{Seq: 2, At: at, Kind: "note", Who: "x", OK: true},
			want: `{"seq":2,"at":"2026-12-02T10:15:03.512Z","kind":"note","who":"x","ok":true}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.ev)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tt.want {
				t.Errorf("got  %s\nwant %s", b, tt.want)
			}
			var back Event
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.ev, back); diff != "" {
				t.Errorf("round trip (-sent +read):\n%s", diff)
			}
		})
	}
}

func TestEventUnmarshalBadTime(t *testing.T) {
	var e Event
	if err := json.Unmarshal([]byte(`{"seq":1,"at":"yesterday","kind":"status"}`), &e); err == nil {
		t.Error("got no error for at \"yesterday\"")
	}
}
