package mqttlink

import (
	"context"
	"errors"
	"fmt"
	"github.com/google/go-cmp/cmp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"rocksaying.tw/gated/internal/gate"
	"rocksaying.tw/gated/internal/mqttlink/mqtttest"
)

// With the time unknown (a zero now), ts is read but not judged.
func TestParseCommandTimeUnknown(t *testing.T) {
	tests := []struct {
		name, payload string
		retained      bool
		wantErr       gate.Reason
		wantUnjudged  bool
	}{
		{name: "hours old", payload: `{"command":"open","ts":1763795703}`, wantUnjudged: true},
		{name: "RFC 3339 days old", payload: `{"command":"open","ts":"2025-11-01T00:00:00Z"}`, wantUnjudged: true},
		{name: "far future", payload: `{"command":"close","ts":"2030-01-01T00:00:00Z"}`, wantUnjudged: true},
		{name: "no ts", payload: `{"command":"open"}`},
		{name: "word", payload: "stop"},
		{name: "bad ts still malformed", payload: `{"command":"open","ts":"yesterday"}`, wantErr: ReasonMalformed},
		{name: "retained still refused", payload: `{"command":"open","ts":1763795703}`, retained: true, wantErr: ReasonRetained},
		{name: "unknown still refused", payload: `{"command":"fly","ts":1763795703}`, wantErr: gate.ReasonUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := parseCommand([]byte(tt.payload), tt.retained, time.Time{}, 10*time.Second)
			var got gate.Reason
			if re := (*gate.RefusedError)(nil); errors.As(err, &re) {
				got = re.Reason
			} else if err != nil {
				t.Fatalf("err %T %v, want *gate.RefusedError", err, err)
			}
			if got != tt.wantErr {
				t.Errorf("reason %q (%v), want %q", got, err, tt.wantErr)
			}
			if req.Unjudged != tt.wantUnjudged {
				t.Errorf("Unjudged %v, want %v", req.Unjudged, tt.wantUnjudged)
			}
		})
	}
	// A known time judges as before.
	if _, err := parseCommand([]byte(`{"command":"open","ts":1763795703}`), false, parseNow, 10*time.Second); err == nil {
		t.Error("hours-old command accepted with a known time")
	}
}

// recordGate is a gate that accepts every command and remembers it.
type recordGate struct {
	mu   sync.Mutex
	cmds []gate.Command
	whos []string // who the link named for each command: its id
}

func (g *recordGate) Send(_ context.Context, r gate.Request) (gate.Status, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.cmds = append(g.cmds, r.Cmd)
	g.whos = append(g.whos, r.Who)
	return gate.Status{State: gate.Opening}, nil
}

func (g *recordGate) Status() gate.Status { return gate.Status{State: gate.Closed} }

func (g *recordGate) Subscribe() (<-chan gate.Status, func()) {
	ch := make(chan gate.Status, 1)
	ch <- g.Status()
	return ch, func() {}
}

func (g *recordGate) done() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.cmds)
}

// While the clock is not synchronized, an hours-old command is carried out
// and the link says so once per such period; once it is, the same command
// is refused as stale.
func TestCommandAgeFollowsClockSync(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	g := &recordGate{}
	now := time.Now()
	clk := clockwork.NewFakeClockAt(now)
	var synced atomic.Bool
	log, logs := captureLog()
	l, _ := startLink(t, Config{Broker: b.URL, MaxCommandAge: 10 * time.Second}, g,
		Options{Clock: clk, Log: log, ClockSynced: synced.Load})
	user := mqtttest.Connect(t, b.URL)
	results := user.Subscribe(l.t.result)
	online(t, user, l.cfg.TopicPrefix)

	old := func(id string) string {
		return fmt.Sprintf(`{"command":"open","id":%q,"ts":%d}`, id, now.Add(-3*time.Hour).Unix())
	}
	const warn = "level=WARN msg=\"system clock not synchronized"
	steps := []struct {
		synced  bool
		payload string
		wantErr string // "" = carried out
		warns   int    // WARNs so far
	}{
		{false, old("u1"), "", 1},
		{false, old("u2"), "", 1},
		{false, fmt.Sprintf(`{"command":"open","id":"f","ts":%d}`, now.Add(2*time.Hour).Unix()), "", 1},
		{false, "stop", "", 1},
		{true, old("s1"), "stale", 1},
		{true, fmt.Sprintf(`{"command":"open","id":"s2","ts":%d}`, now.Unix()), "", 1},
		{false, old("u3"), "", 2}, // a new period without synchronization
		{false, old("u4"), "", 2},
	}
	for i, s := range steps {
		synced.Store(s.synced)
		before := g.done()
		user.Publish(l.t.command, []byte(s.payload))
		r := decodeResult(t, next(t, results, 5*time.Second, "result", func(mqtttest.Msg) bool { return true }))
		if r.OK != (s.wantErr == "") || r.Error != s.wantErr {
			t.Errorf("step %d, synced %v, %s: result %+v, want error %q", i, s.synced, s.payload, r, s.wantErr)
		}
		if got, want := g.done()-before, map[bool]int{true: 1, false: 0}[s.wantErr == ""]; got != want {
			t.Errorf("step %d: the gate got %d commands, want %d", i, got, want)
		}
		if n := strings.Count(logs.String(), warn); n != s.warns {
			t.Errorf("step %d: %d WARNs about the clock, want %d:\n%s", i, n, s.warns, logs)
		}
	}
	if !strings.Contains(logs.String(), "judged again") {
		t.Errorf("no INFO when the clock became synchronized:\n%s", logs)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	// The history records an MQTT command's id as who asked.
	if diff := cmp.Diff([]string{"u1", "u2", "f", "", "s2", "u3", "u4"}, g.whos); diff != "" {
		t.Errorf("who the link named (-want +got):\n%s", diff)
	}
}
