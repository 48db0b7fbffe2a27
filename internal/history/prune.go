// prune.go holds retention: pruning events past Keep or beyond MaxEvents.

package history

import (
	"encoding/json"
	"time"

	bolt "go.etcd.io/bbolt"
)

// pruneOnce deletes up to 2×BatchSize old events in a transaction of its
// own, and says whether there may be more.
func (s *Store) pruneOnce() (bool, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.Lock()
	closed, count := s.closed, s.st.Events
	s.mu.Unlock()
	if closed {
		return false, ErrClosed
	}
	limit := 2 * s.opt.BatchSize
	var n int
	err := s.txn(func(b *bolt.Bucket) (bool, error) {
		var err error
		n, err = s.prune(b, count, limit)
		return n > 0, err // nothing deleted: roll back, no fsync
	})
	if err == nil && n > 0 {
		s.mu.Lock()
		s.st.Commits++
		s.st.Pruned += uint64(n)
		s.st.Events -= n
		s.mu.Unlock()
	}
	if err != nil {
		s.log.Warn("history prune failed", "err", err)
	}
	if s.afterTx != nil && n > 0 {
		s.afterTx(0, n, err)
	}
	return n == limit, err
}

// prune deletes, oldest first, up to limit events that are beyond
// MaxEvents or older than Keep, given that the bucket holds count events.
// Events are in seq order, which is time order unless the clock was set
// back: an event is kept until those written before it have gone.
func (s *Store) prune(b *bolt.Bucket, count, limit int) (int, error) {
	excess := 0
	if s.opt.MaxEvents > 0 {
		excess = count - s.opt.MaxEvents
	}
	var cutoff time.Time
	if s.opt.Keep > 0 {
		cutoff = s.clk.Now().Add(-s.opt.Keep)
	}
	var keys [][]byte
	c := b.Cursor()
	for k, v := c.First(); k != nil && len(keys) < limit; k, v = c.Next() {
		if len(keys) >= excess && !(s.opt.Keep > 0 && eventTime(v).Before(cutoff)) {
			break
		}
		keys = append(keys, append([]byte(nil), k...))
	}
	// Deleting under a cursor makes it skip keys; delete after the walk.
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return 0, err
		}
	}
	return len(keys), nil
}

// eventTime is a stored event's at; the zero time (so: old) when it cannot
// be read.
func eventTime(v []byte) time.Time {
	var j struct {
		At string `json:"at"`
	}
	if json.Unmarshal(v, &j) != nil {
		return time.Time{}
	}
	t, _ := time.Parse(time.RFC3339Nano, j.At)
	return t
}
