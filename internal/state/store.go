package state

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
)

// DefaultDir is the state directory when $STATE_DIRECTORY is unset: the one
// the unit's StateDirectory=gated gives.
const DefaultDir = "/var/lib/gated"

// FileName is the state file's name in its directory.
const FileName = "state.json"

// DefaultMinInterval is the least time between two writes: a burst of
// changes becomes one write, sparing the Pi's SD card.
const DefaultMinInterval = time.Second

const (
	retryEvery = time.Minute // after a failed write, the next try
	warnEvery  = time.Hour   // one WARN per kind of write failure per hour
)

// Dir returns the directory gated keeps its state in: the first path in
// $STATE_DIRECTORY (systemd sets it from StateDirectory=, colon-separated
// when the unit lists several), else DefaultDir.
func Dir() string { return dirFrom(os.Getenv("STATE_DIRECTORY")) }

func dirFrom(env string) string {
	for p := range strings.SplitSeq(env, ":") {
		if p != "" {
			return p
		}
	}
	return DefaultDir
}

// Options are a Store's collaborators; the zero value is usable.
type Options struct {
	Log   *slog.Logger    // the writer's warnings; nil: slog.Default()
	Clock clockwork.Clock // nil: the real clock
	// MinInterval is the least time between two writes; 0 means
	// DefaultMinInterval, a negative value no limit. The last document is
	// written at once when Run's context ends, whatever the interval.
	MinInterval time.Duration
}

// Store keeps a Doc in a directory's FileName. Set, Update and Latest may be
// called from any goroutine and never wait for the disk; Run writes.
type Store struct {
	dir, path string
	fs        fsys
	clk       clockwork.Clock
	log       *slog.Logger
	every     time.Duration

	mu     sync.Mutex
	latest Doc
	kick   chan struct{} // capacity 1: a write is due

	// Load's, then Run's goroutine only.
	written    []byte // what the file holds; nil: not known
	warned     map[string]time.Time
	suppressed map[string]int
	failing    bool
}

// New returns a Store for dir (see Dir). It touches nothing on disk: call
// Load, then start Run.
func New(dir string, opt Options) *Store {
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	if opt.Clock == nil {
		opt.Clock = clockwork.NewRealClock()
	}
	if opt.MinInterval == 0 {
		opt.MinInterval = DefaultMinInterval
	}
	return &Store{
		dir: dir, path: filepath.Join(dir, FileName), fs: osFS{},
		clk: opt.Clock, log: opt.Log.With("part", "state"), every: opt.MinInterval,
		kick:       make(chan struct{}, 1),
		warned:     make(map[string]time.Time),
		suppressed: make(map[string]int),
	}
}

// Path returns the state file's path.
func (s *Store) Path() string { return s.path }

// Load reads the state file and makes its document the latest. It never
// fails, as a lost counter must never keep the gate from working: doc is
// the document to start from in every case.
//
//   - No file (found false, warn nil): the first start; doc is the zero Doc.
//     Worth an INFO ("no state yet"), not a warning.
//   - A file that cannot be read, or is not a JSON object: doc is the zero
//     Doc, and the file is renamed aside (FileName.unreadable-TIME or
//     FileName.corrupt-TIME, TIME in UTC) for a person to look at.
//   - A known field of the wrong type: that field starts from its default,
//     the others are read, and the file is renamed aside too.
//
// In the last two cases warn says what happened and where the file went,
// for a WARN. Leftover temporary files of a write cut short are removed.
// Call Load once, before Run.
func (s *Store) Load() (doc Doc, found bool, warn error) {
	s.removeTemps()
	b, err := s.fs.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		s.start(Doc{}, nil)
		return Doc{}, false, nil
	}
	if err != nil {
		s.start(Doc{}, nil)
		return Doc{}, true, s.aside("unreadable", err.Error(), "starting from defaults")
	}
	d, bad, err := decode(b)
	if err != nil {
		s.start(Doc{}, nil)
		return Doc{}, true, s.aside("corrupt", err.Error(), "starting from defaults")
	}
	if len(bad) > 0 {
		s.start(d, nil)
		return d.Clone(), true, s.aside("corrupt", fmt.Sprintf("unreadable %s %s", plural(len(bad), "field", "fields"), strings.Join(bad, ", ")),
			"those start from defaults, the rest was read")
	}
	s.start(d, encode(d))
	return d.Clone(), true, nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// start makes d the latest document; written is what the file holds.
func (s *Store) start(d Doc, written []byte) {
	s.mu.Lock()
	s.latest = d.Clone()
	s.mu.Unlock()
	s.written = written
}

// aside renames a bad state file out of the way and says so.
func (s *Store) aside(kind, why, then string) error {
	to := s.path + "." + kind + "-" + s.clk.Now().UTC().Format("20060102T150405Z")
	if err := s.fs.Rename(s.path, to); err != nil {
		return fmt.Errorf("state %s: %s (%s); %s; moving it aside failed: %v", s.path, kind, why, then, err)
	}
	return fmt.Errorf("state %s: %s (%s): moved to %s; %s", s.path, kind, why, to, then)
}

const tempPattern = FileName + ".tmp-*"

