// store.go holds the Store type, its Options, the package constants and errors, Path and key.

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
	"encoding/binary"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	bolt "go.etcd.io/bbolt"
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

// Path is the store's file.
func (s *Store) Path() string {
	if s == nil {
		return ""
	}
	return s.path
}

// key is seq big-endian, so that bbolt's byte order is seq order.
func key(seq uint64) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), seq)
}
