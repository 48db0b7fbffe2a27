package main

import (
	"encoding/json"
	"fmt"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"rocksaying.tw/gated/internal/gate"
)

// client is a paho client for the benchmark's own publishers and
// subscribers: clean session, QoS 1, as a user's client would be.
func client(url, id string) (mqtt.Client, error) {
	o := mqtt.NewClientOptions().AddBroker(url).SetClientID(id).
		SetCleanSession(true).SetAutoReconnect(false).
		SetOrderMatters(true). // our handlers only timestamp and hand off
		SetKeepAlive(30 * time.Second).
		SetWriteTimeout(5 * time.Second)
	c := mqtt.NewClient(o)
	if err := wait(c.Connect()); err != nil {
		return nil, fmt.Errorf("mqtt connect %s as %s: %w", url, id, err)
	}
	return c, nil
}

func wait(t mqtt.Token) error {
	if !t.WaitTimeout(10 * time.Second) {
		return fmt.Errorf("no answer from the broker in 10s")
	}
	return t.Error()
}

// stamped is a message and when it arrived.
type stamped struct {
	at      time.Time
	payload []byte
	retain  bool
}

// subscribe hands every message on topic, timestamped on arrival, to the
// returned channel; messages beyond its buffer are dropped and counted.
func subscribe(c mqtt.Client, topic string, buf int) (<-chan stamped, *counter, error) {
	ch := make(chan stamped, buf)
	drops := &counter{}
	err := wait(c.Subscribe(topic, 1, func(_ mqtt.Client, m mqtt.Message) {
		s := stamped{at: time.Now(), payload: m.Payload(), retain: m.Retained()}
		select {
		case ch <- s:
		default:
			drops.add(1)
		}
	}))
	if err != nil {
		return nil, nil, fmt.Errorf("subscribe %s: %w", topic, err)
	}
	return ch, drops, nil
}

type counter struct {
	mu sync.Mutex
	n  int
}

func (c *counter) add(n int) { c.mu.Lock(); c.n += n; c.mu.Unlock() }
func (c *counter) get() int  { c.mu.Lock(); defer c.mu.Unlock(); return c.n }

// statusIn parses a status document; ok is false for anything else (an empty
// payload clears a retained message).
func statusIn(b []byte) (gate.Status, bool) {
	var st gate.Status
	if len(b) == 0 || json.Unmarshal(b, &st) != nil || st.State == "" {
		return st, false
	}
	return st, true
}

// waitFor returns the arrival time of the first message on ch that match
// accepts, or false after timeout.
func waitFor(ch <-chan stamped, timeout time.Duration, match func([]byte) bool) (time.Time, bool) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case s := <-ch:
			if match(s.payload) {
				return s.at, true
			}
		case <-t.C:
			return time.Time{}, false
		}
	}
}

func drain[T any](ch <-chan T) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

// measureFloor is the one-hop floor: publish at QoS 1 on one connection, a
// subscriber at QoS 1 on another receives it through the broker.
func measureFloor(url string, warm, n int) (dist, error) {
	pub, err := client(url, "gatebench-floor-pub")
	if err != nil {
		return dist{}, err
	}
	defer pub.Disconnect(100)
	sub, err := client(url, "gatebench-floor-sub")
	if err != nil {
		return dist{}, err
	}
	defer sub.Disconnect(100)
	ch, _, err := subscribe(sub, "gatebench/floor", 16)
	if err != nil {
		return dist{}, err
	}
	// About the size of a JSON command.
	payload := []byte(`{"command":"open","id":"gatebench-000000","ts":1763806503}`)
	var samples []time.Duration
	lost := 0
	for i := range warm + n {
		drain(ch)
		t0 := time.Now()
		tok := pub.Publish("gatebench/floor", 1, false, payload)
		at, ok := waitFor(ch, 5*time.Second, func([]byte) bool { return true })
		if err := wait(tok); err != nil {
			return dist{}, fmt.Errorf("floor publish: %w", err)
		}
		if i < warm {
			continue
		}
		if !ok {
			lost++
			continue
		}
		samples = append(samples, at.Sub(t0))
	}
	return summarise(samples, lost), nil
}
