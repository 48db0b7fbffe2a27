// writer_test.go holds the tests of the batched writer: Run and Flush.

package history

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jonboulle/clockwork"
	"rocksaying.tw/gated/internal/syncbuf"
)

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
