// open.go holds opening and closing the store and the corrupt-file handling.

package history

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Open opens the store in dir (the state directory), creating both if
// needed. It walks the store once to count its events, so a store damaged
// below bbolt's checksummed meta pages is found here rather than later.
//
// A file that is not a usable store (bad meta pages, a damaged tree) makes
// Open move it aside to FileName.corrupt-<UTC time>, kept for whoever wants
// to look at it, and return an error wrapping ErrCorrupt: calling Open again
// starts an empty store. Any other error (a directory that cannot be
// written, a file locked by another process) leaves the file alone.
func Open(dir string, opt Options) (*Store, error) {
	opt = opt.withDefaults()
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	path := filepath.Join(dir, FileName)
	_, statErr := os.Stat(path)
	db, n, err := openDB(path, opt.lockTimeout)
	if errors.Is(err, ErrCorrupt) {
		aside := path + ".corrupt-" + opt.Clock.Now().UTC().Format("20060102T150405.000Z")
		if rerr := os.Rename(path, aside); rerr != nil {
			return nil, fmt.Errorf("history %s: %w; cannot move it aside: %v", path, err, rerr)
		}
		return nil, fmt.Errorf("history %s: %w; moved aside to %s, the next start begins an empty history", path, err, aside)
	}
	if err != nil {
		return nil, fmt.Errorf("history %s: %w", path, err)
	}
	if errors.Is(statErr, fs.ErrNotExist) {
		// A new file's directory entry must survive a power cut too.
		syncDir(dir)
	}
	s := &Store{
		path: path, db: db, opt: opt, clk: opt.Clock,
		log:  opt.Log.With("part", "history"),
		wake: make(chan struct{}, 1),
	}
	s.st.Events = n
	return s, nil
}

// openDB opens the bbolt file and counts the events. bbolt panics on some
// damaged pages and a page beyond the end of a truncated file faults:
// both become ErrCorrupt.
func openDB(path string, timeout time.Duration) (db *bolt.DB, n int, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			if db != nil {
				closeQuietly(db)
			}
			db, n, err = nil, 0, fmt.Errorf("%w: %v", ErrCorrupt, p)
		}
	}()
	db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout})
	if err != nil {
		if errors.Is(err, berrors.ErrInvalid) || errors.Is(err, berrors.ErrChecksum) || errors.Is(err, berrors.ErrVersionMismatch) {
			err = fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		return nil, 0, err
	}
	missing := false
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		if b == nil {
			missing = true
			return nil
		}
		c := b.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			if len(k) != 8 {
				return fmt.Errorf("%w: key %x is not a sequence number", ErrCorrupt, k)
			}
			n++
		}
		return nil
	})
	if err == nil && missing {
		err = db.Update(func(tx *bolt.Tx) error {
			_, err := tx.CreateBucket(bucket)
			if errors.Is(err, berrors.ErrIncompatibleValue) {
				err = fmt.Errorf("%w: %q is not a bucket", ErrCorrupt, bucket)
			}
			return err
		})
	}
	if err != nil {
		closeQuietly(db)
		return nil, 0, err
	}
	return db, n, nil
}

func closeQuietly(db *bolt.DB) {
	defer func() { _ = recover() }()
	_ = db.Close()
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

// Close writes what is queued and closes the file. Call it after Run has
// returned; afterwards Add does nothing and List and Flush return ErrClosed.
func (s *Store) Close() error {
	if s == nil {
		return nil
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closing = true // Add stops queueing
	s.mu.Unlock()
	var err error
	for {
		n, werr := s.writeLocked()
		if werr != nil && err == nil {
			err = werr
		}
		if n == 0 {
			break
		}
	}
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	if cerr := s.db.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("history %s: %w", s.path, cerr)
	}
	return err
}
