package main

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"rocksaying.tw/gated/internal/sim"
	"rocksaying.tw/gated/internal/syncbuf"
)

// TestExitWithAnOutputOn: invariant 6 when it cannot be kept. An output
// that cannot be switched off on the way out is logged at ERROR and gated
// exits 1, so systemd and the person reading the journal know the relay
// may still be on.
func TestExitWithAnOutputOn(t *testing.T) {
	sims := make(chan *sim.Gate, 1)
	newSim = func(cfg sim.Config, clk clockwork.Clock) *sim.Gate {
		s := sim.New(cfg, clk)
		sims <- s
		return s
	}
	t.Cleanup(func() { newSim = sim.New })
	// READY=1 on the notify socket says the gate has started.
	sock := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", sock)

	cfg := writeConfig(t, "[gpio]\ndriver = \"sim\"\n[mqtt]\nbroker = \"\"\n[dbus]\nbus = \"none\"\n")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var o, e syncbuf.Buffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"-config", cfg}, &o, &e) }()

	conn.SetReadDeadline(time.Now().Add(10 * time.Second)) // a bound on gated, not a wait for a timer
	buf := make([]byte, 4096)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("no READY=1 from gated: %v\n%s", err, e.String())
		}
		if strings.Contains(string(buf[:n]), "READY=1") {
			break
		}
	}
	s := <-sims
	if err := s.FailOutput("motor_open", true); err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case code := <-done:
		if code != exitFailure {
			t.Errorf("exit %d, want %d:\n%s", code, exitFailure, e.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("gated did not stop within 10s of its context ending")
	}
	logs := e.String()
	for _, want := range []string{
		`level=ERROR msg="switching the outputs off on exit failed: trying again"`,
		`level=ERROR msg="outputs may still be on"`,
		`level=ERROR msg="gated stopped"`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %s:\n%s", want, logs)
		}
	}
}
