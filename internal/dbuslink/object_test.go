package dbuslink_test

import (
	"context"
	"encoding/xml"
	"errors"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/introspect"

	"rocksaying.tw/gated/internal/dbuslink"
	"rocksaying.tw/gated/internal/dbuslink/dbusapi"
	"rocksaying.tw/gated/internal/dbuslink/dbustest"
	"rocksaying.tw/gated/internal/gate"
	"rocksaying.tw/gated/internal/gate/gatetest"
)

func TestMethods(t *testing.T) {
	f := newFixture(t, dbuslink.Options{})
	// Between the limits, so that Stop stops and Close closes; no status
	// would show a limit released during the motion.
	f.gate.Set(f.gate.ClosedLimit, false)
	f.gate.WaitFor("stopped", func(st gate.Status) bool { return st.State == gate.Stopped })
	for _, tc := range []struct {
		method string
		want   func(gate.Status) bool
		desc   string
		after  func()
	}{
		{"Open", func(st gate.Status) bool { return st.State == gate.Opening && st.Moving }, "opening, moving", nil},
		{"Stop", func(st gate.Status) bool { return st.State == gate.Stopped && !st.Moving }, "stopped", nil},
		{"Close", func(st gate.Status) bool { return st.State == gate.Closing && st.Moving }, "closing, moving", nil},
		{"Alarm", func(st gate.Status) bool { return st.Alarm }, "alarm on", nil},
		{"Silence", func(st gate.Status) bool { return !st.Alarm }, "alarm off", nil},
	} {
		t.Run(tc.method, func(t *testing.T) {
			if err := call(f.obj, dbusapi.Iface+"."+tc.method).Err; err != nil {
				t.Fatalf("%s: got error %v, want none", tc.method, err)
			}
			// The reply comes after the gate took the command.
			if st := f.gate.Status(); !tc.want(st) || st.Cause != gate.CauseDBus && tc.method != "Alarm" && tc.method != "Silence" {
				t.Errorf("%s: got status %s, want %s with cause dbus", tc.method, st.JSON(), tc.desc)
			}
			if tc.after != nil {
				tc.after()
			}
		})
	}
	t.Run("outputs", func(t *testing.T) {
		// Closing now: motor_close energised, motor_open not.
		if f.gate.MotorClose.Read() != true || f.gate.MotorOpen.Read() != false {
			t.Errorf("got motor_open=%v motor_close=%v, want false true", f.gate.MotorOpen.Read(), f.gate.MotorClose.Read())
		}
	})
	t.Run("GetStatus", func(t *testing.T) {
		var s string
		if err := call(f.obj, dbusapi.Iface+".GetStatus").Store(&s); err != nil {
			t.Fatalf("GetStatus: %v", err)
		}
		if want := string(f.gate.Status().JSON()); s != want {
			t.Errorf("GetStatus: got %s, want %s", s, want)
		}
	})
	t.Run("Peer", func(t *testing.T) {
		if err := call(f.obj, "org.freedesktop.DBus.Peer.Ping").Err; err != nil {
			t.Errorf("Ping: %v", err)
		}
		var id string
		if err := call(f.obj, "org.freedesktop.DBus.Peer.GetMachineId").Store(&id); err != nil || id == "" {
			t.Errorf("GetMachineId: got %q, %v; want an id", id, err)
		}
	})
}

func TestAuditLog(t *testing.T) {
	f := newFixture(t, dbuslink.Options{})
	if err := call(f.obj, dbusapi.Iface+".Open").Err; err != nil {
		t.Fatalf("Open: %v", err)
	}
	want := `caller="uid ` + strconv.Itoa(os.Getuid())
	waitFor(t, "audit log line", func() bool {
		s := f.log.String()
		return strings.Contains(s, "msg=command part=dbus command=open") && strings.Contains(s, want)
	})
}

