package history

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

const crashDirEnv = "HISTORY_CRASH_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashDirEnv); dir != "" {
		crashChild(dir, os.Getenv("HISTORY_CRASH_ROUND"))
	}
	os.Exit(m.Run())
}

// crashChild is the writer that TestKilledMidFlood kills: it floods its
// store and reports on stdout how many events each committed transaction
// has made durable, until it is killed.
func crashChild(dir, round string) {
	s, err := Open(dir, Options{BatchSize: 100, FlushInterval: time.Millisecond, QueueSize: 4096, Log: quiet})
	if err != nil {
		fmt.Println("open failed:", err)
		os.Exit(1)
	}
	s.afterTx = func(wrote, pruned int, err error) {
		if err == nil && wrote > 0 {
			fmt.Printf("written %d\n", s.Stats().Written) // after the commit returned
		}
	}
	go func() { _ = s.Run(context.Background()) }()
	for i := 0; ; i++ {
		s.Add(Event{Kind: KindCommand, Command: "open", Source: "mqtt", Who: round + "-" + strconv.Itoa(i), OK: true, State: "opening"})
	}
}

// A writer killed with SIGKILL in the middle of a flood leaves a store
// that opens, passes bbolt's consistency check, holds every event whose
// transaction had committed, and numbers its events 1, 2, 3, … with no gap,
// across several kills. (A power cut differs from a kill in losing the page
// cache too; bbolt fdatasyncs the data pages before the meta page that makes
// them current, so it differs only in which batch is the last one kept.)
func TestKilledMidFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the crash test floods a store three times")
	}
	dir := t.TempDir()
	var stored uint64
	for round := 1; round <= 3; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, "HISTORY_CRASH_ROUND="+strconv.Itoa(round))
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); errors.Is(err, syscall.ENOEXEC) {
			// Under qemu-user without binfmt_misc: the binary can run
			// only through qemu, which os.Args[0] does not name.
			t.Skipf("cannot re-exec the test binary: %v", err)
		} else if err != nil {
			t.Fatal(err)
		}
		var durable uint64
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			if n, ok := strings.CutPrefix(line, "written "); ok {
				durable, _ = strconv.ParseUint(n, 10, 64)
				if durable >= 3000 { // mid-flood: the child is still writing
					break
				}
				continue
			}
			t.Logf("child: %s", line)
		}
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		if durable < 3000 {
			t.Fatalf("round %d: the child reported only %d events written", round, durable)
		}

		s, err := Open(dir, Options{Log: quiet})
		if err != nil {
			t.Fatalf("round %d: Open after SIGKILL: %v", round, err)
		}
		checkBolt(t, s.db)
		evs := all(t, s)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if got := uint64(len(evs)); got < stored+durable {
			t.Errorf("round %d: %d events in the store, want at least %d before plus %d committed", round, got, stored, durable)
		}
		last := -1
		for i, e := range evs {
			if e.Seq != uint64(i+1) {
				t.Fatalf("round %d: event %d has seq %d, want %d (no gaps)", round, i, e.Seq, i+1)
			}
			r, n, _ := strings.Cut(e.Who, "-")
			k, err := strconv.Atoi(n)
			if err != nil || e.Kind != KindCommand || e.State != "opening" {
				t.Fatalf("round %d: event %d is not what was written: %+v", round, i, e)
			}
			if r == strconv.Itoa(round) {
				if k <= last {
					t.Fatalf("round %d: event %d is %s after %d: out of order", round, i, e.Who, last)
				}
				last = k
			}
		}
		t.Logf("round %d: killed after %d committed; %d events stored", round, durable, uint64(len(evs))-stored)
		stored = uint64(len(evs))
	}
}

// checkBolt runs bbolt's own consistency check: page reachability, double
// frees, key order.
func checkBolt(t *testing.T, db *bolt.DB) {
	t.Helper()
	if err := db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			t.Errorf("bbolt check: %v", err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
