package state

// Long on purpose: every failure of the atomic write (each step of temp file, fsync, rename,
// directory fsync) has its own case here, next to the fake file system that injects it.

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jonboulle/clockwork"

	"rocksaying.tw/gated/internal/syncbuf"
)

var t0 = time.Date(2026, 11, 22, 10, 15, 3, 0, time.UTC)

// hookFS is the real file system with steps that fail or hang on demand,
// and counts of the writes begun and finished.
type hookFS struct {
	osFS
	mu                                     sync.Mutex
	creates, renames                       int
	readErr, createErr, syncErr, renameErr error
	syncDirErr, removeErr                  error
	stuck                                  chan struct{} // non-nil: Write waits until it is closed
	writing                                chan struct{} // a Write began (capacity 1)
	renamed                                chan struct{} // a rename succeeded
}

func newHookFS() *hookFS {
	return &hookFS{writing: make(chan struct{}, 1), renamed: make(chan struct{}, 100)}
}

func (h *hookFS) ReadFile(name string) ([]byte, error) {
	h.mu.Lock()
	err := h.readErr
	h.mu.Unlock()
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: name, Err: err}
	}
	return h.osFS.ReadFile(name)
}

func (h *hookFS) CreateTemp(dir, pattern string) (file, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.creates++
	if h.createErr != nil {
		return nil, &fs.PathError{Op: "open", Path: dir, Err: h.createErr}
	}
	f, err := h.osFS.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	return &hookFile{file: f, h: h}, nil
}

func (h *hookFS) Rename(from, to string) error {
	h.mu.Lock()
	err := h.renameErr
	h.mu.Unlock()
	if err != nil {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
	}
	if err := h.osFS.Rename(from, to); err != nil {
		return err
	}
	if filepath.Base(to) == FileName {
		h.mu.Lock()
		h.renames++
		h.mu.Unlock()
		h.renamed <- struct{}{}
	}
	return nil
}

func (h *hookFS) Remove(name string) error {
	h.mu.Lock()
	err := h.removeErr
	h.mu.Unlock()
	if err != nil {
		return err
	}
	return h.osFS.Remove(name)
}

func (h *hookFS) SyncDir(dir string) error {
	h.mu.Lock()
	err := h.syncDirErr
	h.mu.Unlock()
	if err != nil {
		return err
	}
	return h.osFS.SyncDir(dir)
}

func (h *hookFS) set(f func(h *hookFS)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f(h)
}

func (h *hookFS) counts() (creates, renames int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.creates, h.renames
}

type hookFile struct {
	file
	h *hookFS
}

func (f *hookFile) Write(p []byte) (int, error) {
	f.h.mu.Lock()
	stuck := f.h.stuck
	f.h.mu.Unlock()
	select {
	case f.h.writing <- struct{}{}:
	default:
	}
	if stuck != nil {
		<-stuck
	}
	return f.file.Write(p)
}

func (f *hookFile) Sync() error {
	f.h.mu.Lock()
	err := f.h.syncErr
	f.h.mu.Unlock()
	if err != nil {
		f.file.Sync()
		return err
	}
	return f.file.Sync()
}

// newStore returns a Store on a new directory with a hookFS, a fake clock
// and a log the test can read.
func newStore(t *testing.T, minInterval time.Duration) (*Store, *hookFS, *clockwork.FakeClock, *syncbuf.Buffer) {
	t.Helper()
	clk := clockwork.NewFakeClockAt(t0)
	var logs syncbuf.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s := New(t.TempDir(), Options{Log: log, Clock: clk, MinInterval: minInterval})
	h := newHookFS()
	s.fs = h
	return s, h, clk, &logs
}

