package mqttlink

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/jonboulle/clockwork"
	"periph.io/x/conn/v3/gpio"

	"rocksaying.tw/gated/internal/gate"
	"rocksaying.tw/gated/internal/gate/gatetest"
	"rocksaying.tw/gated/internal/mqttlink/mqtttest"
	"rocksaying.tw/gated/internal/syncbuf"
)

func captureLog() (*slog.Logger, *syncbuf.Buffer) {
	b := &syncbuf.Buffer{}
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

// waitLog waits up to 10s for the log to contain s.
func waitLog(t testing.TB, b *syncbuf.Buffer, s string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(b.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("log has no %q after 10s:\n%s", s, b.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func testLog(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// startLink runs a Link until the test ends (or until stop is called) and
// returns it once it is online.
func startLink(t testing.TB, cfg Config, g Gate, opt Options) (l *Link, stop func() error) {
	t.Helper()
	return startLinkWith(t, cfg, g, opt, nil)
}

// startLinkWith is startLink with the link's paho client replaced by
// wrap's (nil: kept) before it runs.
func startLinkWith(t testing.TB, cfg Config, g Gate, opt Options, wrap func(*Link) mqtt.Client) (l *Link, stop func() error) {
	t.Helper()
	if cfg.ClientID == "" {
		cfg.ClientID = "gated-test-" + strings.ReplaceAll(t.Name(), "/", "-")
	}
	if cfg.TopicPrefix == "" {
		cfg.TopicPrefix = "test/" + strings.ReplaceAll(t.Name(), "/", "-")
	}
	if opt.Log == nil {
		opt.Log = testLog(t)
	}
	l, err := New(cfg, g, opt)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if wrap != nil {
		l.client = wrap(l)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(10 * time.Second):
				t.Errorf("Run did not return 10s after its context ended")
			}
		})
		return runErr
	}
	t.Cleanup(func() { stop() })
	return l, stop
}

func waitConnected(t testing.TB, l *Link, want bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for l.Connected() != want {
		if time.Now().After(deadline) {
			t.Fatalf("Connected() is %v after 10s, want %v", !want, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// next returns the next message that satisfies ok, waiting up to d.
func next(t testing.TB, ch <-chan mqtttest.Msg, d time.Duration, what string, ok func(mqtttest.Msg) bool) mqtttest.Msg {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case m := <-ch:
			if ok(m) {
				return m
			}
		case <-timeout:
			t.Fatalf("no %s in %s", what, d)
			return mqtttest.Msg{}
		}
	}
}

func payloadIs(p string) func(mqtttest.Msg) bool {
	return func(m mqtttest.Msg) bool { return m.Payload == p }
}

func decodeResult(t testing.TB, m mqtttest.Msg) result {
	t.Helper()
	var r result
	if err := json.Unmarshal([]byte(m.Payload), &r); err != nil {
		t.Fatalf("result %q: %v", m.Payload, err)
	}
	if m.Retained {
		t.Errorf("result %q is retained, want not retained", m.Payload)
	}
	return r
}

// online waits for the link's retained "online".
func online(t testing.TB, c *mqtttest.Client, prefix string) {
	t.Helper()
	next(t, c.Subscribe(prefix+"/availability"), 10*time.Second, "online", payloadIs("online"))
}

func TestOpenCloseThroughCommandTopic(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	tg := gatetest.StartUnknown(t)
	cfg := Config{Broker: b.URL}
	l, _ := startLink(t, cfg, tg, Options{})
	user := mqtttest.Connect(t, b.URL)
	results := user.Subscribe(l.t.result)
	online(t, user, l.cfg.TopicPrefix)

	steps := []struct {
		payload             string
		wantID, wantCommand string
		wantState           gate.State
		wantOpen, wantClose gpio.Level
	}{
		{"open", "", "open", gate.Opening, gpio.High, gpio.Low},
		{`{"command":"CLOSE","id":"c-1","ts":` + fmt.Sprint(time.Now().Unix()) + `}`, "c-1", "close", gate.Closing, gpio.Low, gpio.High},
		{" Stop\n", "", "stop", gate.Stopped, gpio.Low, gpio.Low},
	}
	for _, s := range steps {
		user.Publish(l.t.command, []byte(s.payload), false)
		r := decodeResult(t, next(t, results, 5*time.Second, "result", func(mqtttest.Msg) bool { return true }))
		want := result{ID: s.wantID, Command: s.wantCommand, OK: true, State: s.wantState}
		if r != want {
			t.Errorf("%q: result %+v, want %+v", s.payload, r, want)
		}
		if o, c := tg.Motors(); o != s.wantOpen || c != s.wantClose {
			t.Errorf("%q: motor_open %v motor_close %v, want %v %v", s.payload, o, c, s.wantOpen, s.wantClose)
		}
		if st := tg.Status(); st.State != s.wantState || st.Cause != gate.CauseMQTT {
			t.Errorf("%q: gate state %s cause %s, want %s mqtt", s.payload, st.State, st.Cause, s.wantState)
		}
	}
}

func TestRetainedStatusForLateSubscriber(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	tg := gatetest.Start(t)
	l, _ := startLink(t, Config{Broker: b.URL}, tg, Options{})
	user := mqtttest.Connect(t, b.URL)
	online(t, user, l.cfg.TopicPrefix)
	statuses := user.Subscribe(l.t.status)
	if _, err := tg.Do(context.Background(), gate.CmdOpen, gate.CauseDBus); err != nil {
		t.Fatalf("open: %v", err)
	}
	want := tg.WaitFor("opening", func(st gate.Status) bool { return st.State == gate.Opening })
	// Only once the broker has it is the status retained for a later
	// subscriber; before that, a subscriber would get it live.
	next(t, statuses, 5*time.Second, "status with seq "+fmt.Sprint(want.Seq), func(m mqtttest.Msg) bool {
		var st gate.Status
		return json.Unmarshal([]byte(m.Payload), &st) == nil && st.Seq == want.Seq
	})

	// A subscriber that comes later sees the latest status, retained.
	late := mqtttest.Connect(t, b.URL)
	m := next(t, late.Subscribe(l.t.status), 5*time.Second, "status with seq "+fmt.Sprint(want.Seq), func(m mqtttest.Msg) bool {
		var st gate.Status
		return json.Unmarshal([]byte(m.Payload), &st) == nil && st.Seq == want.Seq
	})
	if !m.Retained {
		t.Errorf("status not retained")
	}
	if m.Payload != string(want.JSON()) {
		t.Errorf("status %s, want %s", m.Payload, want.JSON())
	}
	late2 := mqtttest.Connect(t, b.URL)
	s := next(t, late2.Subscribe(l.t.state), 5*time.Second, "state", func(mqtttest.Msg) bool { return true })
	if s.Payload != "opening" || !s.Retained {
		t.Errorf("state %q retained %v, want \"opening\" retained", s.Payload, s.Retained)
	}
}

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
	user.Publish(prefix+"/command", []byte(`{"command":"open","id":"old"}`), true)
	t.Cleanup(func() { user.Publish(prefix+"/command", nil, true) })

	before := tg.Status()
	l, _ := startLink(t, Config{Broker: b.URL, TopicPrefix: prefix, MaxCommandAge: 10 * time.Second}, tg, Options{Clock: clk})
	r := decodeResult(t, next(t, results, 10*time.Second, "result for the retained command", func(mqtttest.Msg) bool { return true }))
	if want := (result{ID: "old", Command: "open", Error: "retained"}); r.ID != want.ID || r.OK || r.Error != want.Error || r.Message == "" {
		t.Errorf("retained: result %+v, want %+v with a message", r, want)
	}
	// Clearing it is a message too: an empty one, which gets its answer.
	user.Publish(prefix+"/command", nil, true)
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
			user.Publish(l.t.command, []byte(tt.payload), false)
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

func TestBrokerRestart(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	tg := gatetest.StartUnknown(t)
	l, _ := startLink(t, Config{Broker: b.URL, KeepAlive: 2 * time.Second, Discovery: true}, tg, Options{})
	waitConnected(t, l, true)

	b.Kill()
	waitConnected(t, l, false)
	// The gate does not wait for MQTT while the broker is away.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := tg.Do(ctx, gate.CmdOpen, gate.CauseDBus); err != nil {
		t.Fatalf("open with the broker down: %v", err)
	}
	want := tg.WaitFor("opening", func(st gate.Status) bool { return st.State == gate.Opening })
	b.Restart()

	// Nothing was persisted: what the new broker holds, the link published
	// again by itself.
	user := mqtttest.Connect(t, b.URL)
	online(t, user, l.cfg.TopicPrefix)
	next(t, user.Subscribe(l.t.state), 5*time.Second, "state opening", payloadIs("opening"))
	next(t, user.Subscribe(l.t.status), 5*time.Second, "latest status", payloadIs(string(want.JSON())))
	next(t, user.Subscribe("homeassistant/cover/#"), 5*time.Second, "cover discovery", func(m mqtttest.Msg) bool { return m.Retained })

	// and it subscribed again.
	results := user.Subscribe(l.t.result)
	user.Publish(l.t.command, []byte("stop"), false)
	r := decodeResult(t, next(t, results, 5*time.Second, "result", func(mqtttest.Msg) bool { return true }))
	if !r.OK || r.State != gate.Stopped {
		t.Errorf("after restart: result %+v, want ok, stopped", r)
	}
}

// TestHelperProcess is not a test: TestLastWill runs the test binary again
// with GATED_MQTT_HELPER set, to run a Link in a process it can kill -9.
func TestHelperProcess(t *testing.T) {
	broker := os.Getenv("GATED_MQTT_HELPER")
	if broker == "" {
		t.Skip("helper process for TestLastWill")
	}
	tg := gatetest.Start(t)
	l, err := New(Config{Broker: broker, ClientID: "gated-lastwill", TopicPrefix: "test/lastwill", KeepAlive: 2 * time.Second}, tg, Options{Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	// Killed long before this, unless the parent died.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l.Run(ctx)
}

// TestLastWill runs a Link in a child process and ends it without a clean
// exit: killed (the kernel closes its socket) or frozen (only the keepalive
// can tell), and expects the Last Will "offline" in time.
func TestLastWill(t *testing.T) {
	const keepAlive = 2 * time.Second // TestHelperProcess's
	tests := []struct {
		name   string
		signal syscall.Signal
		within time.Duration
	}{
		// The broker sees the socket close at once.
		{"kill -9", syscall.SIGKILL, keepAlive * 3 / 2},
		// The broker gives up 1.5 keepalives after the last packet it
		// received, but mosquitto 2.0 looks only every 5s (keepalive.c;
		// 5.8-5.9s seen with 2.0.11). A default 30s keepalive would take
		// 45s: this shows the configured one reached the broker.
		{"frozen", syscall.SIGSTOP, keepAlive*3/2 + 6*time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := mqtttest.Start(t, mqtttest.Options{})
			user := mqtttest.Connect(t, b.URL)
			avail := user.Subscribe("test/lastwill/availability")

			cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
			cmd.Env = append(os.Environ(), "GATED_MQTT_HELPER="+b.URL)
			var out syncbuf.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan struct{})
			go func() { cmd.Wait(); close(exited) }()
			t.Cleanup(func() {
				cmd.Process.Kill() // a stopped process dies of SIGKILL too
				<-exited
				if t.Failed() {
					t.Logf("helper output:\n%s", out.String())
				}
			})

			next(t, avail, 10*time.Second, "online from the helper", payloadIs("online"))
			if err := cmd.Process.Signal(tt.signal); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			next(t, avail, tt.within, "offline (the Last Will)", payloadIs("offline"))
			t.Logf("Last Will arrived %s after %s", time.Since(start).Round(time.Millisecond), tt.signal)
			late := mqtttest.Connect(t, b.URL)
			if m := next(t, late.Subscribe("test/lastwill/availability"), 5*time.Second, "availability", func(mqtttest.Msg) bool { return true }); m.Payload != "offline" || !m.Retained {
				t.Errorf("availability %q retained %v, want \"offline\" retained", m.Payload, m.Retained)
			}
		})
	}
}

func TestCleanExitPublishesOffline(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	tg := gatetest.Start(t)
	l, stop := startLink(t, Config{Broker: b.URL}, tg, Options{})
	user := mqtttest.Connect(t, b.URL)
	avail := user.Subscribe(l.t.availability)
	next(t, avail, 10*time.Second, "online", payloadIs("online"))

	start := time.Now()
	if err := stop(); err != nil {
		t.Errorf("Run: %v, want nil", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Run took %s to return after its context ended, want under 3s", d)
	}
	next(t, avail, 5*time.Second, "offline", payloadIs("offline"))
	if l.Connected() {
		t.Errorf("Connected() true after Run returned")
	}
	late := mqtttest.Connect(t, b.URL)
	if m := next(t, late.Subscribe(l.t.availability), 5*time.Second, "availability", func(mqtttest.Msg) bool { return true }); m.Payload != "offline" || !m.Retained {
		t.Errorf("availability %q retained %v, want \"offline\" retained", m.Payload, m.Retained)
	}
}

func TestRunWithoutBrokerReturnsPromptly(t *testing.T) {
	tg := gatetest.Start(t)
	addr := fmt.Sprintf("tcp://127.0.0.1:%d", mqtttest.FreePort(t)) // nothing listens
	log, logs := captureLog()
	l, stop := startLink(t, Config{Broker: addr}, tg, Options{Log: log})
	waitLog(t, logs, "cannot connect, retrying")
	if l.Connected() {
		t.Fatalf("Connected() with no broker")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := tg.Do(ctx, gate.CmdOpen, gate.CauseDBus); err != nil {
		t.Errorf("gate blocked with no broker: %v", err)
	}
	start := time.Now()
	stop()
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Run took %s to return, want under 3s", d)
	}
}

func TestTLSWithClientCertificateAndPassword(t *testing.T) {
	const password = "s3cret-Pa55"
	b := mqtttest.Start(t, mqtttest.Options{TLS: true, Users: map[string]string{"gated": password, "watcher": "w"}})
	tg := gatetest.Start(t)
	log, logs := captureLog()

	watcher := mqtttest.Connect(t, b.URL, func(o *mqtt.ClientOptions) { o.SetUsername("watcher").SetPassword("w") })
	prefix := "test/tls"
	avail := watcher.Subscribe(prefix + "/availability")
	results := watcher.Subscribe(prefix + "/result")

	t.Run("wrong password", func(t *testing.T) {
		l, stop := startLink(t, Config{Broker: b.TLSURL, ClientID: "gated-tls-bad", TopicPrefix: "test/tls-bad", Username: "gated", Password: "wrong-" + password,
			CAFile: b.CAFile, CertFile: b.CertFile, KeyFile: b.KeyFile}, tg, Options{Log: log})
		waitLog(t, logs, "not Authorized")
		if l.Connected() {
			t.Errorf("connected with a wrong password")
		}
		stop()
	})

	url := strings.Replace(b.TLSURL, "ssl://", "mqtts://", 1) // the spelling users write
	l, _ := startLink(t, Config{Broker: url, ClientID: "gated-tls", TopicPrefix: prefix, Username: "gated", Password: password,
		CAFile: b.CAFile, CertFile: b.CertFile, KeyFile: b.KeyFile}, tg, Options{Log: log})
	next(t, avail, 10*time.Second, "online over TLS", payloadIs("online"))
	if !l.Connected() {
		t.Errorf("Connected() false while online")
	}
	watcher.Publish(prefix+"/command", []byte("alarm"), false)
	if r := decodeResult(t, next(t, results, 5*time.Second, "result", func(mqtttest.Msg) bool { return true })); !r.OK {
		t.Errorf("alarm over TLS: %+v", r)
	}
	if strings.Contains(logs.String(), password) {
		t.Errorf("the password appears in the log:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "connect") {
		t.Errorf("the log says nothing of connecting:\n%s", logs.String())
	}
}

func TestDiscoveryDocuments(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	tg := gatetest.Start(t)
	l, _ := startLink(t, Config{Broker: b.URL, ClientID: "gated-pi.4", Discovery: true, DiscoveryPrefix: "ha", GateName: "Front gate"}, tg, Options{Version: "1.2.3"})
	p := l.cfg.TopicPrefix
	// The documents go out before "online"; subscribing afterwards shows
	// they are retained.
	user := mqtttest.Connect(t, b.URL)
	online(t, user, p)
	docs := user.Subscribe("ha/#")

	avail := map[string]any{"availability_topic": p + "/availability", "payload_available": "online", "payload_not_available": "offline"}
	device := map[string]any{"identifiers": []any{"gated-pi_4"}, "name": "Front gate", "manufacturer": "rocksaying.tw", "model": "gated", "sw_version": "1.2.3"}
	want := map[string]map[string]any{
		"ha/cover/gated-pi_4/gate/config": {
			"device_class": "gate", "unique_id": "gated-pi_4_gate", "command_topic": p + "/command", "state_topic": p + "/state",
			"payload_open": "open", "payload_close": "close", "payload_stop": "stop",
			"state_open": "open", "state_opening": "opening", "state_closed": "closed", "state_closing": "closing", "state_stopped": "stopped",
		},
		"ha/siren/gated-pi_4/alarm/config": {
			"unique_id": "gated-pi_4_alarm", "command_topic": p + "/command", "payload_on": "alarm", "payload_off": "silence",
			"state_topic": p + "/status", "state_value_template": "{{ 'ON' if value_json.alarm else 'OFF' }}", "state_on": "ON", "state_off": "OFF",
		},
		"ha/binary_sensor/gated-pi_4/obstruction/config": {
			"unique_id": "gated-pi_4_obstruction", "state_topic": p + "/status", "payload_on": "ON", "payload_off": "OFF",
		},
	}
	for range len(want) {
		m := next(t, docs, 10*time.Second, "discovery document", func(mqtttest.Msg) bool { return true })
		fields, ok := want[m.Topic]
		if !ok {
			t.Errorf("unexpected discovery topic %s", m.Topic)
			continue
		}
		if !m.Retained {
			t.Errorf("%s: not retained", m.Topic)
		}
		var doc map[string]any
		if err := json.Unmarshal([]byte(m.Payload), &doc); err != nil {
			t.Errorf("%s: %v", m.Topic, err)
			continue
		}
		for k, v := range avail {
			fields[k] = v
		}
		fields["device"] = device
		for k, v := range fields {
			if got, _ := json.Marshal(doc[k]); string(got) != mustJSON(v) {
				t.Errorf("%s: %s = %s, want %s", m.Topic, k, got, mustJSON(v))
			}
		}
		delete(want, m.Topic)
	}
	for topic := range want {
		t.Errorf("no discovery document on %s", topic)
	}
}

func mustJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

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
	user.Publish(prefix+"/sim", []byte("jam"), true) // retained: must be ignored
	t.Cleanup(func() { user.Publish(prefix+"/sim", nil, true) })
	startLink(t, Config{Broker: b.URL, TopicPrefix: prefix}, tg, Options{Sim: sim})
	online(t, user, prefix)
	for _, w := range []string{" Obstruct\n", "bogus", "clear"} {
		user.Publish(prefix+"/sim", []byte(w), false)
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

	user.Publish(l.t.command, []byte(`{"command":"open","id":"f"}`), false)
	r := decodeResult(t, next(t, results, 5*time.Second, "result", func(mqtttest.Msg) bool { return true }))
	if r.OK || r.ID != "f" || r.Command != "open" || r.Error != "fault" || r.Message == "" {
		t.Errorf("result %+v, want ok:false id f command open error fault and a message", r)
	}
	if o, c := tg.Motors(); o != gpio.Low || c != gpio.Low {
		t.Errorf("motor_open %v motor_close %v, want both low", o, c)
	}
}

func TestThrottle(t *testing.T) {
	clk := clockwork.NewFakeClock()
	log, logs := captureLog()
	th := throttle{clk: clk}
	count := func() int { return strings.Count(logs.String(), "cannot connect") }
	for range 5 {
		th.log(log, "cannot connect", "err", "refused")
	}
	if n := count(); n != 1 {
		t.Fatalf("%d lines for 5 repeats within a minute, want 1", n)
	}
	clk.Advance(throttleEvery)
	th.log(log, "cannot connect", "err", "refused")
	if n := count(); n != 2 || !strings.Contains(logs.String(), "suppressed=4") {
		t.Errorf("after a minute: %d lines, want 2 with suppressed=4:\n%s", n, logs.String())
	}
	th.reset()
	th.log(log, "cannot connect", "err", "refused")
	if n := count(); n != 3 {
		t.Errorf("after reset: %d lines, want 3", n)
	}
}

// TestCleanSession: a command sent while gated was away is never run when
// it comes back (SPEC.md: clean session).
func TestCleanSession(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	tg := gatetest.StartUnknown(t)
	cfg := Config{Broker: b.URL, ClientID: "gated-clean", TopicPrefix: "test/clean"}
	user := mqtttest.Connect(t, b.URL)
	results := user.Subscribe("test/clean/result")
	_, stop := startLink(t, cfg, tg, Options{})
	online(t, user, "test/clean")
	stop()

	user.Publish("test/clean/command", []byte(`{"command":"open","id":"while-away"}`), false)
	startLink(t, cfg, tg, Options{})
	next(t, user.Subscribe("test/clean/availability"), 10*time.Second, "online again", payloadIs("online"))
	user.Publish("test/clean/command", []byte(`{"command":"stop","id":"after"}`), false)
	r := decodeResult(t, next(t, results, 5*time.Second, "result", func(mqtttest.Msg) bool { return true }))
	if r.ID != "after" {
		t.Errorf("first result after reconnecting is for %q, want \"after\": the command sent while away was run", r.ID)
	}
	if o, c := tg.Motors(); o != gpio.Low || c != gpio.Low {
		t.Errorf("motor_open %v motor_close %v, want both low", o, c)
	}
}

// heldClient is a paho client whose result publications get no PUBACK (as
// the link sees it) until release is closed: a broker slow to acknowledge.
type heldClient struct {
	mqtt.Client
	topic   string
	release chan struct{}
}

func (c *heldClient) Publish(topic string, qos byte, retained bool, payload any) mqtt.Token {
	tok := c.Client.Publish(topic, qos, retained, payload)
	if topic != c.topic {
		return tok
	}
	return heldToken{release: c.release}
}

type heldToken struct{ release chan struct{} }

func (t heldToken) Wait() bool { <-t.release; return true }
func (t heldToken) WaitTimeout(d time.Duration) bool {
	select {
	case <-t.release:
		return true
	case <-time.After(d):
		return false
	}
}
func (t heldToken) Done() <-chan struct{} { return t.release }
func (t heldToken) Error() error          { return nil }

// Results must not wait for each other's PUBACK: one round trip per result
// is fewer results a second than a flood brings, and the commands' handlers
// then pile up waiting for room (gatebench: 10 000 commands in a second left
// 3 000 goroutines blocked, 90 MiB resident, and most results dropped).
func TestResultsDoNotWaitForEachPUBACK(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	tg := gatetest.Start(t)
	var held *heldClient
	l, _ := startLinkWith(t, Config{Broker: b.URL}, tg, Options{}, func(l *Link) mqtt.Client {
		held = &heldClient{Client: l.client, topic: l.t.result, release: make(chan struct{})}
		return held
	})
	prefix := l.cfg.TopicPrefix
	t.Cleanup(func() { close(held.release) }) // before the link stops
	user := mqtttest.Connect(t, b.URL)
	results := user.Subscribe(l.t.result)
	online(t, user, prefix)

	const n = 10 // well within ackWindow
	for i := range n {
		user.Publish(l.t.command, []byte(fmt.Sprintf(`{"command":"stop","id":"%d"}`, i)), false)
	}
	// Waiting for each PUBACK in turn, the second result would wait 5 s
	// (publishTimeout) for the first one's.
	seen := map[string]bool{}
	deadline := time.After(4 * time.Second)
	for len(seen) < n {
		select {
		case m := <-results:
			seen[decodeResult(t, m).ID] = true
		case <-deadline:
			t.Fatalf("%d results of %d in 4s while no PUBACK was seen: results wait for each other", len(seen), n)
		}
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
			l.answer(request{ID: fmt.Sprint(i), Word: "open"}, gate.Status{}, &gate.RefusedError{Reason: gate.ReasonBusy, Msg: "busy"}, false)
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

// A result goes out after the status it reports, so a client that gets
// "ok, opening" and then looks at the status topic never sees the state
// from before the command.
func TestResultFollowsItsStatus(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	tg := gatetest.StartUnknown(t)
	l, _ := startLink(t, Config{Broker: b.URL}, tg, Options{})
	user := mqtttest.Connect(t, b.URL)
	// One subscription: the broker forwards the link's publications to it
	// in the order the link made them.
	all := user.Subscribe(l.cfg.TopicPrefix + "/+")
	next(t, all, 10*time.Second, "online", func(m mqtttest.Msg) bool { return m.Topic == l.t.availability && m.Payload == "online" })

	var last gate.Status
	for i := range 20 {
		cmd, want := "open", gate.Opening
		if i%2 == 1 {
			cmd, want = "stop", gate.Stopped
		}
		user.Publish(l.t.command, fmt.Appendf(nil, `{"command":%q,"id":"%d"}`, cmd, i), false)
		for {
			m := next(t, all, 5*time.Second, "result "+fmt.Sprint(i), func(m mqtttest.Msg) bool { return m.Topic == l.t.status || m.Topic == l.t.result })
			if m.Topic == l.t.status {
				if err := json.Unmarshal([]byte(m.Payload), &last); err != nil {
					t.Fatalf("status %q: %v", m.Payload, err)
				}
				continue
			}
			r := decodeResult(t, m)
			if !r.OK || r.State != want {
				t.Fatalf("result %+v, want ok %s", r, want)
			}
			if last.State != r.State {
				t.Fatalf("command %d: result %q arrived while the latest status was %q: the result overtook its status", i, r.State, last.State)
			}
			break
		}
	}
}

// blockingClient holds the first status publication after arm until
// release: a publisher busy while the gate moves on.
type blockingClient struct {
	mqtt.Client
	topic   string
	armed   atomic.Bool
	blocked chan struct{} // receives when a publication is held
	release chan struct{}
}

func (c *blockingClient) Publish(topic string, qos byte, retained bool, payload any) mqtt.Token {
	if topic == c.topic && c.armed.CompareAndSwap(true, false) {
		c.blocked <- struct{}{}
		<-c.release
	}
	return c.Client.Publish(topic, qos, retained, payload)
}

// While the publisher is busy, the gate moves on: a result and the status
// it reports then wait side by side, and the status must still go first.
func TestResultFollowsItsStatusWhenPublisherIsBusy(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	tg := gatetest.StartUnknown(t)
	var bc *blockingClient
	l, _ := startLinkWith(t, Config{Broker: b.URL}, tg, Options{}, func(l *Link) mqtt.Client {
		bc = &blockingClient{Client: l.client, topic: l.t.status, blocked: make(chan struct{}), release: make(chan struct{})}
		return bc
	})
	user := mqtttest.Connect(t, b.URL)
	all := user.Subscribe(l.cfg.TopicPrefix + "/+")
	next(t, all, 10*time.Second, "online", func(m mqtttest.Msg) bool { return m.Topic == l.t.availability && m.Payload == "online" })

	statusSeq := func(m mqtttest.Msg) uint64 {
		var st gate.Status
		if err := json.Unmarshal([]byte(m.Payload), &st); err != nil {
			t.Fatalf("status %q: %v", m.Payload, err)
		}
		return st.Seq
	}
	// Start with the publisher idle: the gate's status is out.
	seq0 := tg.Status().Seq
	next(t, all, 5*time.Second, "the first status", func(m mqtttest.Msg) bool { return m.Topic == l.t.status && statusSeq(m) == seq0 })
	for round := range 10 {
		seq0 := tg.Status().Seq
		bc.armed.Store(true)
		user.Publish(l.t.command, []byte(`{"command":"open","id":"open"}`), false)
		<-bc.blocked // the publisher holds a status
		user.Publish(l.t.command, []byte(`{"command":"stop","id":"stop"}`), false)
		deadline := time.Now().Add(5 * time.Second)
		for len(l.results) < 2 {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: %d results queued after 5s, want 2", round, len(l.results))
			}
			time.Sleep(time.Millisecond)
		}
		bc.release <- struct{}{}
		// open makes status seq0+1 (opening), stop seq0+2 (stopped); the
		// publisher may skip opening for the newer stopped.
		reports := map[string]uint64{"open": seq0 + 1, "stop": seq0 + 2}
		var shown uint64
		for got := 0; got < 2; {
			m := next(t, all, 5*time.Second, "results", func(m mqtttest.Msg) bool { return m.Topic == l.t.status || m.Topic == l.t.result })
			if m.Topic == l.t.status {
				shown = max(shown, statusSeq(m))
				continue
			}
			got++
			if r := decodeResult(t, m); shown < reports[r.ID] {
				t.Fatalf("round %d: result %s (%s) arrived when the newest status was seq %d, want %d or newer: the result overtook its status", round, r.ID, r.State, shown, reports[r.ID])
			}
		}
	}
}
