package dbuslink_test

import (
	"os"
	"os/user"
	"strconv"
	"sync"
	"testing"
	"time"

	"rocksaying.tw/gated/internal/dbuslink"
	"rocksaying.tw/gated/internal/dbuslink/dbusapi"
	"rocksaying.tw/gated/internal/history"
)

type listHistory struct {
	mu    sync.Mutex
	evs   []history.Event
	limit int
}

func (h *listHistory) List(limit int, before uint64) ([]history.Event, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.limit = limit
	return h.evs, nil
}

func (h *listHistory) asked() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.limit
}

func TestGetEvents(t *testing.T) {
	h := &listHistory{evs: []history.Event{{Seq: 7, At: time.Date(2026, 12, 2, 10, 15, 3, 512e6, time.UTC), Kind: history.KindCommand, Command: "open", Source: "dbus", Who: "uid 1000 (alice)", OK: true, State: "opening"}}}
	f := newFixture(t, dbuslink.Options{History: h})
	var s string
	if err := call(f.obj, dbusapi.Iface+".GetEvents", uint32(5)).Store(&s); err != nil {
		t.Fatalf("GetEvents: %v", err)
	}
	want := `[{"seq":7,"at":"2026-12-02T10:15:03.512Z","kind":"command","command":"open","source":"dbus","who":"uid 1000 (alice)","ok":true,"error":"","state":"opening"}]`
	if s != want || h.asked() != 5 {
		t.Errorf("GetEvents(5): got %s (List limit %d), want %s (limit 5)", s, h.asked(), want)
	}
	if err := call(f.obj, dbusapi.Iface+".GetEvents", uint32(1<<31)).Store(&s); err != nil || h.asked() != history.MaxListLimit {
		t.Errorf("GetEvents(2³¹): %v, List limit %d, want %d", err, h.asked(), history.MaxListLimit)
	}
	g := newFixture(t, dbuslink.Options{})
	if err := call(g.obj, dbusapi.Iface+".GetEvents", uint32(0)).Store(&s); err != nil || s != "[]" {
		t.Errorf("GetEvents without a history: got %q, %v; want []", s, err)
	}
}

// TestCallerRecorded: the gate's record of a D-Bus command names the
// caller by uid and user name.
func TestCallerRecorded(t *testing.T) {
	f := newFixture(t, dbuslink.Options{})
	recs, cancel := f.gate.SubscribeCommands()
	defer cancel()
	if err := call(f.obj, dbusapi.Iface+".Alarm").Err; err != nil {
		t.Fatalf("Alarm: %v", err)
	}
	uid := strconv.Itoa(os.Getuid())
	want := "uid " + uid
	if u, err := user.LookupId(uid); err == nil {
		want += " (" + u.Username + ")"
	}
	if r := <-recs; r.Who != want || r.Cmd != "alarm" {
		t.Errorf("record: %s by %q, want alarm by %q", r.Cmd, r.Who, want)
	}
}