func TestRefusals(t *testing.T) {
	f := newFixture(t, dbuslink.Options{})
	f.gate.Set(f.gate.Obstruction, true)
	f.gate.WaitFor("obstructed", func(st gate.Status) bool { return st.Obstructed })
	err := call(f.obj, dbusapi.Iface+".Close").Err
	var de dbus.Error
	if !errors.As(err, &de) {
		t.Fatalf("Close while obstructed: got %v (%T), want a dbus.Error", err, err)
	}
	if want := "tw.rocksaying.Gate.Error.Obstructed"; de.Name != want {
		t.Errorf("Close while obstructed: got error %s, want %s", de.Name, want)
	}
	if len(de.Body) != 1 || !strings.Contains(de.Body[0].(string), "obstruction") {
		t.Errorf("Close while obstructed: got message %v, want one sentence about the obstruction", de.Body)
	}
	if f.gate.MotorClose.Read() {
		t.Error("motor_close energised after a refused Close")
	}

	// Both limits: Open is refused as Fault.
	f.gate.Set(f.gate.OpenLimit, true)
	f.gate.WaitFor("fault", func(st gate.Status) bool { return st.Fault == gate.FaultLimitConflict })
	err = call(f.obj, dbusapi.Iface+".Open").Err
	if !errors.As(err, &de) || de.Name != "tw.rocksaying.Gate.Error.Fault" {
		t.Errorf("Open with both limits active: got %v, want tw.rocksaying.Gate.Error.Fault", err)
	}
}

func TestErrorNames(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&gate.RefusedError{Reason: gate.ReasonObstructed, Msg: "m"}, "tw.rocksaying.Gate.Error.Obstructed"},
		{&gate.RefusedError{Reason: gate.ReasonSensorTest, Msg: "m"}, "tw.rocksaying.Gate.Error.SensorTest"},
		{&gate.RefusedError{Reason: gate.ReasonFault, Msg: "m"}, "tw.rocksaying.Gate.Error.Fault"},
		{&gate.RefusedError{Reason: gate.ReasonBusy, Msg: "m"}, "tw.rocksaying.Gate.Error.Busy"},
		{&gate.RefusedError{Reason: gate.ReasonUnknown, Msg: "m"}, "tw.rocksaying.Gate.Error.Unknown"},
		{&gate.RefusedError{Reason: gate.ReasonStopped, Msg: "m"}, "tw.rocksaying.Gate.Error.Stopped"},
		{&gate.RefusedError{Reason: "travel_timeout", Msg: "m"}, "tw.rocksaying.Gate.Error.TravelTimeout"},
		{&gate.RefusedError{Reason: "9 lives!", Msg: "m"}, "tw.rocksaying.Gate.Error.E9Lives"},
		{&gate.RefusedError{Reason: "", Msg: "m"}, "tw.rocksaying.Gate.Error.Failed"},
		{errors.New("boom"), "org.freedesktop.DBus.Error.Failed"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			if got := dbuslink.Error(tc.err).Name; got != tc.want {
				t.Errorf("Error(%v): got %s, want %s", tc.err, got, tc.want)
			}
		})
	}
}

func TestStoppedGate(t *testing.T) {
	bus := dbustest.Start(t)
	g := gatetest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// A gate that is not running refuses with Stopped: a gate whose Run
	// ended. gatetest.Gate embeds *gate.Gate, so wrap a stopped one.
	stopped := stoppedGate{g}
	svc, err := dbuslink.Start(ctx, dbuslink.Config{Bus: bus.Address}, stopped, dbuslink.Options{Log: quiet})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	go svc.Run(ctx)
	obj := connect(t, bus.Address).Object(dbusapi.Name, dbusapi.Path)
	var de dbus.Error
	if err := call(obj, dbusapi.Iface+".Open").Err; !errors.As(err, &de) || de.Name != "tw.rocksaying.Gate.Error.Stopped" {
		t.Errorf("Open on a stopped gate: got %v, want tw.rocksaying.Gate.Error.Stopped", err)
	}
}

type stoppedGate struct{ *gatetest.Gate }

func (stoppedGate) Send(context.Context, gate.Request) (gate.Status, error) {
	return gate.Status{}, &gate.RefusedError{Reason: gate.ReasonStopped, Msg: "the gate is not running"}
}

