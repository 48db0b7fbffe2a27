// list.go holds List and its read transaction.

package history

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"runtime/debug"

	bolt "go.etcd.io/bbolt"
)

// List returns up to limit events, newest first, with seq below before (all
// when before is 0). A limit of 0 or less means DefaultListLimit; more than
// MaxListLimit means MaxListLimit. It sees the events written so far, not
// those still queued (at most FlushInterval old, or Flush first). A nil
// store returns an empty, non-nil slice.
func (s *Store) List(limit int, before uint64) ([]Event, error) {
	evs := []Event{}
	if s == nil {
		return evs, nil
	}
	if limit <= 0 {
		limit = DefaultListLimit
	}
	limit = min(limit, MaxListLimit)
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	if err := s.view(func(b *bolt.Bucket) error {
		c := b.Cursor()
		var k, v []byte
		if before == 0 {
			k, v = c.Last()
		} else if k, _ = c.Seek(key(before)); k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
		for ; k != nil && len(evs) < limit; k, v = c.Prev() {
			var e Event
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("event %x: %w", k, err)
			}
			e.Seq = binary.BigEndian.Uint64(k)
			evs = append(evs, e)
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("history %s: %w", s.path, err)
	}
	return evs, nil
}

// view runs fn in a read transaction; a panic or a memory fault in bbolt
// becomes an error, as in txn.
func (s *Store) view(fn func(*bolt.Bucket) error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %v", ErrCorrupt, p)
		}
	}()
	return s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		if b == nil {
			return fmt.Errorf("%w: no bucket %q", ErrCorrupt, bucket)
		}
		return fn(b)
	})
}
