// prune_test.go holds the tests of retention.

package history

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jonboulle/clockwork"
)

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