func TestWrongArguments(t *testing.T) {
	f := newFixture(t, dbuslink.Options{})
	for _, tc := range []struct {
		method string
		args   []any
		want   string
	}{
		{dbusapi.Iface + ".Open", []any{int32(1)}, "org.freedesktop.DBus.Error.InvalidArgs"},
		{dbusapi.Iface + ".Close", []any{"now"}, "org.freedesktop.DBus.Error.InvalidArgs"},
		{dbusapi.Iface + ".GetStatus", []any{true, "x"}, "org.freedesktop.DBus.Error.InvalidArgs"},
		{dbusapi.Iface + ".Nope", nil, "org.freedesktop.DBus.Error.UnknownMethod"},
		{"tw.rocksaying.Nope.Open", nil, "org.freedesktop.DBus.Error.UnknownInterface"},
		{"org.freedesktop.DBus.Properties.Get", []any{int32(3)}, "org.freedesktop.DBus.Error.InvalidArgs"},
		{"org.freedesktop.DBus.Properties.Get", []any{dbusapi.Iface, "Nope"}, "org.freedesktop.DBus.Properties.Error.PropertyNotFound"},
		{"org.freedesktop.DBus.Properties.Set", []any{dbusapi.Iface, "State", dbus.MakeVariant("open")}, "org.freedesktop.DBus.Properties.Error.ReadOnly"},
	} {
		t.Run(tc.method, func(t *testing.T) {
			err := call(f.obj, tc.method, tc.args...).Err
			var de dbus.Error
			if !errors.As(err, &de) || de.Name != tc.want {
				t.Errorf("%s%v: got %v, want %s", tc.method, tc.args, err, tc.want)
			}
		})
	}
	if st := f.gate.Status(); st.State != gate.Closed || st.Moving {
		t.Errorf("after bad calls: got %s, want closed and still", st.JSON())
	}
	if err := call(f.obj, dbusapi.Iface+".Open").Err; err != nil {
		t.Errorf("Open after bad calls: %v", err)
	}
}

func TestIntrospection(t *testing.T) {
	f := newFixture(t, dbuslink.Options{})
	var s string
	if err := call(f.obj, "org.freedesktop.DBus.Introspectable.Introspect").Store(&s); err != nil {
		t.Fatalf("Introspect: %v", err)
	}
	var n introspect.Node
	if err := xml.Unmarshal([]byte(s), &n); err != nil {
		t.Fatalf("Introspect: %v in %s", err, s)
	}
	ifaces := map[string]introspect.Interface{}
	for _, i := range n.Interfaces {
		ifaces[i.Name] = i
	}
	for _, name := range []string{dbusapi.Iface, "org.freedesktop.DBus.Properties", "org.freedesktop.DBus.Introspectable", "org.freedesktop.DBus.Peer"} {
		if _, ok := ifaces[name]; !ok {
			t.Errorf("interface %s: missing from %s", name, s)
		}
	}
	gi := ifaces[dbusapi.Iface]
	methods := map[string]string{}
	for _, m := range gi.Methods {
		var sig string
		for _, a := range m.Args {
			sig += a.Direction + ":" + a.Type + " "
		}
		methods[m.Name] = sig
	}
	for _, tc := range []struct{ name, sig string }{
		{"Open", ""}, {"Close", ""}, {"Stop", ""}, {"Alarm", ""}, {"Silence", ""}, {"GetStatus", "out:s "}, {"SetPosition", "in:u "}, {"GetEvents", "in:u out:s "},
	} {
		if got, ok := methods[tc.name]; !ok || got != tc.sig {
			t.Errorf("method %s: got %q (present %v), want args %q", tc.name, got, ok, tc.sig)
		}
	}
	if len(gi.Methods) != 8 {
		t.Errorf("got %d methods, want 8: %v", len(gi.Methods), methods)
	}
	if len(gi.Signals) != 1 || gi.Signals[0].Name != "StatusChanged" || len(gi.Signals[0].Args) != 1 ||
		gi.Signals[0].Args[0].Type != "s" || gi.Signals[0].Args[0].Name != "payload" {
		t.Errorf("signals: got %+v, want StatusChanged(s payload)", gi.Signals)
	}
	props := map[string]introspect.Property{}
	for _, p := range gi.Properties {
		props[p.Name] = p
	}
	for _, tc := range []struct{ name, typ string }{{"State", "s"}, {"Alarm", "b"}, {"Obstructed", "b"}, {"Fault", "s"}, {"Position", "i"}} {
		p, ok := props[tc.name]
		if !ok || p.Type != tc.typ || p.Access != "read" {
			t.Errorf("property %s: got %+v, want type %s access read", tc.name, p, tc.typ)
			continue
		}
		if len(p.Annotations) != 1 || p.Annotations[0].Value != "true" {
			t.Errorf("property %s: got annotations %+v, want EmitsChangedSignal true", tc.name, p.Annotations)
		}
	}
	if len(gi.Properties) != 5 {
		t.Errorf("got %d properties, want 5", len(gi.Properties))
	}

	// The parents list the child, so tree walkers (busctl tree, d-feet)
	// find the object.
	if err := call(f.client.Object(dbusapi.Name, "/tw/rocksaying"), "org.freedesktop.DBus.Introspectable.Introspect").Store(&s); err != nil || !strings.Contains(s, `<node name="Gate"/>`) {
		t.Errorf("Introspect /tw/rocksaying: got %q, %v; want a child node Gate", s, err)
	}
}

