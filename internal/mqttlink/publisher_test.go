package mqttlink

import (
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"rocksaying.tw/gated/internal/gate"
	"rocksaying.tw/gated/internal/gate/gatetest"
	"rocksaying.tw/gated/internal/mqttlink/mqtttest"
)

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
		user.Publish(l.t.command, []byte(fmt.Sprintf(`{"command":"stop","id":"%d"}`, i)))
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
		user.Publish(l.t.command, fmt.Appendf(nil, `{"command":%q,"id":"%d"}`, cmd, i))
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
		user.Publish(l.t.command, []byte(`{"command":"open","id":"open"}`))
		<-bc.blocked // the publisher holds a status
		user.Publish(l.t.command, []byte(`{"command":"stop","id":"stop"}`))
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
