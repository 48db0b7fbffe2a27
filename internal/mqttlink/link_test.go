package mqttlink

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"periph.io/x/conn/v3/gpio"

	"rocksaying.tw/gated/internal/config"
	"rocksaying.tw/gated/internal/gate"
	"rocksaying.tw/gated/internal/gate/gatetest"
	"rocksaying.tw/gated/internal/mqttlink/mqtttest"
	"rocksaying.tw/gated/internal/syncbuf"
	"rocksaying.tw/gated/internal/waitfor"
)

func captureLog() (*slog.Logger, *syncbuf.Buffer) {
	b := &syncbuf.Buffer{}
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

// waitLog waits up to 10s for the log to contain s.
func waitLog(t testing.TB, b *syncbuf.Buffer, s string) {
	t.Helper()
	if !waitfor.Until(10*time.Second, func() bool { return strings.Contains(b.String(), s) }) {
		t.Fatalf("log has no %q after 10s:\n%s", s, b.String())
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
	cfg = withDefaults(cfg)
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

// withDefaults fills in what internal/config would give a field the test
// leaves zero.
func withDefaults(cfg Config) Config {
	d := config.Default().MQTT
	if cfg.KeepAlive == 0 {
		cfg.KeepAlive = d.KeepAlive
	}
	if cfg.MaxCommandAge == 0 {
		cfg.MaxCommandAge = d.MaxCommandAge
	}
	if cfg.DiscoveryPrefix == "" {
		cfg.DiscoveryPrefix = d.DiscoveryPrefix
	}
	if cfg.GateName == "" {
		cfg.GateName = config.Default().Gate.Name
	}
	return cfg
}

// waitUp waits up to 10s for the link to be connected.
func waitUp(t testing.TB, l *Link) {
	t.Helper()
	if !waitfor.Until(10*time.Second, l.Connected) {
		t.Fatal("not connected after 10s")
	}
}

// waitDown waits up to 10s for the link to be disconnected.
func waitDown(t testing.TB, l *Link) {
	t.Helper()
	if !waitfor.Until(10*time.Second, func() bool { return !l.Connected() }) {
		t.Fatal("still connected after 10s")
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
		user.Publish(l.t.command, []byte(s.payload))
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

func TestBrokerRestart(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	tg := gatetest.StartUnknown(t)
	l, _ := startLink(t, Config{Broker: b.URL, KeepAlive: 2 * time.Second, Discovery: true}, tg, Options{})
	waitUp(t, l)
	// Kill the broker with nothing in flight: paho's resume of a QoS 1
	// publish still unacknowledged at the loss races its own writer on the
	// packet's DUP flag (eclipse-paho/paho.mqtt.golang#703, open), which
	// -race reports. The retained state on the broker is the last of the
	// link's set-up publications.
	watcher := mqtttest.Connect(t, b.URL)
	next(t, watcher.Subscribe(l.t.state), 5*time.Second, "the state on the broker", func(mqtttest.Msg) bool { return true })

	b.Kill()
	waitDown(t, l)
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
	next(t, user.Subscribe("homeassistant/device/#"), 5*time.Second, "device discovery", func(m mqtttest.Msg) bool { return m.Retained })

	// and it subscribed again.
	results := user.Subscribe(l.t.result)
	user.Publish(l.t.command, []byte("stop"))
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
	l, err := New(withDefaults(Config{Broker: broker, ClientID: "gated-lastwill", TopicPrefix: "test/lastwill", KeepAlive: 2 * time.Second}), tg, Options{Log: quietLog()})
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

	user.Publish("test/clean/command", []byte(`{"command":"open","id":"while-away"}`))
	startLink(t, cfg, tg, Options{})
	next(t, user.Subscribe("test/clean/availability"), 10*time.Second, "online again", payloadIs("online"))
	user.Publish("test/clean/command", []byte(`{"command":"stop","id":"after"}`))
	r := decodeResult(t, next(t, results, 5*time.Second, "result", func(mqtttest.Msg) bool { return true }))
	if r.ID != "after" {
		t.Errorf("first result after reconnecting is for %q, want \"after\": the command sent while away was run", r.ID)
	}
	if o, c := tg.Motors(); o != gpio.Low || c != gpio.Low {
		t.Errorf("motor_open %v motor_close %v, want both low", o, c)
	}
}

var _ Gate = (*gate.Gate)(nil)
