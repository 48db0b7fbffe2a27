package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"rocksaying.tw/gated/internal/syncbuf"
	"rocksaying.tw/gated/internal/waitfor"
)

// TestSignalsStopCleanly: invariant 6 needs the process to catch every
// signal that ends it in normal use (Ctrl-C, systemctl stop, a closed
// terminal), so that the gate loop returns and switches every output off.
// An uncaught signal would kill gated with the relays as they were.
func TestSignalsStopCleanly(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "gated")
	if out, err := exec.Command(goTool, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cfg := writeConfig(t, "[gpio]\ndriver = \"sim\"\n[mqtt]\nbroker = \"\"\n[dbus]\nbus = \"none\"\n")
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP} {
		t.Run(sig.String(), func(t *testing.T) {
			var log syncbuf.Buffer
			cmd := exec.Command(bin, "-config", cfg)
			cmd.Stderr = &log
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			if !waitfor.Until(10*time.Second, func() bool { return strings.Contains(log.String(), "state=closed") }) {
				cmd.Process.Kill()
				t.Fatalf("no closed state logged in 10s:\n%s", log.String())
			}
			cmd.Process.Signal(sig)
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("after %v: %v, want exit 0\n%s", sig, err, log.String())
				}
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				t.Fatalf("still running 10s after %v", sig)
			}
			if !strings.Contains(log.String(), "gated stopping") {
				t.Errorf("after %v: no clean stop logged:\n%s", sig, log.String())
			}
		})
	}
}
