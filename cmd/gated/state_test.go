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
