package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"rocksaying.tw/gated/internal/syncbuf"
	"rocksaying.tw/gated/internal/waitfor"
)

func writeConfig(t *testing.T, s string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "gated.toml")
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// waitCleanStop waits up to 10s for run, whose context has ended, to
// return exit status 0 on done; log is what it wrote meanwhile.
func waitCleanStop(t *testing.T, done <-chan int, log fmt.Stringer) {
	t.Helper()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d after a clean stop, want 0:\n%s", code, log)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("gated did not stop within 10s of its context ending")
	}
}

func runGated(ctx context.Context, args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(ctx, args, &o, &e)
	return code, o.String(), e.String()
}

func TestCommandLine(t *testing.T) {
	password := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(password, []byte("hunter2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	good := writeConfig(t, "[gpio]\ndriver = \"sim\"\n[mqtt]\nusername = \"u\"\npassword_file = \""+password+"\"\n")
	bad := writeConfig(t, "[gpio]\ndriver = \"sim\"\n\n[gate]\ntravel_timeot = \"10s\"\n")
	for _, tc := range []struct {
		name        string
		args        []string
		code        int
		stdout      string // substring
		stderr      string // substring
		notAnywhere string
	}{
		{name: "version", args: []string{"-version"}, code: 0, stdout: "gated dev"},
		{name: "help", args: []string{"-h"}, code: 0, stderr: "usage: gated"},
		{name: "unknown flag", args: []string{"-frobnicate"}, code: 2, stderr: "flag provided but not defined"},
		{name: "argument", args: []string{"extra"}, code: 2, stderr: "usage: gated"},
		{name: "log level", args: []string{"-log-level", "loud", "-check-config", "-config", good}, code: 2, stderr: `-log-level "loud"`},
		{name: "check good", args: []string{"-check-config", "-config", good}, code: 0, stdout: "travel_timeout = \"30s\"", notAnywhere: "hunter2"},
		{name: "password file missing", args: []string{"-check-config", "-config", writeConfig(t, "[gpio]\ndriver = \"sim\"\n[mqtt]\npassword_file = \"/nonexistent/secret\"\n")}, code: 2, stderr: ":4: mqtt.password_file: open /nonexistent/secret"},
		{name: "check bad", args: []string{"-check-config", "-config", bad}, code: 2, stderr: bad + ":5: gate.travel_timeot: unknown key"},
		{name: "password in url", args: []string{"-check-config", "-config", writeConfig(t, "[gpio]\ndriver = \"sim\"\n[mqtt]\nbroker = \"tcp://u:secret@localhost:1883\"\n")}, code: 2, stderr: "mqtt.broker", notAnywhere: "secret"},
		{name: "missing file", args: []string{"-check-config", "-config", "/nonexistent/gated.toml"}, code: 2, stderr: "/nonexistent/gated.toml"},
		{name: "simulate overrides driver", args: []string{"-check-config", "-simulate", "-config", writeConfig(t, "[gpio]\nopen_limit=\"GPIO17\"\nclosed_limit=\"GPIO27\"\nmotor_open=\"GPIO23\"\nmotor_close=\"GPIO24\"\n")}, code: 0, stdout: `driver = "sim"`},
		{name: "demo without config", args: []string{"-check-config", "-demo"}, code: 0, stdout: `name = "demo"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runGated(context.Background(), tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, stdout, stderr)
			}
			if !strings.Contains(stdout, tc.stdout) {
				t.Errorf("stdout %q\nwant it to contain %q", stdout, tc.stdout)
			}
			if !strings.Contains(stderr, tc.stderr) {
				t.Errorf("stderr %q\nwant it to contain %q", stderr, tc.stderr)
			}
			if tc.notAnywhere != "" && strings.Contains(stdout+stderr, tc.notAnywhere) {
				t.Errorf("output shows %q:\n%s%s", tc.notAnywhere, stdout, stderr)
			}
		})
	}
}

func TestUnknownPinIsAConfigError(t *testing.T) {
	cfg := writeConfig(t, "[gpio]\nopen_limit = \"GPIO17\"\nclosed_limit = \"NOPE9\"\nmotor_open = \"GPIO23\"\nmotor_close = \"GPIO24\"\n[mqtt]\nbroker = \"\"\n[dbus]\nbus = \"none\"\n")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	code, _, stderr := runGated(ctx, "-config", cfg)
	if code != 2 {
		t.Fatalf("exit %d, want 2; stderr:\n%s", code, stderr)
	}
	if want := cfg + `:3: gpio.closed_limit: no pin named "NOPE9"`; !strings.Contains(stderr, want) {
		t.Errorf("stderr %q\nwant it to contain %q", stderr, want)
	}
}

func TestSimulateStartsAndStopsCleanly(t *testing.T) {
	cfg := writeConfig(t, "[gpio]\ndriver = \"sim\"\n[mqtt]\nbroker = \"\"\n[dbus]\nbus = \"none\"\n")
	ctx, cancel := context.WithCancel(context.Background())
	var o, e syncbuf.Buffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"-config", cfg}, &o, &e) }()
	if !waitfor.Until(10*time.Second, func() bool { return strings.Contains(e.String(), "state=closed") }) {
		cancel()
		t.Fatalf("no closed state logged in 10s:\n%s", e.String())
	}
	cancel()
	waitCleanStop(t, done, &e)
	if !strings.Contains(e.String(), "gated stopping") {
		t.Errorf("no stop logged:\n%s", e.String())
	}
}
