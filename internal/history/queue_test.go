// queue_test.go holds the tests of the non-blocking queue and Add.

package history

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

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
