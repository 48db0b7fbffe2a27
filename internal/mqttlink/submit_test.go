package mqttlink

import (
	"context"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"rocksaying.tw/gated/internal/gate"
	"rocksaying.tw/gated/internal/gate/gatetest"
)

// msg is a command message as paho hands it to a handler.
type msg struct {
	mqtt.Message
	payload string
}

func (m msg) Payload() []byte { return []byte(m.payload) }
func (m msg) Retained() bool  { return false }

// orderGate is a running gate that notes the order in which commands reach
// it, by Submit or by Do. While busy, Submit says the gate has no room; Do
// waits for release before it hands its command on.
type orderGate struct {
	*gatetest.Gate
	mu      sync.Mutex
	busy    bool
	order   []gate.Command
	inDo    chan struct{}
	release chan struct{}
}

func (g *orderGate) note(c gate.Command) { g.mu.Lock(); g.order = append(g.order, c); g.mu.Unlock() }

func (g *orderGate) Submit(cmd gate.Command, cause gate.Cause) (*gate.Pending, bool) {
	g.mu.Lock()
	busy := g.busy
	g.mu.Unlock()
	if busy {
		return nil, false
	}
	g.note(cmd)
	return g.Gate.Submit(cmd, cause)
}

func (g *orderGate) Do(ctx context.Context, cmd gate.Command, cause gate.Cause) (gate.Status, error) {
	g.inDo <- struct{}{}
	<-g.release
	g.note(cmd)
	return g.Gate.Do(ctx, cmd, cause)
}

func newTestLink(t *testing.T, g Gate) *Link {
	t.Helper()
	l, err := New(withDefaults(Config{Broker: "tcp://127.0.0.1:1", ClientID: "t", TopicPrefix: "t"}), g, Options{Log: testLog(t)})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return l
}

// nextResult is the next result the link queued for the publisher.
func nextResult(t *testing.T, l *Link) result {
	t.Helper()
	select {
	case r := <-l.results:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no result in 10s")
		return result{}
	}
}

// The handler hands a command to the gate itself: the gate carries it out
// though no worker runs to take it from the queue. The worker only answers.
func TestHandlerHandsCommandToTheGate(t *testing.T) {
	tg := gatetest.StartUnknown(t)
	l := newTestLink(t, tg)
	l.onCommand(nil, msg{payload: `{"command":"open","id":"1"}`})
	st := tg.WaitFor("opening, with no worker running", func(st gate.Status) bool { return st.State == gate.Opening })
	if st.Cause != gate.CauseMQTT {
		t.Errorf("cause %q, want %q", st.Cause, gate.CauseMQTT)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go l.worker(ctx)
	if r := nextResult(t, l); r.ID != "1" || !r.OK || r.State != gate.Opening {
		t.Errorf("result %+v, want id 1 ok opening", r)
	}
}

// A command that finds the gate busy waits in the queue; a command after it
// must wait its turn there too, though the gate has room again by then:
// commands run in the order published.
func TestQueuedCommandIsNotOvertaken(t *testing.T) {
	og := &orderGate{Gate: gatetest.StartUnknown(t), busy: true, inDo: make(chan struct{}, 2), release: make(chan struct{})}
	l := newTestLink(t, og)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go l.worker(ctx)

	l.onCommand(nil, msg{payload: `{"command":"open","id":"1"}`})
	<-og.inDo // the worker has the open in hand
	og.mu.Lock()
	og.busy = false
	og.mu.Unlock()
	l.onCommand(nil, msg{payload: `{"command":"stop","id":"2"}`})
	close(og.release)
	for _, want := range []string{"1", "2"} {
		if r := nextResult(t, l); r.ID != want {
			t.Fatalf("result for id %s, want %s", r.ID, want)
		}
	}
	og.mu.Lock()
	defer og.mu.Unlock()
	if len(og.order) != 2 || og.order[0] != gate.CmdOpen || og.order[1] != gate.CmdStop {
		t.Fatalf("commands reached the gate in the order %v, want [open stop]", og.order)
	}
	if st := og.Status(); st.State != gate.Stopped {
		t.Errorf("state %s after open then stop, want stopped", st.State)
	}
}
