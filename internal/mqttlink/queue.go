package mqttlink

// The command queue: paho's handlers parse each command message and queue
// it, without waiting, for the one worker goroutine that hands commands to
// the gate; every answer goes into the result queue for the publisher.

import (
	"context"
	"errors"
	"strings"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"rocksaying.tw/gated/internal/gate"
)

// job is work for the goroutine that talks to the gate: a command, or a
// simulator control word.
type job struct {
	req request
	sim string
}

// result is the answer to one command message, as published on
// <prefix>/result.
type result struct {
	ID      string     `json:"id"`
	Command string     `json:"command"`
	OK      bool       `json:"ok"`
	State   gate.State `json:"state,omitempty"`
	Error   string     `json:"error,omitempty"`   // the machine reason
	Message string     `json:"message,omitempty"` // a sentence for people
}

func (l *Link) onCommand(_ mqtt.Client, m mqtt.Message) {
	l.enqueue(l.parse(m.Payload(), m.Retained()))
}

// enqueue queues a parsed command for the worker, or answers at once: a
// malformed one with its error, and any when the queue is full. A paho
// handler calls it, so it never waits.
func (l *Link) enqueue(req request, err error) {
	if err != nil {
		l.answer(req, gate.Status{}, err, noWait)
		return
	}
	select {
	case l.jobs <- job{req: req}:
	default:
		// A flood must not grow memory: the queue is bounded and the
		// sender learns at once that the command was not taken.
		l.answer(req, gate.Status{}, &gate.RefusedError{Reason: gate.ReasonBusy, Msg: "too many commands waiting for the gate: command dropped"}, noWait)
	}
}

func (l *Link) onSim(_ mqtt.Client, m mqtt.Message) {
	if m.Retained() {
		l.log.Warn("retained simulation control ignored", "topic", m.Topic())
		return
	}
	if len(m.Payload()) > MaxPayload {
		l.log.Warn("simulation control too large, ignored", "bytes", len(m.Payload()))
		return
	}
	w := strings.ToLower(strings.TrimSpace(string(m.Payload())))
	select {
	case l.jobs <- job{sim: w}:
	default:
		l.log.Warn("simulation control dropped: queue full", "control", echo(w))
	}
}

// answer queues the result of one command message (see queue), then logs
// it. A paho handler never waits (noWait): the queue is deep enough
// (resultQueue) that a flood's refusals fit.
func (l *Link) answer(req request, st gate.Status, err error, wait time.Duration) {
	r := result{ID: req.ID, Command: req.Word, OK: err == nil}
	if err == nil {
		r.State = st.State
	} else {
		var re *gate.RefusedError
		if errors.As(err, &re) {
			r.Error, r.Message = string(re.Reason), re.Msg
		} else {
			r.Error, r.Message = "error", err.Error() // not a refusal: say so plainly
		}
	}
	roomless := !l.queue(r, wait)
	if err == nil {
		l.log.Info("command", "id", req.ID, "command", req.Cmd, "state", st.State)
	} else {
		l.log.Info("command refused", "id", echo(req.ID), "command", req.Word, "reason", r.Error, "err", r.Message)
	}
	if roomless {
		l.dropLog.log(l.log, "result dropped: the broker is not taking results", "id", echo(req.ID), "command", req.Word)
	}
}

// noWait is the wait of an answer that must not wait for room in the
// result queue.
const noWait time.Duration = 0

// queue puts r in the result queue, waiting up to wait for room: only the
// worker waits (resultWait). It is false when r was dropped for want of
// room; a result the link stops with is dropped too, but not worth a
// warning.
func (l *Link) queue(r result, wait time.Duration) bool {
	select {
	case l.results <- r:
		return true
	default:
	}
	if wait <= 0 {
		return false
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case l.results <- r:
		return true
	case <-t.C:
		return false
	case <-l.done:
		return true
	}
}

// worker is the only goroutine that hands commands to the gate, one at a
// time, each with a deadline.
func (l *Link) worker(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-l.jobs:
			if j.sim != "" || j.req.Cmd == "" {
				l.simControl(j.sim)
				continue
			}
			dctx, cancel := context.WithTimeout(ctx, commandTimeout)
			st, err := l.g.Send(dctx, gate.Request{Cmd: j.req.Cmd, Target: j.req.Target, Cause: gate.CauseMQTT, Who: j.req.ID})
			cancel()
			l.answer(j.req, st, err, resultWait)
		}
	}
}

// simControl passes a control word to the simulator. Mistakes are logged
// only: <prefix>/sim has no result topic, to keep <prefix>/result one
// answer per command message.
func (l *Link) simControl(w string) {
	if err := l.opt.Sim.Control(w); err != nil {
		l.log.Warn("simulation control refused", "control", echo(w), "err", err)
		return
	}
	l.log.Info("simulation control", "control", w)
}
