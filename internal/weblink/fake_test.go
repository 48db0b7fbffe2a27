package weblink_test

import (
	"context"
	"sync"
	"time"

	"rocksaying.tw/gated/internal/gate"
	"rocksaying.tw/gated/internal/history"
)

// fakeGate is a gate whose answers a test sets: it records each command
// (with who asked) and hands its Reply to the command subscribers, as the
// real gate does.
type fakeGate struct {
	mu      sync.Mutex
	st      gate.Status
	subs    map[chan gate.Status]bool
	cmds    map[chan gate.Reply]bool
	refuse  *gate.RefusedError // the next commands' answer; nil: accept
	calls   []call
	targets []int // each call's position target
}

type call struct {
	cmd   gate.Command
	cause gate.Cause
	who   string
}

func newFakeGate() *fakeGate {
	return &fakeGate{
		st:   gate.Status{Gate: "front", State: gate.Closed, Cause: gate.CauseStartup, Since: time.Date(2026, 12, 2, 10, 15, 3, 512e6, time.UTC), Seq: 1},
		subs: map[chan gate.Status]bool{}, cmds: map[chan gate.Reply]bool{},
	}
}

func (g *fakeGate) Status() gate.Status {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.st
}

func (g *fakeGate) Subscribe() (<-chan gate.Status, func()) {
	c := make(chan gate.Status, 16)
	g.mu.Lock()
	defer g.mu.Unlock()
	g.subs[c] = true
	c <- g.st
	return c, func() { g.mu.Lock(); delete(g.subs, c); g.mu.Unlock() }
}

func (g *fakeGate) SubscribeCommands() (<-chan gate.Reply, func()) {
	c := make(chan gate.Reply, 16)
	g.mu.Lock()
	defer g.mu.Unlock()
	g.cmds[c] = true
	return c, func() { g.mu.Lock(); delete(g.cmds, c); g.mu.Unlock() }
}

// set publishes a new status.
func (g *fakeGate) set(f func(*gate.Status)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	f(&g.st)
	g.st.Seq++
	for c := range g.subs {
		c <- g.st
	}
}

func (g *fakeGate) Send(ctx context.Context, r gate.Request) (gate.Status, error) {
	cmd, cause, who := r.Cmd, r.Cause, r.Who
	g.mu.Lock()
	g.calls = append(g.calls, call{cmd, cause, who})
	g.targets = append(g.targets, r.Target)
	refuse := g.refuse
	g.mu.Unlock()
	var err error
	if refuse != nil {
		err = refuse
	} else if cmd == gate.CmdOpen {
		g.set(func(s *gate.Status) { s.State, s.Moving, s.Cause = gate.Opening, true, cause })
	}
	st := g.Status()
	g.mu.Lock()
	for c := range g.cmds {
		c <- gate.Reply{Cmd: cmd, Cause: cause, Who: who, Status: st, Err: err}
	}
	g.mu.Unlock()
	return st, err
}

func (g *fakeGate) callsSoFar() []call {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]call(nil), g.calls...)
}

// fakeHistory lists its events, remembering what it was asked.
type fakeHistory struct {
	mu     sync.Mutex
	evs    []history.Event
	limit  int
	before uint64
}

func (h *fakeHistory) List(limit int, before uint64) ([]history.Event, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.limit, h.before = limit, before
	return h.evs, nil
}
