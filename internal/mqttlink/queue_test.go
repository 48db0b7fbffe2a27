package mqttlink

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/jonboulle/clockwork"
	"periph.io/x/conn/v3/gpio"

	"rocksaying.tw/gated/internal/gate"
	"rocksaying.tw/gated/internal/gate/gatetest"
	"rocksaying.tw/gated/internal/mqttlink/mqtttest"
)

func TestBadCommandsNeverMoveTheGate(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	tg := gatetest.Start(t)
	now := time.Now()
	clk := clockwork.NewFakeClockAt(now)
	prefix := "test/bad"

	// A command left retained on the broker reaches the link when it
	// subscribes, flagged retained.
	user := mqtttest.Connect(t, b.URL)
	results := user.Subscribe(prefix + "/result")
	user.PublishRetained(prefix+"/command", []byte(`{"command":"open","id":"old"}`))
	t.Cleanup(func() { user.PublishRetained(prefix+"/command", nil) })

	before := tg.Status()
	l, _ := startLink(t, Config{Broker: b.URL, TopicPrefix: prefix, MaxCommandAge: 10 * time.Second}, tg, Options{Clock: clk})
	r := decodeResult(t, next(t, results, 10*time.Second, "result for the retained command", func(mqtttest.Msg) bool { return true }))
	if want := (result{ID: "old", Command: "open", Error: "retained"}); r.ID != want.ID || r.OK || r.Error != want.Error || r.Message == "" {
		t.Errorf("retained: result %+v, want %+v with a message", r, want)
	}
	// Clearing it is a message too: an empty one, which gets its answer.
	user.PublishRetained(prefix+"/command", nil)
	if r := decodeResult(t, next(t, results, 5*time.Second, "result", func(mqtttest.Msg) bool { return true })); r.OK || r.Error != "malformed" {
		t.Errorf("empty message: result %+v, want ok:false error malformed", r)
	}

	tests := []struct {
		name, payload, wantErr string
	}{
		{"unknown", "fly", "unknown"},
		{"binary", "\x00\x01\x02\xff", "malformed"},
		{"oversize", strings.Repeat("open ", 300), "too_large"},
		{"broken JSON", `{"command":"open"`, "malformed"},
		{"empty", "", "malformed"},
		{"stale", fmt.Sprintf(`{"command":"open","ts":%d}`, now.Add(-time.Minute).Unix()), "stale"},
		{"stale RFC 3339", fmt.Sprintf(`{"command":"open","ts":%q}`, now.Add(-11*time.Second).Format(time.RFC3339)), "stale"},
		{"future", fmt.Sprintf(`{"command":"open","ts":%d}`, now.Add(time.Hour).Unix()), "stale"},
		{"no command", `{"id":"x"}`, "malformed"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			user.Publish(l.t.command, []byte(tt.payload))
			r := decodeResult(t, next(t, results, 5*time.Second, "result", func(mqtttest.Msg) bool { return true }))
			if r.OK || r.Error != tt.wantErr || r.Message == "" {
				t.Errorf("result %+v, want ok:false error %q and a message", r, tt.wantErr)
			}
			if o, c := tg.Motors(); o != gpio.Low || c != gpio.Low {
				t.Errorf("motor_open %v motor_close %v, want both low", o, c)
			}
			_ = i
		})
	}
	if st := tg.Status(); st.Seq != before.Seq || st.State != gate.Closed {
		t.Errorf("gate status changed to %s, want it as before: %s", st.JSON(), before.JSON())
	}
}

// fakeSim records the simulator controls it is given.
type fakeSim struct {
	mu   sync.Mutex
	got  []string
	seen chan string
}

func (s *fakeSim) Control(c string) error {
	s.mu.Lock()
	s.got = append(s.got, c)
	s.mu.Unlock()
	s.seen <- c
	switch c {
	case "obstruct", "clear", "force_open", "jam", "unjam":
		return nil
	}
	return fmt.Errorf("sim: unknown control %q", c)
}

func TestSimTopic(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	tg := gatetest.Start(t)
	sim := &fakeSim{seen: make(chan string, 8)}
	user := mqtttest.Connect(t, b.URL)
	prefix := "test/sim"
	user.PublishRetained(prefix+"/sim", []byte("jam")) // retained: must be ignored
	t.Cleanup(func() { user.PublishRetained(prefix+"/sim", nil) })
	startLink(t, Config{Broker: b.URL, TopicPrefix: prefix}, tg, Options{Sim: sim})
	online(t, user, prefix)
	for _, w := range []string{" Obstruct\n", "bogus", "clear"} {
		user.Publish(prefix+"/sim", []byte(w))
	}
	// Controls are passed on in the order they were published; the
	// retained "jam" never.
	var got []string
	for range 3 {
		select {
		case c := <-sim.seen:
			got = append(got, c)
		case <-time.After(5 * time.Second):
			t.Fatalf("got controls %q in 5s, want 3", got)
		}
	}
	if want := []string{"obstruct", "bogus", "clear"}; !slices.Equal(got, want) {
		t.Errorf("controls %q, want %q in that order (a retained control must be ignored)", got, want)
	}
	select {
	case c := <-sim.seen:
		t.Errorf("a fourth control %q: the retained one must be ignored", c)
	case <-time.After(200 * time.Millisecond):
	}
}

func TestFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("flood: -short")
	}
	const n = 2000
	// mosquitto would drop what it queues beyond 1000 for one client:
	// those messages never reach the link, so nothing could answer them.
	b := mqtttest.Start(t, mqtttest.Options{UnlimitedQueues: true})
	tg := gatetest.Start(t)
	l, _ := startLink(t, Config{Broker: b.URL}, tg, Options{Log: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))})
	user := mqtttest.Connect(t, b.URL)
	results := user.Subscribe(l.t.result)
	online(t, user, l.cfg.TopicPrefix)

	payloads := []string{`{"command":"stop","id":"%d"}`, `{"command":"fly","id":"%d"}`, `{"command":"silence","id":"%d"}`, `{"id":"%d"`}
	toks := make([]mqtt.Token, 0, n)
	for i := range n {
		toks = append(toks, user.PublishAsync(l.t.command, []byte(fmt.Sprintf(payloads[i%len(payloads)], i))))
	}
	for _, tok := range toks {
		if !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
	seen := make(map[string]int, n)
	reasons := map[string]int{}
	deadline := time.After(30 * time.Second)
	for got := 0; got < n; got++ {
		select {
		case m := <-results:
			r := decodeResult(t, m)
			seen[r.ID]++
			if r.OK {
				reasons["ok"]++
			} else {
				reasons[r.Error]++
			}
		case <-deadline:
			t.Fatalf("%d results of %d in 30s: %v", got, n, reasons)
		}
	}
	t.Logf("results: %v", reasons)
	for id, c := range seen {
		if c != 1 && id != "" {
			t.Errorf("id %s: %d results, want 1", id, c)
		}
	}
	if reasons["unknown"] != n/4 {
		t.Errorf("%d unknown, want %d", reasons["unknown"], n/4)
	}
	if o, c := tg.Motors(); o != gpio.Low || c != gpio.Low {
		t.Errorf("motor_open %v motor_close %v after the flood, want both low", o, c)
	}
	if !l.Connected() {
		t.Errorf("link not connected after the flood")
	}
}

func TestGateRefusalReachesTheResult(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	tg := gatetest.Start(t)
	tg.Set(tg.OpenLimit, true) // both limits: a broken switch
	tg.WaitFor("fault", func(st gate.Status) bool { return st.Fault == gate.FaultLimitConflict })
	l, _ := startLink(t, Config{Broker: b.URL}, tg, Options{})
	user := mqtttest.Connect(t, b.URL)
	results := user.Subscribe(l.t.result)
	online(t, user, l.cfg.TopicPrefix)

	user.Publish(l.t.command, []byte(`{"command":"open","id":"f"}`))
	r := decodeResult(t, next(t, results, 5*time.Second, "result", func(mqtttest.Msg) bool { return true }))
	if r.OK || r.ID != "f" || r.Command != "open" || r.Error != "fault" || r.Message == "" {
		t.Errorf("result %+v, want ok:false id f command open error fault and a message", r)
	}
	if o, c := tg.Motors(); o != gpio.Low || c != gpio.Low {
		t.Errorf("motor_open %v motor_close %v, want both low", o, c)
	}
}

// A flood's backlog of results must wait in the result queue, a few dozen
// bytes each, and a paho handler must not block when answering: handlers
// run on paho's router goroutine. (Before, with a handler goroutine per
// message blocked in answer, gatebench's flood of 10 000 commands in a
// second peaked at 93 MiB resident with a queue of 256.)
func TestResultBacklogWaitsInTheQueue(t *testing.T) {
	l, err := New(Config{Broker: "tcp://127.0.0.1:1", ClientID: "gated-" + t.Name()}, gatetest.StartUnknown(t), Options{Log: quietLog()})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	const backlog = 2000 // a fifth of a second of that flood; nothing drains it here
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range backlog {
			l.answer(request{ID: fmt.Sprint(i), Word: "open"}, gate.Status{}, &gate.RefusedError{Reason: gate.ReasonBusy, Msg: "busy"}, noWait)
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		close(l.done) // release the blocked answer
		<-done
		t.Fatalf("answering %d commands with no one draining the results blocked: got %d queued, want %d", backlog, len(l.results), backlog)
	}
	if got := len(l.results); got != backlog {
		t.Errorf("queued results: got %d, want %d", got, backlog)
	}
}

// Commands are carried out in the order they were published: "open" then
// "stop" must leave the gate stopped, never opening. (With a paho handler
// goroutine per message, a burst reached the gate shuffled.)
func TestCommandsRunInPublishedOrder(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	tg := gatetest.StartUnknown(t)
	l, _ := startLink(t, Config{Broker: b.URL}, tg, Options{})
	user := mqtttest.Connect(t, b.URL)
	results := user.Subscribe(l.t.result)
	online(t, user, l.cfg.TopicPrefix)

	const n = 30 // fewer than jobQueue: none is refused as busy
	toks := make([]mqtt.Token, 0, n)
	for i := range n {
		cmd := "open"
		if i%2 == 1 {
			cmd = "stop"
		}
		toks = append(toks, user.PublishAsync(l.t.command, fmt.Appendf(nil, `{"command":%q,"id":"%d"}`, cmd, i)))
	}
	for _, tok := range toks {
		if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
	var ids []string
	for range n {
		r := decodeResult(t, next(t, results, 5*time.Second, "result", func(mqtttest.Msg) bool { return true }))
		ids = append(ids, r.ID)
	}
	for i, id := range ids {
		if id != fmt.Sprint(i) {
			t.Fatalf("results in the order %v, want 0 to %d in order: commands ran out of order", ids, n-1)
		}
	}
	if st := tg.Status(); st.State != gate.Stopped {
		t.Errorf("state %s after a burst ending in stop, want stopped", st.State)
	}
	if o, c := tg.Motors(); o != gpio.Low || c != gpio.Low {
		t.Errorf("motor_open %v motor_close %v after a burst ending in stop, want both low", o, c)
	}
}
