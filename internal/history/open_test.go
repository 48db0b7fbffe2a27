// open_test.go holds the tests of opening, closing and the corrupt-file handling.

package history

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

func TestSeqContinuesAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		s.Add(cmdEvent(i))
	}
	if err := s.Close(); err != nil { // Close writes what is queued
		t.Fatal(err)
	}
	s = openStore(t, dir, Options{})
	if got := s.Stats().Events; got != 3 {
		t.Errorf("reopened store: Stats().Events = %d, want 3", got)
	}
	s.Add(cmdEvent(3))
	s.Add(cmdEvent(4))
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(span(5, 1), seqs(mustList(t, s, 0, 0))); diff != "" {
		t.Errorf("seqs (-want +got):\n%s", diff)
	}
}

func TestClose(t *testing.T) {
	s, err := Open(t.TempDir(), Options{Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	s.Add(cmdEvent(1))
	if st := s.Stats(); st.Queued != 0 || st.Added != 0 {
		t.Errorf("Add after Close: %+v", st)
	}
	if _, err := s.List(1, 0); !errors.Is(err, ErrClosed) {
		t.Errorf("List after Close: got %v, want ErrClosed", err)
	}
	if err := s.Flush(); !errors.Is(err, ErrClosed) {
		t.Errorf("Flush after Close: got %v, want ErrClosed", err)
	}
	if err := s.Run(context.Background()); err != nil {
		t.Errorf("Run after Close: %v", err)
	}
}

// damage breaks a closed store's file in one way or another.
var damage = []struct {
	name string
	fn   func(t *testing.T, path string)
}{
	{"not a store", func(t *testing.T, path string) {
		writeFile(t, path, []byte(strings.Repeat("this is not a bbolt file\n", 2000)))
	}},
	{"both meta pages zeroed", func(t *testing.T, path string) {
		b := readFile(t, path)
		clear(b[:2*os.Getpagesize()])
		writeFile(t, path, b)
	}},
	{"every page but the meta pages overwritten", func(t *testing.T, path string) {
		b := readFile(t, path)
		for i := 2 * os.Getpagesize(); i < len(b); i++ {
			b[i] = byte(i*7 + i>>8)
		}
		writeFile(t, path, b)
	}},
	{"truncated to its meta pages", func(t *testing.T, path string) {
		if err := os.Truncate(path, int64(2*os.Getpagesize())); err != nil {
			t.Fatal(err)
		}
	}},
	{"a key that is not a seq", func(t *testing.T, path string) {
		db, err := bolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if err := db.Update(func(tx *bolt.Tx) error {
			return tx.Bucket(bucket).Put([]byte("abc"), []byte("{}"))
		}); err != nil {
			t.Fatal(err)
		}
	}},
}

func TestOpenCorruptMovesItAside(t *testing.T) {
	for _, d := range damage {
		t.Run(d.name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := Open(dir, Options{Log: quiet})
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 3000; i++ { // several pages
				s.Add(cmdEvent(i))
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, FileName)
			d.fn(t, path)

			s, err = Open(dir, Options{Log: quiet})
			if !errors.Is(err, ErrCorrupt) {
				if s != nil {
					_ = s.Close()
				}
				t.Fatalf("Open: got %v, want ErrCorrupt", err)
			}
			t.Logf("Open: %v", err)
			aside, _ := filepath.Glob(path + ".corrupt-*")
			if len(aside) != 1 {
				t.Errorf("files moved aside: %v, want one", aside)
			}
			if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the bad file is still at %s: %v", path, err)
			}

			s = openStore(t, dir, Options{})
			s.Add(cmdEvent(1))
			if err := s.Flush(); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]uint64{1}, seqs(mustList(t, s, 0, 0))); diff != "" {
				t.Errorf("the next store (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOpenOtherErrorsLeaveTheFile(t *testing.T) {
	t.Run("locked by another process", func(t *testing.T) {
		dir := t.TempDir()
		openStore(t, dir, Options{})
		s, err := Open(dir, Options{Log: quiet, lockTimeout: 20 * time.Millisecond})
		if err == nil {
			_ = s.Close()
			t.Fatal("second Open: got no error")
		}
		if errors.Is(err, ErrCorrupt) || !errors.Is(err, berrors.ErrTimeout) {
			t.Errorf("second Open: got %v, want a lock timeout", err)
		}
		if aside, _ := filepath.Glob(filepath.Join(dir, "*.corrupt-*")); len(aside) != 0 {
			t.Errorf("a locked store was moved aside: %v", aside)
		}
	})
	t.Run("dir is a file", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "f")
		writeFile(t, f, nil)
		if s, err := Open(filepath.Join(f, "sub"), Options{Log: quiet}); err == nil || errors.Is(err, ErrCorrupt) {
			_ = s.Close()
			t.Errorf("Open: got %v, want an error other than ErrCorrupt", err)
		}
	})
}
