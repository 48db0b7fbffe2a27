package history

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jonboulle/clockwork"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
	"rocksaying.tw/gated/internal/syncbuf"
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

func TestAddFlushList(t *testing.T) {
	clk := clockwork.NewFakeClockAt(time.Date(2026, 12, 2, 10, 15, 3, 512_000_000, time.UTC))
	s := openStore(t, t.TempDir(), Options{Clock: clk})
	for i := 1; i <= 30; i++ {
		s.Add(cmdEvent(i))
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		limit  int
		before uint64
		want   []uint64
	}{
		{0, 0, span(30, 1)},
		{5, 0, span(30, 26)},
		{5, 26, span(25, 21)},
		{5, 3, span(2, 1)},
		{5, 1, nil},
		{5, 1000, span(30, 26)},
		{-1, 0, span(30, 1)},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("limit=%d,before=%d", tt.limit, tt.before), func(t *testing.T) {
			evs, err := s.List(tt.limit, tt.before)
			if err != nil {
				t.Fatal(err)
			}
			if evs == nil {
				t.Error("got a nil slice, want an empty one (JSON [])")
			}
			if diff := cmp.Diff(tt.want, seqs(evs)); diff != "" {
				t.Errorf("seqs (-want +got):\n%s", diff)
			}
		})
	}
	evs, _ := s.List(1, 0)
	want := cmdEvent(30)
	want.Seq, want.At = 30, clk.Now()
	if diff := cmp.Diff(want, evs[0]); diff != "" {
		t.Errorf("newest event (-want +got):\n%s", diff)
	}
}

func TestListLimitCapped(t *testing.T) {
	s := openStore(t, t.TempDir(), Options{})
	for i := 0; i < MaxListLimit+200; i++ {
		s.Add(cmdEvent(i))
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ limit, want int }{{0, DefaultListLimit}, {MaxListLimit + 1, MaxListLimit}, {5000, MaxListLimit}, {7, 7}} {
		evs, err := s.List(tt.limit, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != tt.want {
			t.Errorf("List(%d): got %d events, want %d", tt.limit, len(evs), tt.want)
		}
	}
}

func TestSeqContinuesAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		s.Add(cmdEvent(i))
	}
	if err := s.Close(); err != nil { // Close writes what is queued
		t.Fatal(err)
	}
	s = openStore(t, dir, Options{})
	if got := s.Stats().Events; got != 3 {
		t.Errorf("reopened store: Stats().Events = %d, want 3", got)
	}
	s.Add(cmdEvent(3))
	s.Add(cmdEvent(4))
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(span(5, 1), seqs(mustList(t, s, 0, 0))); diff != "" {
		t.Errorf("seqs (-want +got):\n%s", diff)
	}
}

