package main

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"rocksaying.tw/gated/internal/gate"
)

// TestMain keeps the tests' state files out of /var/lib/gated.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "gated-test-state-")
	if err != nil {
		panic(err)
	}
	os.Setenv("STATE_DIRECTORY", dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func TestStateDir(t *testing.T) {
	for _, tc := range []struct {
		name                string
		demo                bool
		stateDirectory, xdg string
		home                string
		want                string
	}{
		{"daemon under systemd", false, "/var/lib/gated", "/x", "/h", "/var/lib/gated"},
		{"daemon without systemd", false, "", "/x", "/h", "/var/lib/gated"},
		{"demo", true, "", "/x", "/h", "/x/gated"},
		{"demo without XDG_STATE_HOME", true, "", "", "/h", "/h/.local/state/gated"},
		{"demo under systemd", true, "/run/s", "/x", "/h", "/run/s"},
		{"several state directories", false, "/var/lib/gated:/other", "/x", "/h", "/var/lib/gated"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("STATE_DIRECTORY", tc.stateDirectory)
			t.Setenv("XDG_STATE_HOME", tc.xdg)
			t.Setenv("HOME", tc.home)
			if got := stateDir(tc.demo); got != tc.want {
				t.Errorf("stateDir(%v) = %q, want %q", tc.demo, got, tc.want)
			}
		})
	}
}

func TestKeeperRecordsAndRestores(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	k := openState(dir, false, log)
	if r := k.gateRestored(); r != (gate.Restored{}) {
		t.Fatalf("a first start restores %+v, want nothing", r)
	}
	at := time.Date(2026, 12, 2, 5, 0, 0, 0, time.UTC)
	k.record(gate.Status{State: gate.Faulted, Fault: gate.FaultSensorTest, Since: at, Openings: 7, Obstructions: 2, Faults: 3, TwoStrikes: true, Seq: 9})
	k.record(gate.Status{State: gate.Open, Since: at.Add(time.Minute), Openings: 8, Obstructions: 2, Faults: 3, TwoStrikes: true, Seq: 10})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	k.store.Run(ctx) // writes the latest document and returns

	again := openState(dir, false, log)
	want := gate.Restored{Counters: gate.Counters{Openings: 8, Obstructions: 2, Faults: 3}, Suspended: true}
	if r := again.gateRestored(); r != want {
		t.Errorf("restored %+v, want %+v", r, want)
	}
	if d := again.restored; d.LastFault != "sensor_test" || !d.LastFaultAt.Equal(at) {
		t.Errorf("last fault %q at %v, want sensor_test at %v", d.LastFault, d.LastFaultAt, at)
	}
	var nilKeeper *keeper
	if r := nilKeeper.gateRestored(); r != (gate.Restored{}) {
		t.Errorf("no keeper restores %+v", r)
	}
}
