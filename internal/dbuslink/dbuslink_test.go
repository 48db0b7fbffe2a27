package dbuslink_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"rocksaying.tw/gated/internal/dbuslink"
	"rocksaying.tw/gated/internal/dbuslink/dbusapi"
	"rocksaying.tw/gated/internal/dbuslink/dbustest"
	"rocksaying.tw/gated/internal/gate"
	"rocksaying.tw/gated/internal/gate/gatetest"
	"rocksaying.tw/gated/internal/syncbuf"
	"rocksaying.tw/gated/internal/waitfor"
)

// fixture is a gate served on a private bus, and a client connection.
type fixture struct {
	bus    *dbustest.Daemon
	gate   *gatetest.Gate
	svc    *dbuslink.Service
	client *dbus.Conn
	obj    dbus.BusObject
	log    *syncbuf.Buffer
	stop   func() error // ends Run and returns its error
}

func newFixture(t *testing.T, opt dbuslink.Options) *fixture {
	t.Helper()
	f := &fixture{bus: dbustest.Start(t), gate: gatetest.Start(t), log: &syncbuf.Buffer{}}
	if opt.Log == nil {
		opt.Log = slog.New(slog.NewTextHandler(f.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	svc, err := dbuslink.Start(ctx, dbuslink.Config{Bus: f.bus.Address}, f.gate, opt)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	f.svc = svc
	runCtx, stopRun := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(runCtx) }()
	var once sync.Once
	var runErr error
	f.stop = func() error {
		once.Do(func() {
			stopRun()
			select {
			case runErr = <-done:
			case <-time.After(10 * time.Second):
				runErr = errors.New("Run did not return 10s after its context ended")
			}
		})
		return runErr
	}
	t.Cleanup(func() {
		if err := f.stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	f.client = connect(t, f.bus.Address)
	f.obj = f.client.Object(dbusapi.Name, dbusapi.Path)
	return f
}

func connect(t *testing.T, addr string) *dbus.Conn {
	t.Helper()
	c, err := dbus.Connect(addr)
	if err != nil {
		t.Fatalf("client connect %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func call(obj dbus.BusObject, method string, args ...any) *dbus.Call {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return obj.CallWithContext(ctx, method, 0, args...)
}

// signals subscribes the client to the link's signals.
func signals(t *testing.T, c *dbus.Conn) chan *dbus.Signal {
	t.Helper()
	if err := c.AddMatchSignal(dbus.WithMatchSender(dbusapi.Name), dbus.WithMatchObjectPath(dbusapi.Path)); err != nil {
		t.Fatalf("AddMatch: %v", err)
	}
	ch := make(chan *dbus.Signal, 256)
	c.Signal(ch)
	return ch
}

func TestStatusChanged(t *testing.T) {
	f := newFixture(t, dbuslink.Options{})
	statuses, unsubscribe := f.gate.Subscribe()
	defer unsubscribe()
	sigs := signals(t, f.client)
	if err := call(f.obj, dbusapi.Iface+".Open").Err; err != nil {
		t.Fatalf("Open: %v", err)
	}
	want := f.gate.WaitFor("opening", func(st gate.Status) bool { return st.State == gate.Opening })
	// The exact bytes of the status with the same seq, as MQTT gets them.
	byseq := map[uint64]string{}
	timeout := time.After(5 * time.Second)
	for {
		select {
		case st := <-statuses:
			byseq[st.Seq] = string(st.JSON())
			continue
		case s := <-sigs:
			if s.Name != dbusapi.Signal {
				continue
			}
			if len(s.Body) != 1 {
				t.Fatalf("StatusChanged: got body %v, want one string", s.Body)
			}
			payload, ok := s.Body[0].(string)
			if !ok {
				t.Fatalf("StatusChanged: got %T, want string", s.Body[0])
			}
			var st gate.Status
			if err := st.UnmarshalJSON([]byte(payload)); err != nil {
				t.Fatalf("StatusChanged payload %q: %v", payload, err)
			}
			for len(statuses) > 0 {
				st := <-statuses
				byseq[st.Seq] = string(st.JSON())
			}
			if b, ok := byseq[st.Seq]; ok && b != payload {
				t.Errorf("StatusChanged seq %d: got %s, want %s", st.Seq, payload, b)
			}
			if st.Seq == want.Seq {
				if payload != string(want.JSON()) {
					t.Errorf("StatusChanged: got %s, want %s", payload, want.JSON())
				}
				return
			}
		case <-timeout:
			t.Fatalf("no StatusChanged with seq %d in 5s", want.Seq)
		}
	}
}

func TestPropertiesChanged(t *testing.T) {
	f := newFixture(t, dbuslink.Options{})
	sigs := signals(t, f.client)
	get := func(name string) any {
		t.Helper()
		v, err := f.obj.GetProperty(dbusapi.Iface + "." + name)
		if err != nil {
			t.Fatalf("Get %s: %v", name, err)
		}
		return v.Value()
	}
	if got := get("State"); got != "closed" {
		t.Errorf("State: got %v, want closed", got)
	}
	var all map[string]dbus.Variant
	if err := call(f.obj, "org.freedesktop.DBus.Properties.GetAll", dbusapi.Iface).Store(&all); err != nil || len(all) != 5 {
		t.Errorf("GetAll: got %v, %v; want 5 properties", all, err)
	}

	for _, tc := range []struct {
		name   string
		action func()
		prop   string
		want   any
	}{
		{"obstruct", func() { f.gate.Set(f.gate.Obstruction, true) }, "Obstructed", true},
		{"clear", func() { f.gate.Set(f.gate.Obstruction, false) }, "Obstructed", false},
		{"alarm", func() { call(f.obj, dbusapi.Iface+".Alarm") }, "Alarm", true},
		{"open", func() { call(f.obj, dbusapi.Iface+".Open") }, "State", "opening"},
		{"both limits", func() { f.gate.Set(f.gate.OpenLimit, true) }, "Fault", "limit_conflict"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.action()
			timeout := time.After(5 * time.Second)
			for {
				select {
				case s := <-sigs:
					if s.Name != "org.freedesktop.DBus.Properties.PropertiesChanged" {
						continue
					}
					if iface, _ := s.Body[0].(string); iface != dbusapi.Iface {
						t.Fatalf("PropertiesChanged: got interface %v, want %s", s.Body[0], dbusapi.Iface)
					}
					changed, _ := s.Body[1].(map[string]dbus.Variant)
					v, ok := changed[tc.prop]
					if !ok || v.Value() != tc.want {
						continue
					}
					if got := get(tc.prop); got != tc.want {
						t.Errorf("Get %s after PropertiesChanged: got %v, want %v", tc.prop, got, tc.want)
					}
					return
				case <-timeout:
					t.Fatalf("no PropertiesChanged %s=%v in 5s", tc.prop, tc.want)
				}
			}
		})
	}
}

func TestSecondStart(t *testing.T) {
	f := newFixture(t, dbuslink.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	other := gatetest.Start(t)
	svc, err := dbuslink.Start(ctx, dbuslink.Config{Bus: f.bus.Address}, other, dbuslink.Options{Log: quiet})
	if err == nil {
		svc.Run(canceled())
		t.Fatal("second Start: got no error, want the name already owned")
	}
	if !errors.Is(err, dbuslink.ErrNameOwned) {
		t.Errorf("second Start: got %v, want ErrNameOwned", err)
	}
	if want := "dbus: name tw.rocksaying.Gate is already owned"; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("second Start: got %q, want it to start with %q", err, want)
	}
	// The first keeps serving.
	if err := call(f.obj, dbusapi.Iface+".Open").Err; err != nil {
		t.Errorf("Open on the first service: %v", err)
	}
	if st := f.gate.Status(); st.State != gate.Opening {
		t.Errorf("first gate: got %s, want opening", st.State)
	}
	if st := other.Status(); st.State != gate.Closed {
		t.Errorf("second gate: got %s, want closed (untouched)", st.State)
	}
}

func canceled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

func TestStartErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	g := gatetest.Start(t)
	for _, tc := range []struct {
		bus, want string
	}{
		{"none", `dbus: bus "none"`},
		{"unix:path=" + t.TempDir() + "/nobus", "dbus: connect to unix:path="},
		{"bogus:", "dbus: connect to bogus: bus"},
	} {
		t.Run(tc.bus, func(t *testing.T) {
			_, err := dbuslink.Start(ctx, dbuslink.Config{Bus: tc.bus}, g, dbuslink.Options{Log: quiet})
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("Start(%q): got %v, want an error starting %q", tc.bus, err, tc.want)
			}
		})
	}
}

func TestRunReleasesName(t *testing.T) {
	f := newFixture(t, dbuslink.Options{})
	if err := f.stop(); err != nil {
		t.Fatalf("Run: got %v, want nil", err)
	}
	var has bool
	if err := f.client.BusObject().Call("org.freedesktop.DBus.NameHasOwner", 0, dbusapi.Name).Store(&has); err != nil || has {
		t.Errorf("after Run: NameHasOwner got %v, %v; want false", has, err)
	}
}

func TestReconnect(t *testing.T) {
	f := newFixture(t, dbuslink.Options{Backoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	if !f.svc.Connected() {
		t.Errorf("Connected after Start: false")
	}
	f.bus.Restart()
	// The gate goes on while the bus is away.
	if _, err := f.gate.Do(context.Background(), gate.CmdAlarm, gate.CauseMQTT); err != nil {
		t.Fatalf("Do while the bus is away: %v", err)
	}
	c := connect(t, f.bus.Address)
	obj := c.Object(dbusapi.Name, dbusapi.Path)
	waitFor(t, "the name back", func() bool {
		var has bool
		return c.BusObject().Call("org.freedesktop.DBus.NameHasOwner", 0, dbusapi.Name).Store(&has) == nil && has
	})
	if v, err := obj.GetProperty(dbusapi.Iface + ".Alarm"); err != nil || v.Value() != true {
		t.Errorf("Alarm after reconnect: got %v, %v; want true", v, err)
	}
	if err := call(obj, dbusapi.Iface+".Silence").Err; err != nil {
		t.Errorf("Silence after reconnect: %v", err)
	}
	if !strings.Contains(f.log.String(), "lost the bus connection") {
		t.Errorf("log: got %s, want the loss logged", f.log.String())
	}
	waitFor(t, "Connected after the reconnection", f.svc.Connected)
	if err := f.stop(); err != nil || f.svc.Connected() {
		t.Errorf("after Run: %v, Connected %v; want false", err, f.svc.Connected())
	}
}

// TestFrozenBus shows that a bus that stops reading blocks only the link:
// the gate takes every command while the link's writes are stuck, and the
// link catches up with the latest status when the bus wakes.
func TestFrozenBus(t *testing.T) {
	f := newFixture(t, dbuslink.Options{})
	f.bus.Freeze()
	thawed := false
	defer func() {
		if !thawed {
			f.bus.Thaw()
		}
	}()
	// Toggle the alarm until the link is clearly stuck: the socket buffers
	// are full and the gate has gone on by 1000 statuses without it.
	var st gate.Status
	for i := 0; st.Seq < f.svc.Published()+1000; i++ {
		if i == 200000 {
			t.Fatalf("the link never blocked (gate at seq %d, link at %d): the test proves nothing", st.Seq, f.svc.Published())
		}
		cmd := gate.CmdAlarm
		if i%2 == 1 {
			cmd = gate.CmdSilence
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		var err error
		st, err = f.gate.Do(ctx, cmd, gate.CauseMQTT)
		cancel()
		if err != nil {
			t.Fatalf("command %d with the bus frozen: %v", i, err)
		}
	}
	st, err := f.gate.Do(context.Background(), gate.CmdAlarm, gate.CauseMQTT)
	if err != nil {
		t.Fatal(err)
	}
	f.bus.Thaw()
	thawed = true
	waitFor(t, "the link to catch up", func() bool { return f.svc.Published() == st.Seq })
	if v, err := f.obj.GetProperty(dbusapi.Iface + ".Alarm"); err != nil || v.Value() != true {
		t.Errorf("Alarm after the thaw: got %v, %v; want true", v, err)
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	if !waitfor.Until(10*time.Second, ok) {
		t.Fatalf("waited 10s for %s", what)
	}
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))
