package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"rocksaying.tw/gated/internal/gate"
	"rocksaying.tw/gated/internal/mqttlink/mqtttest"
	"rocksaying.tw/gated/internal/syncbuf"
)

// TestSafetyRulesOverMQTT runs gated on the simulator with a real mosquitto
// and tries the pre-close rules from outside: a warned remote close, a
// photo eye that fails its self-test, and counters that survive a restart.
// Real time, so the durations are short and only the order of what happens
// is asserted. (Two strikes need auto_close, whose warning is at least 5 s:
// the machine tables and the property walk try them; README's demo shows
// them.)
func TestSafetyRulesOverMQTT(t *testing.T) {
	broker := mqtttest.Start(t, mqtttest.Options{})
	dir := t.TempDir()
	t.Setenv("STATE_DIRECTORY", dir)
	cfg := writeConfig(t, fmt.Sprintf(`
[gate]
name = "safety"
travel_timeout = "5s"
warn_before_close = "300ms"
warn_on_remote_close = true
[gpio]
driver = "sim"
debounce = "5ms"
obstruction_test = "eye"
obstruction_test_time = "50ms"
[sim]
travel_time = "300ms"
[mqtt]
broker = %q
client_id = "gated-safety"
keepalive = "2s"
[dbus]
bus = "none"
`, broker.URL))
	mq := mqtttest.Connect(t, broker.URL)
	msgs := mq.Subscribe("tw/rocksaying/#")

	start := func() (stop func(), stderr *syncbuf.Buffer) {
		ctx, cancel := context.WithCancel(context.Background())
		stderr = &syncbuf.Buffer{}
		done := make(chan int, 1)
		go func() { done <- run(ctx, []string{"-config", cfg}, stderr, stderr) }()
		return func() {
			cancel()
			waitCleanStop(t, done, stderr)
		}, stderr
	}
	stop, stderr := start()
	defer func() { stop() }()

	// next returns the next message on topic that ok accepts, with the
	// statuses seen on the way.
	var seen []gate.Status
	next := func(what, topic string, ok func(string) bool) string {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case m := <-msgs:
				if m.Topic == "tw/rocksaying/status" {
					var st gate.Status
					if err := json.Unmarshal([]byte(m.Payload), &st); err != nil {
						t.Fatalf("status %q: %v", m.Payload, err)
					}
					seen = append(seen, st)
				}
				if m.Topic == topic && ok(m.Payload) {
					return m.Payload
				}
			case <-deadline:
				t.Fatalf("no %s within 10s; gated said:\n%s", what, stderr.String())
			}
		}
	}
	has := func(parts ...string) func(string) bool {
		return func(p string) bool {
			for _, s := range parts {
				if !strings.Contains(p, s) {
					return false
				}
			}
			return true
		}
	}
	status := func(what string, parts ...string) string {
		t.Helper()
		return next(what, "tw/rocksaying/status", has(parts...))
	}
	result := func(id string) string {
		t.Helper()
		return next("result "+id, "tw/rocksaying/result", has(`"id":"`+id+`"`))
	}
	command := func(id, cmd string) {
		mq.Publish("tw/rocksaying/command", []byte(fmt.Sprintf(`{"command":%q,"id":%q}`, cmd, id)))
	}

	status("closed with the eye powered", `"state":"closed"`, `"obstructed":false`, `"auto_close":"off"`)
	command("o1", "open")
	if r := result("o1"); !strings.Contains(r, `"ok":true`) {
		t.Fatalf("open: %s", r)
	}
	status("open", `"state":"open"`, `"openings":1`)

	// A warned remote close: the self-test, then ok at once with the state
	// unchanged and the warning on, then closing, then closed.
	seen = nil
	command("c1", "close")
	if r := result("c1"); !strings.Contains(r, `"ok":true`) || !strings.Contains(r, `"state":"open"`) {
		t.Fatalf("close: %s, want ok with state open (warning first)", r)
	}
	status("closed", `"state":"closed"`)
	var order []string
	for _, st := range seen {
		switch {
		case st.Warning && st.State == gate.Open && !st.Moving:
			order = append(order, "warning")
		case st.State == gate.Closing && !st.Warning:
			order = append(order, "closing")
		case st.State == gate.Closed:
			order = append(order, "closed")
		}
		if st.Obstructed {
			t.Errorf("the self-test showed as an obstruction: %s", st.JSON())
		}
	}
	if got := strings.Join(order, " "); got != "warning closing closed" {
		t.Errorf("a warned close went %q, want %q", got, "warning closing closed")
	}

	// A stuck photo eye: the close is refused with sensor_test, the gate in
	// fault with the alarm.
	command("o2", "open")
	status("open again", `"state":"open"`, `"openings":2`)
	mq.Publish("tw/rocksaying/sim", []byte("eye_stuck"))
	command("c2", "close")
	if r := result("c2"); !strings.Contains(r, `"ok":false`) || !strings.Contains(r, `"error":"sensor_test"`) {
		t.Fatalf("close with a stuck eye: %s, want error sensor_test", r)
	}
	// The fault's status comes before the result: it may have gone by.
	faulted := func(st gate.Status) bool {
		return st.State == gate.Faulted && st.Fault == gate.FaultSensorTest && st.Alarm && st.Faults == 1
	}
	if !slices.ContainsFunc(seen, faulted) {
		status("fault sensor_test", `"state":"fault"`, `"fault":"sensor_test"`, `"alarm":true`, `"faults":1`)
	}
	mq.Publish("tw/rocksaying/sim", []byte("eye_ok"))
	command("s1", "silence")
	result("s1")

	// The counters are kept: in the state file at exit, and in the status
	// after a restart.
	stop()
	b, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"openings": 2`, `"faults": 1`, `"last_fault": "sensor_test"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("state.json after a clean stop: %s\nwant %s", b, want)
		}
	}
	stop, stderr = start()
	status("the counters after a restart", `"openings":2`, `"obstructions":0`, `"faults":1`, `"cause":"startup"`)
}
