// helpers_test.go holds the helpers the tests share.

package history

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func cmdEvent(i int) Event {
	return Event{Kind: KindCommand, Command: "open", Source: "mqtt", Who: strconv.Itoa(i), OK: true, State: "opening"}
}

func openStore(t testing.TB, dir string, opt Options) *Store {
	t.Helper()
	if opt.Log == nil {
		opt.Log = quiet
	}
	s, err := Open(dir, opt)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// runStore runs s's writer until the test ends.
func runStore(t *testing.T, s *Store) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// txLog collects what each write transaction did, for tests to wait on.
type txLog struct {
	mu     sync.Mutex
	wrote  []int
	pruned []int
	ch     chan struct{}
}

func watchTx(s *Store) *txLog {
	l := &txLog{ch: make(chan struct{}, 1000)}
	s.afterTx = func(wrote, pruned int, err error) {
		l.mu.Lock()
		l.wrote = append(l.wrote, wrote)
		l.pruned = append(l.pruned, pruned)
		l.mu.Unlock()
		l.ch <- struct{}{}
	}
	return l
}

func (l *txLog) wait(t *testing.T) {
	t.Helper()
	select {
	case <-l.ch:
	case <-time.After(10 * time.Second): // a failsafe, not a timer the test waits for
		t.Fatal("no transaction within 10s")
	}
}

// failsafe bounds a wait for the writer to block on the fake clock, so that
// a writer that never does fails the test instead of hanging it.
func failsafe(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func (l *txLog) counts() ([]int, []int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]int(nil), l.wrote...), append([]int(nil), l.pruned...)
}

func seqs(evs []Event) []uint64 {
	var out []uint64
	for _, e := range evs {
		out = append(out, e.Seq)
	}
	return out
}

func span(from, to uint64) []uint64 { // from down to to, inclusive
	var out []uint64
	for i := from; i >= to && i > 0; i-- {
		out = append(out, i)
	}
	return out
}

// all reads the whole store, oldest first, page by page as a client would.
func all(t testing.TB, s *Store) []Event {
	t.Helper()
	var out []Event
	var before uint64
	for {
		evs, err := s.List(MaxListLimit, before)
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		if len(evs) == 0 {
			break
		}
		out = append(out, evs...)
		before = evs[len(evs)-1].Seq
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

func mustList(t *testing.T, s *Store, limit int, before uint64) []Event {
	t.Helper()
	evs, err := s.List(limit, before)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func states(evs []Event) string {
	var s []string
	for _, e := range evs {
		s = append(s, e.State)
	}
	return strings.Join(s, " ")
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
