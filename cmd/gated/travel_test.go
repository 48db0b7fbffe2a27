package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"rocksaying.tw/gated/internal/gate"
	"rocksaying.tw/gated/internal/position"
	"rocksaying.tw/gated/internal/state"
)

// TestLearnedTravelTimesSurviveARestart: the runs the gate learns go to the
// state file and come back at the next start; a corrupt file, or runs no
// gate could have, mean learning again with a WARN.
func TestLearnedTravelTimesSurviveARestart(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("STATE_DIRECTORY", dir)
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))

	// First run: two full runs learned.
	k := openState(dir, false, log)
	var gc gate.Config
	restoreTravel(&gc, k.restored, log)
	if len(gc.Samples.Open)+len(gc.Samples.Close) != 0 {
		t.Fatalf("first start: samples %+v, want none", gc.Samples)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); k.store.Run(ctx) }()
	learned := position.Samples{Open: []time.Duration{8 * time.Second, 8100 * time.Millisecond}, Close: []time.Duration{7900 * time.Millisecond}}
	saveTravel(k.store)(learned)
	cancel()
	wg.Wait()

	// A restart: the same runs.
	gc = gate.Config{}
	restoreTravel(&gc, openState(dir, false, log).restored, log)
	if !slices.Equal(gc.Samples.Open, learned.Open) || !slices.Equal(gc.Samples.Close, learned.Close) {
		t.Fatalf("after a restart: %+v, want %+v", gc.Samples, learned)
	}
	if !strings.Contains(logs.String(), "learned travel times restored") {
		t.Errorf("no INFO about the restored times:\n%s", logs.String())
	}

	for _, tc := range []struct{ name, file, warn string }{
		{"corrupt", "{not json", "state file"},
		{"runs no gate has", `{"version":1,"open_runs":["2h"],"close_runs":[]}`, "learning them again"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(filepath.Join(dir, state.FileName), []byte(tc.file), 0o600); err != nil {
				t.Fatal(err)
			}
			logs.Reset()
			gc := gate.Config{}
			restoreTravel(&gc, openState(dir, false, log).restored, log)
			if len(gc.Samples.Open)+len(gc.Samples.Close) != 0 {
				t.Errorf("samples %+v, want none: learn again", gc.Samples)
			}
			if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), tc.warn) {
				t.Errorf("want a WARN saying %q, got:\n%s", tc.warn, logs.String())
			}
		})
	}
}