func mustList(t *testing.T, s *Store, limit int, before uint64) []Event {
	t.Helper()
	evs, err := s.List(limit, before)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func TestNilStoreIsANoOp(t *testing.T) {
	var s *Store
	s.Add(cmdEvent(1))
	if err := s.Flush(); err != nil {
		t.Errorf("Flush: %v", err)
	}
	evs, err := s.List(10, 0)
	if err != nil || evs == nil || len(evs) != 0 {
		t.Errorf("List: got %v, %v; want an empty slice", evs, err)
	}
	if st := s.Stats(); st != (Stats{}) {
		t.Errorf("Stats: got %+v", st)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Run(ctx); err != nil {
		t.Errorf("Run: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if s.Path() != "" {
		t.Errorf("Path: %q", s.Path())
	}
}

// A writer stuck on a slow disk holds wmu; Add must still return.
func TestAddNeverBlocks(t *testing.T) {
	s := openStore(t, t.TempDir(), Options{QueueSize: 100})
	s.wmu.Lock()
	var unlock sync.Once
	t.Cleanup(func() { unlock.Do(s.wmu.Unlock) }) // before Close, also on Fatal
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 10000; i++ {
			s.Add(cmdEvent(i))
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Add blocked while the writer was busy")
	}
	st := s.Stats()
	if st.Queued != 100 || st.Dropped != 9900 || st.Added != 10000 {
		t.Errorf("got %+v, want Queued 100, Dropped 9900, Added 10000", st)
	}
	unlock.Do(s.wmu.Unlock)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	evs := all(t, s)
	if len(evs) != 100 || evs[0].Who != "9900" || evs[99].Who != "9999" {
		t.Errorf("got %d events from who %s to %s; want the newest 100 (9900 to 9999)", len(evs), evs[0].Who, evs[len(evs)-1].Who)
	}
}

// A flood of 10 000 events with a queue big enough for it: every event is
// stored, in order, in at most ⌈N/BatchSize⌉ + 1 transactions (the clock
// stands still: the writer commits only full batches after the first).
func TestFloodBoundedTransactions(t *testing.T) {
	const n, batch = 10000, 1000
	clk := clockwork.NewFakeClock()
	s := openStore(t, t.TempDir(), Options{Clock: clk, QueueSize: 16384, BatchSize: batch})
	runStore(t, s)
	for i := 0; i < n; i++ {
		s.Add(cmdEvent(i))
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	if st.Written != n || st.Dropped != 0 || st.Failed != 0 || st.Events != n {
		t.Errorf("got %+v, want %d written and stored, none dropped or failed", st, n)
	}
	if max := uint64(n/batch + 1); st.Commits > max {
		t.Errorf("got %d transactions for %d events, want at most %d", st.Commits, n, max)
	}
	evs := all(t, s)
	for i, e := range evs {
		if e.Seq != uint64(i+1) || e.Who != strconv.Itoa(i) {
			t.Fatalf("event %d: seq %d who %s, want seq %d who %d", i, e.Seq, e.Who, i+1, i)
		}
	}
	t.Logf("%d events in %d transactions", n, st.Commits)
}

// After a quiet spell an event is written at once; the next one waits for
// FlushInterval or a full batch.
func TestWriterBatchesByTimeAndSize(t *testing.T) {
	clk := clockwork.NewFakeClock()
	s := openStore(t, t.TempDir(), Options{Clock: clk, BatchSize: 10, FlushInterval: 200 * time.Millisecond})
	txs := watchTx(s)
	ctx := failsafe(t)
	runStore(t, s)

	s.Add(cmdEvent(0))
	txs.wait(t)
	if got := s.Stats().Written; got != 1 {
		t.Fatalf("after a quiet spell: written %d, want 1", got)
	}

	s.Add(cmdEvent(1))
	if err := clk.BlockUntilContext(ctx, 2); err != nil { // the prune ticker and the flush timer
		t.Fatal(err)
	}
	if got := s.Stats().Written; got != 1 {
		t.Fatalf("an event 0s after a write: written %d, want 1 (it waits)", got)
	}
	clk.Advance(200 * time.Millisecond)
	txs.wait(t)
	if got := s.Stats().Written; got != 2 {
		t.Fatalf("after FlushInterval: written %d, want 2", got)
	}

	for i := 2; i < 11; i++ { // 9 events: not a batch, within the interval
		s.Add(cmdEvent(i))
	}
	if err := clk.BlockUntilContext(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if got := s.Stats().Written; got != 2 {
		t.Fatalf("9 events within the interval: written %d, want 2", got)
	}
	s.Add(cmdEvent(11)) // the 10th: a full batch goes at once
	txs.wait(t)
	if got := s.Stats().Written; got != 12 {
		t.Fatalf("a full batch: written %d, want 12", got)
	}
}

func TestRetentionByCount(t *testing.T) {
	s := openStore(t, t.TempDir(), Options{MaxEvents: 100, BatchSize: 10})
	txs := watchTx(s)
	for i := 0; i < 250; i++ {
		s.Add(cmdEvent(i))
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Events != 100 || st.Pruned != 150 {
		t.Errorf("got %+v, want 100 events, 150 pruned", st)
	}
	if diff := cmp.Diff(span(250, 151), seqs(mustList(t, s, 1000, 0))); diff != "" {
		t.Errorf("seqs (-want +got):\n%s", diff)
	}
	_, pruned := txs.counts()
	for _, p := range pruned {
		if p > 20 {
			t.Errorf("a transaction deleted %d events, want at most 2×BatchSize = 20", p)
		}
	}
}

func TestRetentionByAge(t *testing.T) {
	dir := t.TempDir()
	clk := clockwork.NewFakeClockAt(time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC))
	now := clk.Now()
	old := []Event{
		{At: now.Add(-90 * time.Minute), Kind: KindStatus, State: "a"},
		{At: now.Add(-55 * time.Minute), Kind: KindStatus, State: "b"},
		{At: now.Add(-10 * time.Minute), Kind: KindStatus, State: "c"},
	}
	s, err := Open(dir, Options{Clock: clk, Keep: -1, Log: quiet}) // no age limit
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range old {
		s.Add(e)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openStore(t, dir, Options{Clock: clk, Keep: time.Hour})
	txs := watchTx(s)
	runStore(t, s)
	txs.wait(t) // the writer's first prune: a is 90 minutes old
	if got := states(mustList(t, s, 0, 0)); got != "c b" {
		t.Errorf("after the first prune: got %q, want \"c b\"", got)
	}
	if err := clk.BlockUntilContext(failsafe(t), 1); err != nil { // the prune ticker
		t.Fatal(err)
	}
	clk.Advance(pruneEvery) // b is 65 minutes old
	txs.wait(t)
	if got := states(mustList(t, s, 0, 0)); got != "c" {
		t.Errorf("after the next prune: got %q, want \"c\"", got)
	}

	// A write prunes too.
	clk.Advance(time.Hour)
	s.Add(Event{Kind: KindStatus, State: "d"})
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := states(mustList(t, s, 0, 0)); got != "d" {
		t.Errorf("after a write: got %q, want \"d\"", got)
	}
}

func states(evs []Event) string {
	var s []string
	for _, e := range evs {
		s = append(s, e.State)
	}
	return strings.Join(s, " ")
}

// Lowering max_events leaves a backlog that is deleted over several short
// transactions.
func TestRetentionBacklogInShortTransactions(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{MaxEvents: -1, BatchSize: 500, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5000; i++ {
		s.Add(cmdEvent(i))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openStore(t, dir, Options{MaxEvents: 100, BatchSize: 100})
	txs := watchTx(s)
	runStore(t, s)
	total := 0
	for total < 4900 {
		txs.wait(t)
		_, pruned := txs.counts()
		total = 0
		for _, p := range pruned {
			if p > 200 {
				t.Fatalf("a transaction deleted %d events, want at most 2×BatchSize = 200", p)
			}
			total += p
		}
	}
	if _, pruned := txs.counts(); len(pruned) != 25 {
		t.Errorf("got %d transactions, want 25 of at most 200", len(pruned))
	}
	if diff := cmp.Diff(span(5000, 4901), seqs(mustList(t, s, 1000, 0))); diff != "" {
		t.Errorf("seqs (-want +got):\n%s", diff)
	}
}

func TestWarnings(t *testing.T) {
	t.Run("queue full", func(t *testing.T) {
		var logs syncbuf.Buffer
		s := openStore(t, t.TempDir(), Options{QueueSize: 2, Log: slog.New(slog.NewTextHandler(&logs, nil))})
		for i := 0; i < 5; i++ {
			s.Add(cmdEvent(i))
		}
		if err := s.Flush(); err != nil {
			t.Fatal(err)
		}
		if got := logs.String(); strings.Count(got, "oldest events dropped") != 1 || !strings.Contains(got, "dropped=3") {
			t.Errorf("logs: %s\nwant one warning with dropped=3", got)
		}
	})
	t.Run("write fails", func(t *testing.T) {
		var logs syncbuf.Buffer
		s := openStore(t, t.TempDir(), Options{Log: slog.New(slog.NewTextHandler(&logs, nil))})
		if err := s.db.Close(); err != nil { // the disk went away
			t.Fatal(err)
		}
		for i := 0; i < 3; i++ {
			s.Add(cmdEvent(i))
		}
		if err := s.Flush(); err == nil {
			t.Error("Flush: got no error")
		}
		if st := s.Stats(); st.Failed != 3 || st.Written != 0 {
			t.Errorf("got %+v, want 3 failed", st)
		}
		if got := logs.String(); !strings.Contains(got, "history write failed") {
			t.Errorf("logs: %s\nwant a write failure warning", got)
		}
		if _, err := s.List(10, 0); err == nil {
			t.Error("List: got no error")
		}
	})
}

func TestClose(t *testing.T) {
	s, err := Open(t.TempDir(), Options{Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	s.Add(cmdEvent(1))
	if st := s.Stats(); st.Queued != 0 || st.Added != 0 {
		t.Errorf("Add after Close: %+v", st)
	}
	if _, err := s.List(1, 0); !errors.Is(err, ErrClosed) {
		t.Errorf("List after Close: got %v, want ErrClosed", err)
	}
	if err := s.Flush(); !errors.Is(err, ErrClosed) {
		t.Errorf("Flush after Close: got %v, want ErrClosed", err)
	}
	if err := s.Run(context.Background()); err != nil {
		t.Errorf("Run after Close: %v", err)
	}
}

// damage breaks a closed store's file in one way or another.
var damage = []struct {
	name string
	fn   func(t *testing.T, path string)
}{
	{"not a store", func(t *testing.T, path string) {
		writeFile(t, path, []byte(strings.Repeat("this is not a bbolt file\n", 2000)))
	}},
	{"both meta pages zeroed", func(t *testing.T, path string) {
		b := readFile(t, path)
		clear(b[:2*os.Getpagesize()])
		writeFile(t, path, b)
	}},
	{"every page but the meta pages overwritten", func(t *testing.T, path string) {
		b := readFile(t, path)
		for i := 2 * os.Getpagesize(); i < len(b); i++ {
			b[i] = byte(i*7 + i>>8)
		}
		writeFile(t, path, b)
	}},
	{"truncated to its meta pages", func(t *testing.T, path string) {
		if err := os.Truncate(path, int64(2*os.Getpagesize())); err != nil {
			t.Fatal(err)
		}
	}},
	{"a key that is not a seq", func(t *testing.T, path string) {
		db, err := bolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if err := db.Update(func(tx *bolt.Tx) error {
			return tx.Bucket(bucket).Put([]byte("abc"), []byte("{}"))
		}); err != nil {
			t.Fatal(err)
		}
	}},
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

func TestOpenCorruptMovesItAside(t *testing.T) {
	for _, d := range damage {
		t.Run(d.name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := Open(dir, Options{Log: quiet})
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 3000; i++ { // several pages
				s.Add(cmdEvent(i))
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, FileName)
			d.fn(t, path)

			s, err = Open(dir, Options{Log: quiet})
			if !errors.Is(err, ErrCorrupt) {
				if s != nil {
					_ = s.Close()
				}
				t.Fatalf("Open: got %v, want ErrCorrupt", err)
			}
			t.Logf("Open: %v", err)
			aside, _ := filepath.Glob(path + ".corrupt-*")
			if len(aside) != 1 {
				t.Errorf("files moved aside: %v, want one", aside)
			}
			if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the bad file is still at %s: %v", path, err)
			}

			s = openStore(t, dir, Options{})
			s.Add(cmdEvent(1))
			if err := s.Flush(); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]uint64{1}, seqs(mustList(t, s, 0, 0))); diff != "" {
				t.Errorf("the next store (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOpenOtherErrorsLeaveTheFile(t *testing.T) {
	t.Run("locked by another process", func(t *testing.T) {
		dir := t.TempDir()
		openStore(t, dir, Options{})
		s, err := Open(dir, Options{Log: quiet, lockTimeout: 20 * time.Millisecond})
		if err == nil {
			_ = s.Close()
			t.Fatal("second Open: got no error")
		}
		if errors.Is(err, ErrCorrupt) || !errors.Is(err, berrors.ErrTimeout) {
			t.Errorf("second Open: got %v, want a lock timeout", err)
		}
		if aside, _ := filepath.Glob(filepath.Join(dir, "*.corrupt-*")); len(aside) != 0 {
			t.Errorf("a locked store was moved aside: %v", aside)
		}
	})
	t.Run("dir is a file", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "f")
		writeFile(t, f, nil)
		if s, err := Open(filepath.Join(f, "sub"), Options{Log: quiet}); err == nil || errors.Is(err, ErrCorrupt) {
			_ = s.Close()
			t.Errorf("Open: got %v, want an error other than ErrCorrupt", err)
		}
	})
}

func TestRunWritesWhatIsQueuedWhenItStops(t *testing.T) {
	clk := clockwork.NewFakeClock()
	s := openStore(t, t.TempDir(), Options{Clock: clk})
	txs := watchTx(s)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	s.Add(cmdEvent(0))
	txs.wait(t)
	s.Add(cmdEvent(1)) // waits for FlushInterval, which never comes
	if err := clk.BlockUntilContext(failsafe(t), 2); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if st := s.Stats(); st.Written != 2 || st.Queued != 0 {
		t.Errorf("after Run returned: %+v, want 2 written, none queued", st)
	}
}

// Add from many goroutines and List while the writer runs: every event is
// stored once, with seqs 1…N, and -race sees no race.
func TestConcurrentAddAndList(t *testing.T) {
	const writers, each = 8, 500
	s := openStore(t, t.TempDir(), Options{BatchSize: 64, FlushInterval: time.Millisecond})
	runStore(t, s)
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				s.Add(Event{Kind: KindCommand, Command: "open", Source: "web", Who: fmt.Sprintf("%d-%d", w, i), OK: true})
			}
		}()
	}
	readers := make(chan struct{})
	go func() {
		defer close(readers)
		for i := 0; i < 50; i++ {
			if _, err := s.List(10, 0); err != nil {
				t.Errorf("List: %v", err)
				return
			}
		}
	}()
	wg.Wait()
	<-readers
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	evs := all(t, s)
	if len(evs) != writers*each {
		t.Fatalf("%d events stored, want %d", len(evs), writers*each)
	}
	seen := map[string]bool{}
	next := make([]int, writers)
	for i, e := range evs {
		if e.Seq != uint64(i+1) || seen[e.Who] {
			t.Fatalf("event %d: seq %d who %s (seen before: %v)", i, e.Seq, e.Who, seen[e.Who])
		}
		seen[e.Who] = true
		var w, n int
		fmt.Sscanf(e.Who, "%d-%d", &w, &n)
		if n != next[w] {
			t.Fatalf("writer %d: event %d stored before %d: out of order", w, n, next[w])
		}
		next[w]++
	}
}
