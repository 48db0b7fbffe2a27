package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"rocksaying.tw/gated/internal/dbuslink"
	"rocksaying.tw/gated/internal/dbuslink/dbustest"
	"rocksaying.tw/gated/internal/gate"
	"rocksaying.tw/gated/internal/gate/gatetest"
	"rocksaying.tw/gated/internal/syncbuf"
	"rocksaying.tw/gated/internal/waitfor"
)

// served is a gate served by the D-Bus link on a private bus.
type served struct {
	bus  *dbustest.Daemon
	gate *gatetest.Gate
}

func serve(t *testing.T) served {
	t.Helper()
	s := served{bus: dbustest.Start(t), gate: gatetest.Start(t)}
	ctx, cancel := context.WithCancel(context.Background())
	svc, err := dbuslink.Start(ctx, dbuslink.Config{Bus: s.bus.Address}, s.gate, dbuslink.Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		cancel()
		t.Fatalf("dbuslink.Start: %v", err)
	}
	done := make(chan struct{})
	go func() { svc.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return s
}

func gatectl(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(context.Background(), args, &o, &e)
	return code, o.String(), e.String()
}

func TestCommands(t *testing.T) {
	s := serve(t)
	a := "--address=" + s.bus.Address
	// Between the limits, so every command changes something.
	s.gate.Set(s.gate.ClosedLimit, false)
	s.gate.WaitFor("stopped", func(st gate.Status) bool { return st.State == gate.Stopped })
	for _, tc := range []struct {
		args []string
		want func(gate.Status) bool
	}{
		{[]string{a, "open"}, func(st gate.Status) bool { return st.State == gate.Opening && st.Cause == gate.CauseDBus }},
		{[]string{a, "stop"}, func(st gate.Status) bool { return st.State == gate.Stopped && st.Cause == gate.CauseDBus }},
		{[]string{"-address", s.bus.Address, "close"}, func(st gate.Status) bool { return st.State == gate.Closing && st.Cause == gate.CauseDBus }},
		{[]string{a, "alarm"}, func(st gate.Status) bool { return st.Alarm }},
		{[]string{a, "SILENCE"}, func(st gate.Status) bool { return !st.Alarm }},
		{[]string{a, "position", "100"}, func(st gate.Status) bool { return st.State == gate.Opening && st.Cause == gate.CauseDBus }},
		{[]string{"position", "0", a}, func(st gate.Status) bool { return st.State == gate.Closing && st.Cause == gate.CauseDBus }},
	} {
		t.Run(strings.Join(tc.args[1:], " "), func(t *testing.T) {
			code, out, errOut := gatectl(tc.args...)
			if code != 0 || out != "" || errOut != "" {
				t.Fatalf("gatectl %v: got code %d, stdout %q, stderr %q; want 0 and no output", tc.args, code, out, errOut)
			}
			if st := s.gate.Status(); !tc.want(st) {
				t.Errorf("gatectl %v: gate status %s", tc.args, st.JSON())
			}
		})
	}
}

func TestStatus(t *testing.T) {
	s := serve(t)
	a := "--address=" + s.bus.Address
	want := string(s.gate.Status().JSON()) + "\n"
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"json", []string{a, "--json", "status"}, want},
		{"json after the command, one dash", []string{"-address", s.bus.Address, "status", "-json"}, want},
		{"human", []string{a, "status"}, "gate:       test\nstate:      closed\nalarm:      off\nobstructed: no\nfault:      none\ncause:      input\nsince:      "},
		{"human: position and travel times", []string{a, "status"}, "position:   0 %\nopen time:  not known yet: learned from the first full run\nclose time: not known yet: learned from the first full run\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := gatectl(tc.args...)
			if code != 0 || !(strings.HasPrefix(out, tc.want) || strings.Contains(out, tc.want) && tc.name != "human") || errOut != "" {
				t.Errorf("gatectl %v: got code %d, stdout %q, stderr %q; want 0, stdout holding %q", tc.args, code, out, errOut, tc.want)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	s := serve(t)
	empty := dbustest.Start(t) // a bus without gated
	a := "--address=" + s.bus.Address
	s.gate.Set(s.gate.Obstruction, true)
	s.gate.WaitFor("obstructed", func(st gate.Status) bool { return st.Obstructed })
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr []string
	}{
		{"refused", []string{a, "close"}, 1, "", []string{"gatectl: close: refused: the obstruction sensor is active", "tw.rocksaying.Gate.Error.Obstructed"}},
		{"no gated", []string{"--address=" + empty.Address, "status"}, 1, "", []string{"gated is not on this bus", "org.freedesktop.DBus.Error.ServiceUnknown"}},
		{"no bus", []string{"--address=unix:path=" + t.TempDir() + "/nobus", "open"}, 1, "", []string{"gatectl: connect to the bus:", "no such file"}},
		{"no command", []string{a}, 2, "", []string{"gatectl: no command", "usage: gatectl"}},
		{"unknown command", []string{a, "explode"}, 2, "", []string{`unknown command "explode"`, "usage: gatectl"}},
		{"extra argument", []string{a, "open", "now"}, 2, "", []string{`unexpected argument "now" after open`}},
		{"position without a number", []string{a, "position"}, 2, "", []string{"position needs a number"}},
		{"position out of range", []string{a, "position", "101"}, 2, "", []string{`position "101": want a number 0 (closed) to 100 (open)`}},
		{"position not a number", []string{a, "position", "half"}, 2, "", []string{`position "half"`}},
		{"position two numbers", []string{a, "position", "40", "50"}, 2, "", []string{`unexpected argument "50" after position`}},
		{"position unknown", []string{a, "position", "40"}, 1, "", []string{"gatectl: position: refused:", "tw.rocksaying.Gate.Error.PositionUnknown"}},
		{"two buses", []string{"--system", "--session", "status"}, 2, "", []string{"exclude each other"}},
		{"bad flag", []string{"--bogus", "status"}, 2, "", []string{"-bogus", "usage: gatectl"}},
		{"help", []string{"-h"}, 0, "usage: gatectl [--system | --session | --address ADDR] [--json] [--text] COMMAND", nil},
		{"help, two dashes", []string{"--help"}, 0, "usage: gatectl", nil},
		{"version", []string{"--version"}, 0, "gatectl dev\n", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := gatectl(tc.args...)
			if code != tc.code {
				t.Errorf("gatectl %v: got code %d, want %d (stderr %q)", tc.args, code, tc.code, errOut)
			}
			if !strings.HasPrefix(out, tc.stdout) || (tc.stdout == "" && out != "") {
				t.Errorf("gatectl %v: got stdout %q, want it to start with %q", tc.args, out, tc.stdout)
			}
			for _, w := range tc.stderr {
				if !strings.Contains(errOut, w) {
					t.Errorf("gatectl %v: got stderr %q, want it to contain %q", tc.args, errOut, w)
				}
			}
		})
	}
	if st := s.gate.Status(); st.State != gate.Closed || st.Moving {
		t.Errorf("after the errors: got %s, want closed and still", st.JSON())
	}
}

