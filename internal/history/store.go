// Package history keeps gated's event history: every command and every
// status change, in one bbolt file in the state directory, for the web API,
// D-Bus GetEvents and gatectl events.
//
// Writing never holds up the caller: Add puts the event in a bounded queue
// and the writer (Run) commits the queue in batches, so a flood of commands
// costs a bounded number of fsyncs. bbolt writes copy-on-write pages and
// switches to them with a checksummed meta page after an fsync, so a crash
// or a power cut loses at most the batch being written and never leaves a
// store that does not open.
//
// A nil *Store is a store that keeps nothing: every method works and does
// nothing, so a caller whose store did not open needs no special case.
package history

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// FileName is the store's file in the state directory.
const FileName = "history.db"

// Defaults for the zero Options.
const (
	DefaultKeep          = 2160 * time.Hour // [history] keep
	DefaultMaxEvents     = 100000           // [history] max_events
	DefaultQueueSize     = 16384
	DefaultBatchSize     = 1000
	DefaultFlushInterval = 200 * time.Millisecond
)

// List limits.
const (
	DefaultListLimit = 100  // List's limit when it is 0 or less
	MaxListLimit     = 1000 // List returns at most this many events
)

const (
	// pruneEvery is how often an idle writer looks for events past keep.
	pruneEvery = 10 * time.Minute
	// warnEvery throttles the writer's warnings (queue full, write failed),
	// which would otherwise repeat on every batch.
	warnEvery = time.Minute
	// lockTimeout bounds the wait for another process's lock on the file:
	// a second gated on the same state directory gets an error, not a hang.
	lockTimeout = 2 * time.Second
)

// ErrCorrupt is wrapped by Open's error when the file is not a store it can
// use; Open has then moved the file aside, so the next Open starts empty.
var ErrCorrupt = errors.New("store is corrupt")

// ErrClosed is returned by List and Flush after Close.
var ErrClosed = errors.New("history: store closed")

var bucket = []byte("events")

// Options tune a Store; the zero value gives the defaults above.
type Options struct {
	// Keep is how long an event is kept ([history] keep); 0: DefaultKeep;
	// negative: no age limit.
	Keep time.Duration
	// MaxEvents is how many events are kept ([history] max_events);
	// 0: DefaultMaxEvents; negative: no count limit.
	MaxEvents int
	// QueueSize bounds the events waiting for the writer; when it is full,
	// Add drops the oldest. 0: DefaultQueueSize.
	QueueSize int
	// BatchSize is the most events one transaction writes; the writer
	// writes as soon as this many wait. 0: DefaultBatchSize.
	BatchSize int
	// FlushInterval is the least time between two transactions that are
	// not full batches. 0: DefaultFlushInterval.
	FlushInterval time.Duration

	Clock clockwork.Clock // nil: the real clock
	Log   *slog.Logger    // nil: slog.Default()

	lockTimeout time.Duration // tests
}

func (o Options) withDefaults() Options {
	if o.Keep == 0 {
		o.Keep = DefaultKeep
	}
	if o.MaxEvents == 0 {
		o.MaxEvents = DefaultMaxEvents
	}
	if o.QueueSize <= 0 {
		o.QueueSize = DefaultQueueSize
	}
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = DefaultFlushInterval
	}
	if o.Clock == nil {
		o.Clock = clockwork.NewRealClock()
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.lockTimeout <= 0 {
		o.lockTimeout = lockTimeout
	}
	return o
}

// Stats are the store's counters since Open, for logs and metrics.
type Stats struct {
	Queued  int    // events waiting for the writer
	Events  int    // events in the store
	Added   uint64 // events accepted by Add
	Written uint64 // events committed
	Dropped uint64 // events Add dropped because the queue was full
	Failed  uint64 // events lost because their transaction failed
	Pruned  uint64 // events deleted by retention
	Commits uint64 // transactions committed; bbolt fdatasyncs twice in each
}

// Store is the event history. Add may be called from any goroutine; one
// goroutine runs Run; List, Flush and Stats may be called from any goroutine.
type Store struct {
	path string
	db   *bolt.DB
	opt  Options
	clk  clockwork.Clock
	log  *slog.Logger
	wake chan struct{}

	mu         sync.Mutex
	q          []Event // oldest first
	closing    bool    // Close has begun: Add queues nothing
	closed     bool    // the file is closed
	lastCommit time.Time
	st         Stats
	dropWarned uint64
	dropWarnAt time.Time
	failWarnAt time.Time

	// wmu makes Run, Flush and Close write one at a time, in queue order.
	wmu sync.Mutex
	// afterTx, when set by a test, is called after each write transaction
	// (wmu held) with the events it wrote and deleted and its error.
	afterTx func(wrote, pruned int, err error)
}

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

// Path is the store's file.
func (s *Store) Path() string {
	if s == nil {
		return ""
	}
	return s.path
}

// Add queues e for the writer and returns at once; it never blocks on the
// disk. Seq is assigned when e is written; a zero At becomes the store's
// clock's now. When QueueSize events already wait, the oldest is dropped
// (and counted in Stats.Dropped). After Close, Add does nothing.
func (s *Store) Add(e Event) {
	if s == nil {
		return
	}
	if e.At.IsZero() {
		e.At = s.clk.Now()
	}
	e.Seq = 0
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return
	}
	if len(s.q) >= s.opt.QueueSize {
		s.q[0] = Event{}
		s.q = s.q[1:]
		s.st.Dropped++
	}
	s.q = append(s.q, e)
	s.st.Added++
	n := len(s.q)
	s.mu.Unlock()
	// The writer needs to hear of the first event (to write it or start
	// its timer) and of a full batch; waking it for the others is waste.
	if n == 1 || n >= s.opt.BatchSize {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

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

// Stats returns the counters.
func (s *Store) Stats() Stats {
	if s == nil {
		return Stats{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st
	st.Queued = len(s.q)
	return st
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

// key is seq big-endian, so that bbolt's byte order is seq order.
func key(seq uint64) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), seq)
}