// TestTools drives the service with systemd's busctl and GLib's gdbus, as
// the README shows.
func TestTools(t *testing.T) {
	f := newFixture(t, dbuslink.Options{})
	path := string(dbusapi.Path)
	for _, tc := range []struct {
		name string
		args []string
		want string
		then func(gate.Status) bool
	}{
		{"busctl call Open", []string{"busctl", "--address=" + f.bus.Address, "call", dbusapi.Name, path, dbusapi.Iface, "Open"},
			"", func(st gate.Status) bool { return st.State == gate.Opening }},
		{"busctl get-property", []string{"busctl", "--address=" + f.bus.Address, "get-property", dbusapi.Name, path, dbusapi.Iface, "State"},
			`s "opening"`, nil},
		{"busctl introspect", []string{"busctl", "--address=" + f.bus.Address, "introspect", dbusapi.Name, path, dbusapi.Iface},
			".StatusChanged", nil},
		{"gdbus call Stop", []string{"gdbus", "call", "--address", f.bus.Address, "--dest", dbusapi.Name, "--object-path", path, "--method", dbusapi.Iface + ".Stop"},
			"()", func(st gate.Status) bool { return st.State != gate.Opening && st.Cause == gate.CauseDBus }},
		{"gdbus call GetStatus", []string{"gdbus", "call", "--address", f.bus.Address, "--dest", dbusapi.Name, "--object-path", path, "--method", dbusapi.Iface + ".GetStatus"},
			`"gate":"test"`, nil},
		{"gdbus introspect", []string{"gdbus", "introspect", "--address", f.bus.Address, "--dest", dbusapi.Name, "--object-path", path},
			"readonly s State", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dbustest.Need(t, tc.args[0])
			out, err := exec.Command(tc.args[0], tc.args[1:]...).CombinedOutput()
			if err != nil || !strings.Contains(string(out), tc.want) {
				t.Fatalf("%s: got %v: %s; want success and %q", strings.Join(tc.args, " "), err, out, tc.want)
			}
			if tc.then != nil {
				if st := f.gate.Status(); !tc.then(st) {
					t.Errorf("%s: gate status %s", tc.name, st.JSON())
				}
			}
		})
	}
}

// A method's reply comes after the StatusChanged of the status the command
// made, so a caller that reads State or GetStatus on the reply never sees
// the state from before the command.
func TestReplyFollowsItsStatus(t *testing.T) {
	f := newFixture(t, dbuslink.Options{})
	// What the client's connection reads, in the order it reads it.
	var mu sync.Mutex
	var seen []string
	c, err := dbus.Connect(f.bus.Address, dbus.WithIncomingInterceptor(func(m *dbus.Message) {
		var what string
		switch m.Type {
		case dbus.TypeSignal:
			if m.Headers[dbus.FieldMember].Value() != "StatusChanged" || len(m.Body) != 1 {
				return
			}
			var st gate.Status
			if s, _ := m.Body[0].(string); st.UnmarshalJSON([]byte(s)) != nil {
				return
			}
			what = "signal " + string(st.State)
		case dbus.TypeMethodReply, dbus.TypeError:
			what = "reply"
		default:
			return
		}
		mu.Lock()
		seen = append(seen, what)
		mu.Unlock()
	}))
	if err != nil {
		t.Fatalf("client connect: %v", err)
	}
	defer c.Close()
	signals(t, c)
	obj := c.Object(dbusapi.Name, dbusapi.Path)
	for i := range 20 {
		method := "Open"
		if i%2 == 1 {
			method = "Stop" // stopped, or closed while the closed limit is still on
		}
		mu.Lock()
		seen = nil
		mu.Unlock()
		if err := call(obj, dbusapi.Iface+"."+method).Err; err != nil {
			t.Fatalf("%s: %v", method, err)
		}
		want := f.gate.Status().State // nothing else moves the test gate
		mu.Lock()
		got := slices.Clone(seen)
		mu.Unlock()
		if !slices.Contains(got, "signal "+string(want)) {
			t.Fatalf("%s %d: the client read %q: the reply came before StatusChanged %s", method, i, got, want)
		}
		v, err := obj.GetProperty(dbusapi.Iface + ".State")
		if err != nil || v.Value() != string(want) {
			t.Fatalf("%s %d: State on the reply is %v (%v), want %s", method, i, v, err, want)
		}
	}
}