func writeFile(t *testing.T, s *Store, content string) {
	t.Helper()
	if err := os.WriteFile(s.Path(), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, s *Store) string {
	t.Helper()
	b, err := os.ReadFile(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// dirNames lists the state directory.
func dirNames(t *testing.T, s *Store) []string {
	t.Helper()
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

var docCmp = cmp.AllowUnexported(Doc{})

func TestDirFrom(t *testing.T) {
	for _, tc := range []struct{ env, want string }{
		{"", DefaultDir},
		{"/var/lib/gated", "/var/lib/gated"},
		{"/var/lib/gated:/var/lib/other", "/var/lib/gated"},
		{":/var/lib/second", "/var/lib/second"},
		{":", DefaultDir},
	} {
		if got := dirFrom(tc.env); got != tc.want {
			t.Errorf("dirFrom(%q) = %q, want %q", tc.env, got, tc.want)
		}
	}
	t.Setenv("STATE_DIRECTORY", "/tmp/a:/tmp/b")
	if got := Dir(); got != "/tmp/a" {
		t.Errorf("Dir() with STATE_DIRECTORY=/tmp/a:/tmp/b = %q, want /tmp/a", got)
	}
}

func TestEncodeLayout(t *testing.T) {
	d := Doc{
		Openings: 12, Obstructions: 3, Faults: 1, Suspended: true,
		LastFault: "travel_timeout", LastFaultAt: time.Date(2026, 11, 22, 18, 15, 3, 5e8, time.FixedZone("CST", 8*3600)),
		OpenRuns: []time.Duration{8020 * time.Millisecond, 8 * time.Second},
	}
	want := `{
  "version": 1,
  "openings": 12,
  "obstructions": 3,
  "faults": 1,
  "auto_close_suspended": true,
  "last_fault": "travel_timeout",
  "last_fault_at": "2026-11-22T10:15:03.5Z",
  "open_runs": [
    "8.02s",
    "8s"
  ],
  "close_runs": []
}
`
	if diff := cmp.Diff(want, string(encode(d))); diff != "" {
		t.Errorf("encode (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(`{
  "version": 1,
  "openings": 0,
  "obstructions": 0,
  "faults": 0,
  "auto_close_suspended": false,
  "last_fault": "",
  "last_fault_at": null,
  "open_runs": [],
  "close_runs": []
}
`, string(encode(Doc{}))); diff != "" {
		t.Errorf("encode of the zero Doc (-want +got):\n%s", diff)
	}
}

func TestAddRun(t *testing.T) {
	var runs []time.Duration
	for i := 1; i <= 7; i++ {
		runs = AddRun(runs, time.Duration(i)*time.Second)
	}
	want := []time.Duration{3 * time.Second, 4 * time.Second, 5 * time.Second, 6 * time.Second, 7 * time.Second}
	if diff := cmp.Diff(want, runs); diff != "" {
		t.Errorf("AddRun kept (-want +got):\n%s", diff)
	}
}

func TestLoadMissing(t *testing.T) {
	s, _, _, _ := newStore(t, -1)
	d, found, warn := s.Load()
	if found || warn != nil {
		t.Errorf("Load of no file: found %v, warn %v; want false, nil", found, warn)
	}
	if diff := cmp.Diff(Doc{}, d, docCmp); diff != "" {
		t.Errorf("Load of no file (-want +got):\n%s", diff)
	}
	// A missing directory is a first start too.
	s2 := New(filepath.Join(t.TempDir(), "none"), Options{})
	if _, found, warn := s2.Load(); found || warn != nil {
		t.Errorf("Load in a missing directory: found %v, warn %v; want false, nil", found, warn)
	}
}

func TestLoadKeepsUnknownFields(t *testing.T) {
	s, h, _, _ := newStore(t, -1)
	const file = `{"version": 3, "openings": 7, "faults": 2, "last_fault": "gpio",
 "last_fault_at": "2026-11-01T08:00:00+08:00", "close_runs": ["9s", "9.5s"],
 "history_cursor": {"seq": 812}, "zz": [1, 2]}`
	writeFile(t, s, file)
	d, found, warn := s.Load()
	if !found || warn != nil {
		t.Fatalf("Load: found %v, warn %v; want true, nil", found, warn)
	}
	if d.Openings != 7 || d.Faults != 2 || d.LastFault != "gpio" || !d.LastFaultAt.Equal(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)) ||
		len(d.CloseRuns) != 2 || d.CloseRuns[1] != 9500*time.Millisecond {
		t.Errorf("Load read %+v", d)
	}
	// The same content, however formatted, is not written again.
	s.Set(d)
	if !s.flush() {
		t.Fatal("flush failed")
	}
	if c, _ := h.counts(); c != 0 {
		t.Errorf("%d writes of an unchanged document, want 0", c)
	}
	s.Update(func(d *Doc) { d.Openings++ })
	if !s.flush() {
		t.Fatal("flush failed")
	}
	got := readFile(t, s)
	for _, w := range []string{`"openings": 8`, `"history_cursor": {`, `"seq": 812`, `"zz": [`, `"version": 1`} {
		if !strings.Contains(got, w) {
			t.Errorf("written file lacks %s:\n%s", w, got)
		}
	}
}

func TestLoadCorrupt(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		want       Doc // what Load starts from
		warn       string
	}{
		{name: "empty", file: "", warn: "corrupt"},
		{name: "zeros after a power cut", file: "\x00\x00\x00\x00", warn: "corrupt"},
		{name: "truncated", file: `{"version":1,"openings":4`, warn: "corrupt"},
		{name: "null", file: "null", warn: "corrupt"},
		{name: "array", file: "[1,2]", warn: "corrupt"},
		{name: "too large", file: `{"x":"` + strings.Repeat("a", MaxFileSize) + `"}`, warn: "corrupt"},
		{name: "bad field", file: `{"version":1,"openings":"many","faults":2,"open_runs":["-1s"]}`, want: Doc{Faults: 2}, warn: "fields open_runs, openings"},
		{name: "negative counter", file: `{"obstructions":-1,"openings":5}`, want: Doc{Openings: 5}, warn: "field obstructions"},
		{name: "bad version", file: `{"version":"one","openings":5}`, want: Doc{Openings: 5}, warn: "field version"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _, _, _ := newStore(t, -1)
			writeFile(t, s, tc.file)
			d, found, warn := s.Load()
			if !found || warn == nil {
				t.Fatalf("Load: found %v, warn %v; want true and a warning", found, warn)
			}
			aside := s.Path() + ".corrupt-20261122T101503Z"
			for _, w := range []string{tc.warn, aside} {
				if !strings.Contains(warn.Error(), w) {
					t.Errorf("warning %q does not say %q", warn, w)
				}
			}
			if diff := cmp.Diff(tc.want, d, docCmp); diff != "" {
				t.Errorf("Load (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{filepath.Base(aside)}, dirNames(t, s)); diff != "" {
				t.Errorf("directory (-want +got):\n%s", diff)
			}
			if b, err := os.ReadFile(aside); err != nil || string(b) != tc.file {
				t.Errorf("the file moved aside holds %.40q, %v; want what it held", b, err)
			}
			// The next write starts a good file.
			s.Update(func(d *Doc) { d.Openings++ })
			if !s.flush() {
				t.Fatal("flush failed")
			}
			if _, _, warn := New(s.dir, Options{}).Load(); warn != nil {
				t.Errorf("Load after the rewrite: %v", warn)
			}
		})
	}
}

func TestLoadUnreadable(t *testing.T) {
	s, h, _, _ := newStore(t, -1)
	writeFile(t, s, `{"openings":3}`)
	h.set(func(h *hookFS) { h.readErr = syscall.EIO })
	d, found, warn := s.Load()
	if !found || warn == nil || !strings.Contains(warn.Error(), "unreadable") || !strings.Contains(warn.Error(), "input/output error") {
		t.Fatalf("Load: found %v, warn %v; want true and an unreadable warning", found, warn)
	}
	if d.Openings != 0 {
		t.Errorf("Load of an unreadable file: openings %d, want 0", d.Openings)
	}
	if _, err := os.Stat(s.Path() + ".unreadable-20261122T101503Z"); err != nil {
		t.Errorf("the unreadable file was not moved aside: %v", err)
	}
}

// A crash between the write of the temporary file and its rename leaves the
// old file as it was, and the next start removes the temporary file.
func TestCrashBeforeRenameKeepsOldFile(t *testing.T) {
	s, h, _, _ := newStore(t, -1)
	s.Load()
	s.Set(Doc{Openings: 1})
	if !s.flush() {
		t.Fatal("first flush failed")
	}
	old := readFile(t, s)

	// The rename never happens and, as after a crash, nothing cleans up.
	h.set(func(h *hookFS) { h.renameErr, h.removeErr = syscall.EIO, syscall.EIO })
	s.Set(Doc{Openings: 2})
	if s.flush() {
		t.Fatal("flush with a failing rename succeeded")
	}
	if got := readFile(t, s); got != old {
		t.Errorf("state file after a failed rename:\n%s\nwant the old one:\n%s", got, old)
	}
	if n := len(dirNames(t, s)); n != 2 {
		t.Fatalf("directory %v: want the state file and a leftover temporary file", dirNames(t, s))
	}

	// The next start reads the old file and removes the leftover.
	s2 := New(s.dir, Options{})
	d, _, warn := s2.Load()
	if warn != nil || d.Openings != 1 {
		t.Errorf("Load after the crash: openings %d, warn %v; want 1, nil", d.Openings, warn)
	}
	if diff := cmp.Diff([]string{FileName}, dirNames(t, s)); diff != "" {
		t.Errorf("directory after Load (-want +got):\n%s", diff)
	}
}

func TestFailedStepKeepsOldFile(t *testing.T) {
	for _, tc := range []struct {
		name    string
		fail    func(h *hookFS)
		op      string
		renamed bool // the new file is in place
	}{
		{name: "create", fail: func(h *hookFS) { h.createErr = syscall.EACCES }, op: "op=create"},
		{name: "fsync", fail: func(h *hookFS) { h.syncErr = syscall.EIO }, op: "op=fsync"},
		{name: "rename", fail: func(h *hookFS) { h.renameErr = syscall.EROFS }, op: "op=rename"},
		{name: "fsync dir", fail: func(h *hookFS) { h.syncDirErr = syscall.EIO }, op: `op="fsync dir"`, renamed: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, h, _, logs := newStore(t, -1)
			s.Load()
			s.Set(Doc{Openings: 1})
			if !s.flush() {
				t.Fatal("first flush failed")
			}
			old := readFile(t, s)
			h.set(tc.fail)
			s.Set(Doc{Openings: 2})
			if s.flush() {
				t.Fatal("flush succeeded")
			}
			got := readFile(t, s)
			if tc.renamed != (got != old) {
				t.Errorf("after a failed %s the file holds:\n%s", tc.name, got)
			}
			if n := len(dirNames(t, s)); n != 1 {
				t.Errorf("directory %v: want only the state file", dirNames(t, s))
			}
			if !strings.Contains(logs.String(), tc.op) {
				t.Errorf("log lacks %s:\n%s", tc.op, logs)
			}
			// Once the disk works again, going back to the old document
			// writes it if the failed write had put the new one in place.
			h.set(func(h *hookFS) { h.createErr, h.syncErr, h.renameErr, h.syncDirErr = nil, nil, nil, nil })
			c0, _ := h.counts()
			s.Set(Doc{Openings: 1})
			if !s.flush() {
				t.Fatal("flush after the repair failed")
			}
			want := 0
			if tc.renamed {
				want = 1
			}
			if c, _ := h.counts(); c != c0+want {
				t.Errorf("%d writes after the repair, want %d", c-c0, want)
			}
			if got := readFile(t, s); got != old {
				t.Errorf("after the repair the file holds:\n%s\nwant:\n%s", got, old)
			}
			if !strings.Contains(logs.String(), "state file up to date again") {
				t.Errorf("no INFO on recovery:\n%s", logs)
			}
		})
	}
}

func TestUnchangedContentNotWritten(t *testing.T) {
	s, h, _, _ := newStore(t, -1)
	s.Load()
	steps := []struct {
		set   Doc
		total int // writes so far
	}{
		{Doc{}, 1}, // no file yet: the zero document is written
		{Doc{}, 1},
		{Doc{Openings: 1}, 2},
		{Doc{Openings: 1}, 2},
		{Doc{Openings: 1, OpenRuns: []time.Duration{time.Second}}, 3},
		{Doc{Openings: 1, OpenRuns: []time.Duration{time.Second}}, 3},
	}
	for i, st := range steps {
		s.Set(st.set)
		if !s.flush() {
			t.Fatalf("step %d: flush failed", i)
		}
		if c, _ := h.counts(); c != st.total {
			t.Errorf("step %d: %d writes, want %d", i, c, st.total)
		}
	}
}

// deadline bounds a test's waits for the writer: a deadlock detector, not a
// speed limit.
const deadline = 30 * time.Second

// waitCtx is a context for clk.BlockUntilContext that ends at deadline.
func waitCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	t.Cleanup(cancel)
	return ctx
}

// block waits until n waiters are on clk, or fails the test.
func block(t *testing.T, ctx context.Context, clk *clockwork.FakeClock, n int, what string) {
	t.Helper()
	if err := clk.BlockUntilContext(ctx, n); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// recv waits for a signal from the writer, or fails the test.
func recv(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(deadline):
		t.Fatalf("no %s", what)
	}
}

// run starts s.Run and returns a function that stops it and waits.
func run(t *testing.T, s *Store) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(ctx)
	}()
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
	t.Cleanup(stop)
	return stop
}

// Many Sets while a write waits for MinInterval are one write, of the last
// document, when the interval is over; and the last document is written at
// exit without waiting for it.
func TestCoalescing(t *testing.T) {
	s, h, clk, _ := newStore(t, time.Second)
	s.Load()
	stop := run(t, s)
	ctx := waitCtx(t)

	s.Set(Doc{Openings: 1})
	recv(t, h.renamed, "first write") // at once
	for i := 2; i <= 100; i++ {
		s.Update(func(d *Doc) { d.Openings = uint64(i) })
	}
	block(t, ctx, clk, 1, "Run waits for the interval")
	if c, _ := h.counts(); c != 1 {
		t.Errorf("%d writes before the interval ended, want 1", c)
	}
	clk.Advance(time.Second)
	recv(t, h.renamed, "write")
	if got := readFile(t, s); !strings.Contains(got, `"openings": 100`) {
		t.Errorf("file after the interval:\n%s\nwant openings 100", got)
	}

	s.Set(Doc{Openings: 101})
	block(t, ctx, clk, 1, "the writer to wait")
	stop() // before the interval ends
	if got := readFile(t, s); !strings.Contains(got, `"openings": 101`) {
		t.Errorf("file after Run returned:\n%s\nwant openings 101", got)
	}
	if c, r := h.counts(); c != 3 || r != 3 {
		t.Errorf("%d writes (%d renames) for 101 documents, want 3", c, r)
	}
}

// Set and Update never wait for the disk: with the writer stuck in a write,
// a thousand of them return, and the last one is written once the disk
// answers.
func TestSetNeverBlocksOnStuckDisk(t *testing.T) {
	s, h, _, _ := newStore(t, -1)
	stuck := make(chan struct{})
	h.set(func(h *hookFS) { h.stuck = stuck })
	s.Load()
	stop := run(t, s)
	release := sync.OnceFunc(func() { close(stuck) })
	t.Cleanup(release) // before stop, which waits for the writer

	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Set(Doc{Openings: 1})
		<-h.writing // the writer is stuck in Write
		for i := 2; i <= 1000; i++ {
			s.Set(Doc{Openings: uint64(i)})
			s.Update(func(d *Doc) { d.Faults++ })
			_ = s.Latest()
		}
	}()
	select {
	case <-done:
	case <-time.After(deadline):
		t.Fatal("Set blocked while the disk was stuck")
	}
	release()
	stop()
	if got := readFile(t, s); !strings.Contains(got, `"openings": 1000`) || !strings.Contains(got, `"faults": 1,`) {
		t.Errorf("file after the disk came back:\n%s\nwant openings 1000, faults 1", got)
	}
	if c, _ := h.counts(); c > 3 {
		t.Errorf("%d writes for 1000 documents, want at most 3", c)
	}
}

// A directory that cannot be written costs one WARN per kind of failure per
// hour; Run tries again by itself, and says when it works again.
func TestWriteFailuresThrottledAndRetried(t *testing.T) {
	s, h, clk, logs := newStore(t, -1)
	s.Load()
	h.set(func(h *hookFS) { h.createErr = syscall.EACCES })
	stop := run(t, s)
	ctx := waitCtx(t)
	warns := func() int { return strings.Count(logs.String(), "level=WARN") }

	s.Set(Doc{Openings: 5})
	block(t, ctx, clk, 1, "failed, and armed the retry")
	for range 4 {
		clk.Advance(time.Minute)
		block(t, ctx, clk, 1, "tried again, and re-armed")
	}
	if n := warns(); n != 1 {
		t.Errorf("%d WARNs for 5 create failures within the hour, want 1:\n%s", n, logs)
	}
	h.set(func(h *hookFS) { h.createErr, h.renameErr = nil, syscall.EROFS })
	clk.Advance(time.Minute)
	block(t, ctx, clk, 1, "the writer to wait")
	if warns() != 2 {
		t.Fatalf("%d WARNs after a new kind of failure, want 2:\n%s", warns(), logs)
	}
	h.set(func(h *hookFS) { h.renameErr, h.createErr = nil, syscall.EACCES })
	clk.Advance(time.Hour)
	block(t, ctx, clk, 1, "the writer to wait")
	if n := warns(); n != 3 || !strings.Contains(logs.String(), "suppressed=4") {
		t.Errorf("%d WARNs an hour later, want 3 with a suppressed count:\n%s", n, logs)
	}

	h.set(func(h *hookFS) { h.createErr = nil })
	clk.Advance(time.Minute) // the retry, with no new Set
	recv(t, h.renamed, "write")
	stop()
	if got := readFile(t, s); !strings.Contains(got, `"openings": 5`) {
		t.Errorf("file after the directory works again:\n%s", got)
	}
	if !strings.Contains(logs.String(), "state file up to date again") {
		t.Errorf("no INFO when writes work again:\n%s", logs)
	}
}

func TestErrorsAreWrapped(t *testing.T) {
	// Load's warning names the file and the cause; a missing file is not
	// an error of any kind.
	s, h, _, _ := newStore(t, -1)
	writeFile(t, s, "{")
	h.set(func(h *hookFS) { h.renameErr = syscall.EROFS })
	_, _, warn := s.Load()
	if warn == nil || !strings.Contains(warn.Error(), s.Path()) || !strings.Contains(warn.Error(), "moving it aside failed") {
		t.Errorf("warning %v: want the path and the failed move", warn)
	}
	if errors.Is(warn, fs.ErrNotExist) {
		t.Errorf("warning %v wraps ErrNotExist", warn)
	}
}
