package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"rocksaying.tw/gated/internal/dbuslink"
	"rocksaying.tw/gated/internal/dbuslink/dbustest"
	"rocksaying.tw/gated/internal/gate/gatetest"
	"rocksaying.tw/gated/internal/history"
)

func TestEvents(t *testing.T) {
	t.Setenv("TZ", "UTC")
	store, err := history.Open(t.TempDir(), history.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	at := time.Date(2026, 12, 2, 10, 15, 3, 0, time.UTC)
	store.Add(history.Event{At: at, Kind: history.KindStatus, State: "closed", Cause: "startup"})
	store.Add(history.Event{At: at.Add(time.Second), Kind: history.KindCommand, Command: "open", Source: "dbus", Who: "uid 1000 (alice)", OK: true, State: "opening"})
	store.Add(history.Event{At: at.Add(2 * time.Second), Kind: history.KindCommand, Command: "close", Source: "mqtt", Who: "phone", Error: "obstructed", State: "opening"})
	if err := store.Flush(); err != nil {
		t.Fatal(err)
	}
	bus := dbustest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	svc, err := dbuslink.Start(ctx, dbuslink.Config{Bus: bus.Address}, gatetest.Start(t), dbuslink.Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), History: store})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { svc.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	a := "--address=" + bus.Address
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{a, "events"}, 0, "2026-12-02 10:15:05 close by phone (mqtt): refused: obstructed\n2026-12-02 10:15:04 open by uid 1000 (alice) (dbus): ok, opening\n2026-12-02 10:15:03 closed (startup)\n"},
		{[]string{a, "events", "1"}, 0, "2026-12-02 10:15:05 close by phone (mqtt): refused: obstructed\n"},
		{[]string{a, "events", "1", "--json"}, 0, `[{"seq":3,"at":"2026-12-02T10:15:05.000Z","kind":"command","command":"close","source":"mqtt","who":"phone","ok":false,"error":"obstructed","state":"opening"}]` + "\n"},
		{[]string{a, "events", "0"}, 2, ""},
		{[]string{a, "events", "x"}, 2, ""},
		{[]string{a, "events", "1", "2"}, 2, ""},
	} {
		t.Run(strings.Join(tc.args[1:], " "), func(t *testing.T) {
			code, out, errOut := gatectl(tc.args...)
			if code != tc.code || out != tc.want {
				t.Errorf("got %d %q (stderr %q), want %d %q", code, out, errOut, tc.code, tc.want)
			}
		})
	}
}