func waitOutput(t *testing.T, what string, b interface{ String() string }, ok func(string) bool) {
	t.Helper()
	if !waitfor.Until(5*time.Second, func() bool { return ok(b.String()) }) {
		t.Fatalf("waited 5s for %s; output so far: %q", what, b.String())
	}
}

func TestWatch(t *testing.T) {
	s := serve(t)
	for _, tc := range []struct {
		name  string
		json  bool
		first string // the current status
		alarm string // after Alarm
	}{
		{"human", false, "test: closed (cause input, seq 2)\n", "test: closed, alarm (cause input, seq 3)\n"},
		{"json", true, `"state":"closed"`, `"alarm":true`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.gate.Do(context.Background(), gate.CmdSilence, gate.CauseMQTT); err != nil {
				t.Fatal(err)
			}
			args := []string{"--address", s.bus.Address, "watch"}
			if !tc.json {
				args = append(args, "--text") // JSON documents are the default (SPEC.md)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var out, errOut syncbuf.Buffer
			done := make(chan int, 1)
			go func() { done <- run(ctx, args, &out, &errOut) }()
			waitOutput(t, "the current status", &out, func(s string) bool { return strings.Contains(s, tc.first) })
			if _, err := s.gate.Do(context.Background(), gate.CmdAlarm, gate.CauseMQTT); err != nil {
				t.Fatal(err)
			}
			waitOutput(t, "the alarm", &out, func(s string) bool { return strings.Contains(s, tc.alarm) })
			cancel()
			select {
			case code := <-done:
				if code != 0 || errOut.String() != "" {
					t.Errorf("watch: got code %d, stderr %q; want 0 and nothing", code, errOut.String())
				}
			case <-time.After(5 * time.Second):
				t.Fatal("watch did not return 5s after its context ended")
			}
			if lines := strings.Count(out.String(), "\n"); lines != 2 {
				t.Errorf("watch: got %d lines, want 2 (current, alarm): %q", lines, out.String())
			}
		})
	}
}

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

