package mqttlink

// The acker: PUBACKs are awaited off the publisher's path.

import (
	"context"
	"fmt"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// acker waits for the PUBACKs of publications in the background, in the
// order they were made, with at most window of them outstanding.
type acker struct {
	sent chan sent
	done chan struct{}
}

// sent is a publication awaiting its PUBACK.
type sent struct {
	tok      mqtt.Token
	deadline time.Time
	kind     pubKind
}

// pubKind is what a publication carries, which decides what its failure
// costs: a status is published again, a result is only logged.
type pubKind int

const (
	statusPub pubKind = iota // the status document or the bare state
	resultPub                // the result of a command
)

// startAcker starts an acker; failed is called, on the acker's goroutine,
// for each publication that failed or had no PUBACK within publishTimeout.
// It stops when ctx ends.
func startAcker(ctx context.Context, window int, failed func(sent, error)) *acker {
	a := &acker{sent: make(chan sent, window), done: make(chan struct{})}
	go func() {
		defer close(a.done)
		for {
			select {
			case <-ctx.Done():
				return
			case s := <-a.sent:
				if err := waitUntil(ctx, s.tok, s.deadline); err != nil {
					failed(s, err)
				}
			}
		}
	}()
	return a
}

// add hands the acker a publication's token, waiting while window of them
// are outstanding. It is false if ctx ended first.
func (a *acker) add(ctx context.Context, tok mqtt.Token, kind pubKind) bool {
	select {
	case a.sent <- sent{tok, time.Now().Add(publishTimeout), kind}:
		return true
	case <-ctx.Done():
		return false
	}
}

// stop waits for the acker's goroutine, which ends with ctx.
func (a *acker) stop() { <-a.done }

// waitUntil waits for a token until deadline, or until ctx ends (nil).
func waitUntil(ctx context.Context, t mqtt.Token, deadline time.Time) error {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case <-t.Done():
		return t.Error()
	case <-timer.C:
		return fmt.Errorf("no answer from the broker in %s", publishTimeout)
	case <-ctx.Done():
		return nil
	}
}