// removeTemps removes temporary files left by a write that a crash or a
// power cut interrupted before its rename.
func (s *Store) removeTemps() {
	ents, err := s.fs.ReadDir(s.dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if ok, _ := filepath.Match(tempPattern, e.Name()); ok && e.Type().IsRegular() {
			if err := s.fs.Remove(filepath.Join(s.dir, e.Name())); err == nil {
				s.log.Info("removed the temporary file of an interrupted write", "file", e.Name())
			}
		}
	}
}

// Set makes d the document to write. It copies d and returns at once; the
// latest value wins, so a burst of Sets is written once. d replaces the
// whole document: build it from Load's or Latest's result (or use Update) so
// that the fields of a newer gated kept in it survive.
func (s *Store) Set(d Doc) {
	d = d.Clone()
	s.mu.Lock()
	s.latest = d
	s.mu.Unlock()
	s.due()
}

// Update changes the latest document with f and returns at once, like Set.
// f runs under the Store's lock: it must be quick and call no method of the
// Store, and must not keep the pointer.
func (s *Store) Update(f func(*Doc)) {
	s.mu.Lock()
	f(&s.latest)
	s.mu.Unlock()
	s.due()
}

// Latest returns a copy of the latest document, written or not.
func (s *Store) Latest() Doc {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.latest.Clone()
}

func (s *Store) due() {
	select {
	case s.kick <- struct{}{}:
	default: // a write is already due; it takes the latest document
	}
}

// Run writes the latest document whenever it changed, at most once every
// MinInterval, until ctx ends; then it writes the last one and returns.
// Each write is atomic: a temporary file in the same directory, written and
// fsynced, renamed over the state file, then the directory fsynced, so that
// a crash or a power cut at any point leaves the old file or the new one,
// never a mix. A document whose content is what the file holds is not
// written. A write that fails is logged (one WARN per kind of failure, op,
// per hour) and tried again a minute later or at the next change; gated
// runs on with the document in memory. Run returns after its last write,
// however long the disk takes. Call it once.
func (s *Store) Run(ctx context.Context) {
	var (
		last   time.Time // of the last attempt
		retry  clockwork.Timer
		retryC <-chan time.Time
	)
	defer func() {
		if retry != nil {
			retry.Stop()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			s.flush()
			return
		case <-s.kick:
		case <-retryC:
		}
		if wait := s.every - s.clk.Since(last); s.every > 0 && !last.IsZero() && wait > 0 {
			t := s.clk.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				s.flush()
				return
			case <-t.Chan():
			}
		}
		last = s.clk.Now()
		if retry != nil {
			retry.Stop()
			retry, retryC = nil, nil
		}
		if !s.flush() {
			retry = s.clk.NewTimer(retryEvery)
			retryC = retry.Chan()
		}
	}
}

// flush writes the latest document if the file does not hold it; false
// means the write failed.
func (s *Store) flush() bool {
	b := encode(s.Latest())
	if s.written != nil && bytes.Equal(b, s.written) {
		s.recovered()
		return true
	}
	renamed, op, err := s.write(b)
	if err != nil {
		if renamed {
			s.written = nil // the file changed, but may not survive a power cut
		}
		s.fail(op, err)
		return false
	}
	s.written = b
	s.recovered()
	return true
}

// recovered notes that the file holds the latest document after failures.
func (s *Store) recovered() {
	if s.failing {
		s.log.Info("state file up to date again", "path", s.path)
		s.failing = false
		clear(s.warned)
		clear(s.suppressed)
	}
}

// write replaces the state file with b, atomically. op names the step that
// failed; renamed says whether the file was replaced.
func (s *Store) write(b []byte) (renamed bool, op string, err error) {
	if err := s.fs.MkdirAll(s.dir, 0o700); err != nil {
		return false, "mkdir", err
	}
	f, err := s.fs.CreateTemp(s.dir, tempPattern)
	if err != nil {
		return false, "create", err
	}
	tmp := f.Name()
	if _, err := f.Write(b); err != nil {
		f.Close()
		s.fs.Remove(tmp)
		return false, "write", err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		s.fs.Remove(tmp)
		return false, "fsync", err
	}
	if err := f.Close(); err != nil {
		s.fs.Remove(tmp)
		return false, "close", err
	}
	if err := s.fs.Rename(tmp, s.path); err != nil {
		s.fs.Remove(tmp)
		return false, "rename", err
	}
	if err := s.fs.SyncDir(s.dir); err != nil {
		return true, "fsync dir", err
	}
	return true, "", nil
}

// fail logs a failed write: the first failure of each kind, then at most
// one an hour per kind, with the count of those not logged.
func (s *Store) fail(op string, err error) {
	s.failing = true
	now := s.clk.Now()
	if t, ok := s.warned[op]; ok && now.Sub(t) < warnEvery {
		s.suppressed[op]++
		return
	}
	args := []any{"path", s.path, "op", op, "err", err}
	if n := s.suppressed[op]; n > 0 {
		args = append(args, "suppressed", n)
	}
	s.warned[op], s.suppressed[op] = now, 0
	s.log.Warn("state not saved; gated runs on and tries again", args...)
}
