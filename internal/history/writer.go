// writer.go holds the batched writer: Run, Flush and the write transaction.

package history

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/jonboulle/clockwork"
	bolt "go.etcd.io/bbolt"
)

// Run is the writer: it commits queued events until ctx ends, then writes
// what is still queued and returns. A batch is committed as soon as
// BatchSize events wait, otherwise when FlushInterval has passed since the
// previous transaction (at once for an event after a quiet spell). So N
// events added over a time T cost at most ⌈N/BatchSize⌉ + ⌈T/FlushInterval⌉
// + 1 transactions, each two fdatasyncs, however fast they come.
//
// Each transaction also deletes up to 2×BatchSize of the oldest events that
// are past Keep or beyond MaxEvents; an idle writer looks for such events
// at start and every 10 minutes, in a transaction of its own that is
// committed only when it deletes something (a look that finds nothing costs
// no fsync). Transactions stay short: a large backlog (a lowered
// max_events) is deleted over several, 2×BatchSize at a time.
//
// A transaction that fails loses its batch (counted in Stats.Failed, logged
// at most once a minute); the writer carries on. Run returns the error of
// the final write, if any.
func (s *Store) Run(ctx context.Context) error {
	if s == nil {
		<-ctx.Done()
		return nil
	}
	tick := s.clk.NewTicker(pruneEvery)
	defer tick.Stop()
	var timer clockwork.Timer
	var timerC <-chan time.Time
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	prune := true // once at start: the store may hold events past keep
	for ctx.Err() == nil {
		n, wait := s.due()
		if n > 0 && wait <= 0 {
			if _, err := s.writeOnce(); errors.Is(err, ErrClosed) {
				return nil
			}
			continue
		}
		if n == 0 && prune {
			more, err := s.pruneOnce()
			if errors.Is(err, ErrClosed) {
				return nil
			}
			prune = more && err == nil
			continue
		}
		if n > 0 && timer == nil {
			timer = s.clk.NewTimer(wait)
			timerC = timer.Chan()
		}
		select {
		case <-ctx.Done():
		case <-s.wake:
		case <-timerC:
			timer, timerC = nil, nil
		case <-tick.Chan():
			prune = true
		}
	}
	if err := s.Flush(); err != nil && !errors.Is(err, ErrClosed) {
		return err
	}
	return nil
}

// due says how many events wait and how long until they should be written.
func (s *Store) due() (int, time.Duration) {
	s.mu.Lock()
	n, last := len(s.q), s.lastCommit
	s.mu.Unlock()
	if n >= s.opt.BatchSize {
		return n, 0
	}
	return n, last.Add(s.opt.FlushInterval).Sub(s.clk.Now())
}

// Flush writes every event queued when it is called, in batches of
// BatchSize, and returns the first error. Tests and shutdown use it; Run
// needs no help.
func (s *Store) Flush() error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	n := len(s.q)
	s.mu.Unlock()
	var first error
	for {
		w, err := s.writeOnce()
		if errors.Is(err, ErrClosed) {
			return err
		}
		if err != nil && first == nil {
			first = err
		}
		if n -= w; w == 0 || n <= 0 {
			return first
		}
	}
}

// writeOnce writes up to BatchSize queued events, and prunes, in one
// transaction. It returns how many events it took from the queue.
func (s *Store) writeOnce() (int, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.writeLocked()
}

func (s *Store) writeLocked() (int, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return 0, ErrClosed
	}
	n := min(len(s.q), s.opt.BatchSize)
	// The batch keeps the front of the queue's array, which Add no longer
	// touches: no copy while Add waits for mu.
	batch := s.q[:n:n]
	if s.q = s.q[n:]; len(s.q) == 0 {
		s.q = nil // let a flood's queue go
	}
	count := s.st.Events
	s.mu.Unlock()
	if n == 0 {
		return 0, nil
	}

	var pruned int
	err := s.txn(func(b *bolt.Bucket) (bool, error) {
		// Keys only ever grow: fill pages instead of splitting them in
		// half (bbolt's default), which would leave the file half empty.
		b.FillPercent = 0.9
		for i := range batch {
			seq, err := b.NextSequence()
			if err != nil {
				return false, err
			}
			batch[i].Seq = seq
			v, err := json.Marshal(batch[i])
			if err != nil {
				return false, fmt.Errorf("event %d: %w", seq, err)
			}
			if err := b.Put(key(seq), v); err != nil {
				return false, err
			}
		}
		var err error
		pruned, err = s.prune(b, count+n, 2*s.opt.BatchSize)
		return true, err
	})

	now := s.clk.Now()
	s.mu.Lock()
	s.lastCommit = now
	if err != nil {
		pruned = 0
		s.st.Failed += uint64(n)
	} else {
		s.st.Written += uint64(n)
		s.st.Commits++
		s.st.Pruned += uint64(pruned)
		s.st.Events += n - pruned
	}
	dropped := s.st.Dropped - s.dropWarned
	warnDrops := dropped > 0 && (s.dropWarnAt.IsZero() || now.Sub(s.dropWarnAt) >= warnEvery)
	if warnDrops {
		s.dropWarned, s.dropWarnAt = s.st.Dropped, now
	}
	warnFail := err != nil && (s.failWarnAt.IsZero() || now.Sub(s.failWarnAt) >= warnEvery)
	if warnFail {
		s.failWarnAt = now
	}
	failed := s.st.Failed
	s.mu.Unlock()

	if warnDrops {
		s.log.Warn("history queue full: oldest events dropped", "dropped", dropped, "queue", s.opt.QueueSize)
	}
	if warnFail {
		s.log.Warn("history write failed: events lost", "err", err, "events", n, "lost_total", failed)
	}
	if s.afterTx != nil {
		s.afterTx(n, pruned, err)
	}
	return n, err
}

// txn runs fn in a write transaction and commits it when fn says so. A
// panic or a memory fault in bbolt (a store damaged while open) becomes an
// error and the transaction is rolled back.
func (s *Store) txn(fn func(*bolt.Bucket) (commit bool, err error)) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("history %s: %w: %v", s.path, ErrCorrupt, p)
		}
	}()
	tx, err := s.db.Begin(true)
	if err != nil {
		return fmt.Errorf("history %s: %w", s.path, err)
	}
	defer func() {
		if tx.DB() != nil {
			_ = tx.Rollback()
		}
	}()
	b := tx.Bucket(bucket)
	if b == nil {
		return fmt.Errorf("history %s: %w: no bucket %q", s.path, ErrCorrupt, bucket)
	}
	commit, err := fn(b)
	if err != nil {
		return fmt.Errorf("history %s: %w", s.path, err)
	}
	if !commit {
		return nil
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("history %s: %w", s.path, err)
	}
	return nil
}
