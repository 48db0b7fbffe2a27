package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"rocksaying.tw/gated/internal/gate"
	"rocksaying.tw/gated/internal/history"
	"rocksaying.tw/gated/internal/syncbuf"
	"rocksaying.tw/gated/internal/waitfor"
	"rocksaying.tw/gated/internal/webauth"
)

func TestHashPassword(t *testing.T) {
	old := stdin
	t.Cleanup(func() { stdin = old })
	stdin = strings.NewReader("correct horse\n")
	code, out, errOut := runGated(context.Background(), "-hash-password")
	if code != 0 || !strings.HasPrefix(out, "$2y$") {
		t.Fatalf("exit %d, %q %q; want 0 and a bcrypt hash", code, out, errOut)
	}
	users, err := webauth.ParseUsers(strings.NewReader("alice:"+out), "hashed")
	if err != nil || !users.Verify("alice", "correct horse") || users.Verify("alice", "correct horse\n") {
		t.Errorf("the hash does not verify the password (alone): %v", err)
	}
	stdin = strings.NewReader("")
	if code, _, errOut := runGated(context.Background(), "-hash-password"); code != 2 || !strings.Contains(errOut, "-hash-password") {
		t.Errorf("empty input: exit %d %q, want 2", code, errOut)
	}
}

func TestCommandEvent(t *testing.T) {
	for _, tc := range []struct {
		r    gate.Reply
		want history.Event
	}{
		{gate.Reply{Cmd: gate.CmdOpen, Cause: gate.CauseMQTT, Who: "phone-1", Status: gate.Status{State: gate.Opening}},
			history.Event{Kind: history.KindCommand, Command: "open", Source: "mqtt", Who: "phone-1", OK: true, State: "opening"}},
		{gate.Reply{Cmd: gate.CmdClose, Cause: gate.CauseDBus, Who: "uid 1000 (alice)", Status: gate.Status{State: gate.Open}, Err: &gate.RefusedError{Reason: gate.ReasonObstructed}},
			history.Event{Kind: history.KindCommand, Command: "close", Source: "dbus", Who: "uid 1000 (alice)", Error: "obstructed", State: "open"}},
		{gate.Reply{Cmd: gate.CmdStop, Cause: gate.CauseWeb, Who: "bob", Err: errors.New("outputs")},
			history.Event{Kind: history.KindCommand, Command: "stop", Source: "web", Who: "bob", Error: "refused"}},
	} {
		if got := commandEvent(tc.r); got != tc.want {
			t.Errorf("commandEvent(%s): got %+v, want %+v", tc.r.Cmd, got, tc.want)
		}
	}
	got := commandEvent(gate.Reply{Cmd: gate.CmdPosition, Target: 40, Cause: gate.CauseMQTT, Who: "ha", Status: gate.Status{State: gate.Opening}})
	if got.Position == nil || *got.Position != 40 {
		t.Errorf("a position command's event: position %v, want 40", got.Position)
	}
}

// TestStatusEvents: a status event has the position where it is known, and
// statuses that only move the position on are not recorded (they would bury
// who did what).
func TestStatusEvents(t *testing.T) {
	open := gate.Status{State: gate.Opening, Cause: gate.CauseWeb, Seq: 4, Position: 12, PositionKnown: true}
	if e := statusEvent(open); e.Position == nil || *e.Position != 12 || e.State != "opening" {
		t.Errorf("statusEvent: %+v, want opening at 12", e)
	}
	if e := statusEvent(gate.Status{State: gate.Stopped}); e.Position != nil {
		t.Errorf("an unknown position: %v, want null", *e.Position)
	}
	moved := open
	moved.Seq, moved.Position = 5, 25
	stopped := moved
	stopped.Seq, stopped.State = 6, gate.Stopped
	for _, tc := range []struct {
		st, last gate.Status
		want     bool
	}{
		{open, gate.Status{}, true},
		{moved, open, false},
		{stopped, moved, true},
	} {
		if got := worthRecording(tc.st, tc.last); got != tc.want {
			t.Errorf("worthRecording(%s #%d after #%d) = %v, want %v", tc.st.State, tc.st.Seq, tc.last.Seq, got, tc.want)
		}
	}
}

// TestWebAndHistory runs the daemon with the panel on: a command by HTTP
// is answered, recorded with its user, and still in the history after a
// restart; a state directory that cannot hold the store is a WARN, not a
// refused start.
func TestWebAndHistory(t *testing.T) {
	dir := t.TempDir()
	users := filepath.Join(dir, "users")
	if err := os.WriteFile(users, []byte("alice:$2y$04$.nqscZjsCWn65lDKTu7Vq.UTcb1afOb0Q59pCnTHYrm0f2vg2P/sy\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := writeConfig(t, "[gpio]\ndriver = \"sim\"\n[mqtt]\nbroker = \"\"\n[dbus]\nbus = \"none\"\n[web]\nlisten = \""+addr+"\"\nusers_file = \""+users+"\"\noperators = [\"alice\"]\n")
	state := filepath.Join(dir, "state")
	start := func(stateDir string) (stop func() string) {
		t.Helper()
		t.Setenv("STATE_DIRECTORY", stateDir)
		ctx, cancel := context.WithCancel(context.Background())
		var logs syncbuf.Buffer
		done := make(chan int, 1)
		go func() { done <- run(ctx, []string{"-config", cfg}, io.Discard, &logs) }()
		if !waitfor.Until(10*time.Second, func() bool {
			res, err := http.Get("http://" + addr + "/healthz")
			if err == nil {
				res.Body.Close()
			}
			return err == nil && res.StatusCode == 200
		}) {
			cancel()
			t.Fatalf("the panel did not answer:\n%s", logs.String())
		}
		return func() string {
			cancel()
			waitCleanStop(t, done, &logs)
			return logs.String()
		}
	}
	do := func(method, path, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+addr+path, strings.NewReader(body))
		req.SetBasicAuth("alice", "hunter2") // the hash above
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(res.Body)
		return res.StatusCode, b.String()
	}
	stop := start(state)
	if code, body := do("POST", "/api/command", `{"command":"alarm"}`); code != 200 || !strings.Contains(body, `"ok":true`) {
		t.Fatalf("alarm: %d %s", code, body)
	}
	stop()

	stop = start(state)
	code, body := do("GET", "/api/events", "")
	var evs []history.Event
	if err := json.Unmarshal([]byte(body), &evs); code != 200 || err != nil {
		t.Fatalf("events: %d %s %v", code, body, err)
	}
	found := false
	for _, e := range evs {
		found = found || (e.Kind == history.KindCommand && e.Command == "alarm" && e.Source == "web" && e.Who == "alice" && e.OK)
	}
	if !found {
		t.Errorf("after a restart, no alarm by alice (web) in %s", body)
	}
	stop()

	// A state directory that is a file: no history, the gate runs.
	notDir := filepath.Join(dir, "file")
	os.WriteFile(notDir, nil, 0o600)
	stop = start(notDir)
	if code, body := do("GET", "/api/events", ""); code != 200 || strings.TrimSpace(body) != "[]" {
		t.Errorf("without a history: %d %s, want 200 []", code, body)
	}
	if logs := stop(); !strings.Contains(logs, "level=WARN msg=\"event history unavailable") {
		t.Errorf("no WARN about the history:\n%s", logs)
	}
}
