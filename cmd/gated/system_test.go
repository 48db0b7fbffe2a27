package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"rocksaying.tw/gated/internal/dbuslink/dbustest"
	"rocksaying.tw/gated/internal/gate"
	"rocksaying.tw/gated/internal/mqttlink/mqtttest"
	"rocksaying.tw/gated/internal/syncbuf"
)

// TestWholeSystem runs gated as it runs on a Pi, with a simulated gate, a
// real mosquitto and a real dbus-daemon, and drives it from both sides.
func TestWholeSystem(t *testing.T) {
	broker := mqtttest.Start(t, mqtttest.Options{})
	bus := dbustest.Start(t)
	cfg := writeConfig(t, fmt.Sprintf(`
[gate]
name = "it"
travel_timeout = "5s"
[gpio]
driver = "sim"
debounce = "5ms"
[sim]
travel_time = "300ms"
[mqtt]
broker = %q
client_id = "gated-it"
keepalive = "2s"
[dbus]
bus = %q
`, broker.URL, bus.Address))

	mq := mqtttest.Connect(t, broker.URL)
	msgs := mq.Subscribe("tw/rocksaying/#")
	conn, err := dbus.Connect(bus.Address)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.AddMatchSignal(dbus.WithMatchInterface("tw.rocksaying.Gate"), dbus.WithMatchMember("StatusChanged")); err != nil {
		t.Fatal(err)
	}
	sigs := make(chan *dbus.Signal, 100)
	conn.Signal(sigs)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr syncbuf.Buffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"-config", cfg}, &stderr, &stderr) }()

	// MQTT statuses by seq, to compare with D-Bus's bytes.
	byseq := map[uint64]string{}
	waitMQTT := func(what string, ok func(m mqtttest.Msg) bool) mqtttest.Msg {
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
					byseq[st.Seq] = m.Payload
				}
				if ok(m) {
					return m
				}
			case <-deadline:
				t.Fatalf("no %s on MQTT within 10s; gated said:\n%s", what, stderr.String())
			}
		}
	}
	state := func(s gate.State) func(mqtttest.Msg) bool {
		return func(m mqtttest.Msg) bool { return m.Topic == "tw/rocksaying/state" && m.Payload == string(s) }
	}
	waitMQTT("online", func(m mqtttest.Msg) bool { return m.Topic == "tw/rocksaying/availability" && m.Payload == "online" })
	waitMQTT("closed", state(gate.Closed))

	// MQTT command: opens, and D-Bus sees the same documents.
	mq.Publish("tw/rocksaying/command", []byte("OPEN"))
	res := waitMQTT("result", func(m mqtttest.Msg) bool { return m.Topic == "tw/rocksaying/result" })
	if !strings.Contains(res.Payload, `"ok":true`) {
		t.Errorf("result of OPEN: %s", res.Payload)
	}
	waitMQTT("open", state(gate.Open))
	var last gate.Status
	for last.State != gate.Open {
		select {
		case s := <-sigs:
			doc := s.Body[0].(string)
			if err := json.Unmarshal([]byte(doc), &last); err != nil {
				t.Fatal(err)
			}
			if want, ok := byseq[last.Seq]; ok && want != doc {
				t.Errorf("seq %d: D-Bus sent %s, MQTT %s", last.Seq, doc, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no StatusChanged to open on D-Bus")
		}
	}

	// An obstruction: D-Bus Close is refused with a typed error, no motion.
	obj := conn.Object("tw.rocksaying.Gate", "/tw/rocksaying/Gate")
	mq.Publish("tw/rocksaying/sim", []byte("obstruct"))
	waitMQTT("obstructed", func(m mqtttest.Msg) bool {
		return m.Topic == "tw/rocksaying/status" && strings.Contains(m.Payload, `"obstructed":true`)
	})
	err = obj.Call("tw.rocksaying.Gate.Close", 0).Err
	var de dbus.Error
	if e, ok := err.(dbus.Error); ok {
		de = e
	}
	if de.Name != "tw.rocksaying.Gate.Error.Obstructed" {
		t.Errorf("Close while obstructed: got %v, want tw.rocksaying.Gate.Error.Obstructed", err)
	}
	mq.Publish("tw/rocksaying/sim", []byte("clear"))
	waitMQTT("clear", func(m mqtttest.Msg) bool {
		return m.Topic == "tw/rocksaying/status" && strings.Contains(m.Payload, `"obstructed":false`)
	})
	if err := obj.Call("tw.rocksaying.Gate.Close", 0).Err; err != nil {
		t.Fatalf("Close: %v", err)
	}
	waitMQTT("closing", state(gate.Closing))
	waitMQTT("closed", state(gate.Closed))

	// A second gated on the same bus exits 1 and the first keeps serving.
	second := writeConfig(t, fmt.Sprintf("[gpio]\ndriver = \"sim\"\n[mqtt]\nbroker = \"\"\n[dbus]\nbus = %q\n", bus.Address))
	code, _, errOut := runGated(context.Background(), "-config", second)
	if code != 1 || !strings.Contains(errOut+stderr.String(), "already owned") {
		t.Errorf("second gated: exit %d, want 1 with 'already owned'; it said:\n%s", code, errOut)
	}
	var doc string
	if err := obj.Call("tw.rocksaying.Gate.GetStatus", 0).Store(&doc); err != nil || !strings.Contains(doc, `"state":"closed"`) {
		t.Errorf("first gated after the second: GetStatus = %q, %v", doc, err)
	}

	// A clean stop: offline on MQTT, exit 0.
	cancel()
	waitMQTT("offline", func(m mqtttest.Msg) bool { return m.Topic == "tw/rocksaying/availability" && m.Payload == "offline" })
	waitCleanStop(t, done, &stderr)
}
