package main

import (
	"os"
	"testing"
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