// build compiles gatectl once for the tests that run the real binary.
func build(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "gatectl")
		if err != nil {
			buildErr = err
			return
		}
		binary = filepath.Join(dir, "gatectl")
		goTool, err := exec.LookPath("go")
		if err != nil {
			buildErr = err
			return
		}
		out, err := exec.Command(goTool, "build", "-o", binary, ".").CombinedOutput()
		if err != nil {
			buildErr = &buildError{err, out}
		}
	})
	if buildErr != nil {
		t.Fatalf("go build: %v", buildErr)
	}
	return binary
}

type buildError struct {
	err error
	out []byte
}

func (e *buildError) Error() string { return e.err.Error() + ": " + string(e.out) }

func TestMain(m *testing.M) {
	code := m.Run()
	if binary != "" {
		os.RemoveAll(filepath.Dir(binary))
	}
	os.Exit(code)
}

func TestBinary(t *testing.T) {
	s := serve(t)
	bin := build(t)
	t.Run("status", func(t *testing.T) {
		out, err := exec.Command(bin, "--address", s.bus.Address, "status", "--json").Output()
		if want := string(s.gate.Status().JSON()) + "\n"; err != nil || string(out) != want {
			t.Errorf("gatectl status --json: got %q, %v; want %q", out, err, want)
		}
	})
	t.Run("refused", func(t *testing.T) {
		s.gate.Set(s.gate.Obstruction, true)
		defer s.gate.Set(s.gate.Obstruction, false)
		s.gate.WaitFor("obstructed", func(st gate.Status) bool { return st.Obstructed })
		var errOut bytes.Buffer
		c := exec.Command(bin, "--address", s.bus.Address, "close")
		c.Stderr = &errOut
		err := c.Run()
		if c.ProcessState.ExitCode() != 1 || !strings.Contains(errOut.String(), "tw.rocksaying.Gate.Error.Obstructed") {
			t.Errorf("gatectl close while obstructed: got %v, stderr %q; want exit 1 and the error", err, errOut.String())
		}
	})
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run("watch until "+sig.String(), func(t *testing.T) {
			var out syncbuf.Buffer
			c := exec.Command(bin, "--address", s.bus.Address, "watch")
			c.Stdout = &out
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			waitOutput(t, "a status document", &out, func(s string) bool { return strings.Contains(s, `"gate":"test"`) })
			c.Process.Signal(sig)
			done := make(chan error, 1)
			go func() { done <- c.Wait() }()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("gatectl watch after %v: got %v, want exit 0", sig, err)
				}
			case <-time.After(5 * time.Second):
				c.Process.Kill()
				t.Fatalf("gatectl watch still running 5s after %v", sig)
			}
		})
	}
}

func TestStatusShowsTheCounters(t *testing.T) {
	s := serve(t)
	code, out, errOut := gatectl("--address="+s.bus.Address, "status")
	for _, want := range []string{"\nwarning:    off\n", "\nauto_close: off\n", "\ncounters:   0 openings, 0 obstructions, 0 faults\n"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("gatectl status: code %d, stdout %q, stderr %q; want it to contain %q", code, out, errOut, want)
		}
	}
}
