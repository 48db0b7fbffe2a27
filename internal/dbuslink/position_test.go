package dbuslink_test

import (
	"errors"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"rocksaying.tw/gated/internal/dbuslink"
	"rocksaying.tw/gated/internal/dbuslink/dbusapi"
	"rocksaying.tw/gated/internal/gate"
)

// TestSetPosition: SetPosition's refusals are D-Bus errors as the other
// commands' are, 100 opens, and Position follows the gate with
// PropertiesChanged: 0 closed, -1 unknown, 100 open.
func TestSetPosition(t *testing.T) {
	f := newFixture(t, dbuslink.Options{})
	sigs := signals(t, f.client)
	v, err := f.obj.GetProperty(dbusapi.Iface + ".Position")
	if err != nil || v.Value() != int32(0) {
		t.Fatalf("Position when closed: %v, %v; want 0", v, err)
	}
	for _, tc := range []struct {
		target uint32
		want   string
	}{
		// No full run yet: the way to 40 is not known.
		{40, dbusapi.ErrorPrefix + "PositionUnknown"},
		{101, dbusapi.ErrorPrefix + "OutOfRange"},
		{4_000_000_000, dbusapi.ErrorPrefix + "OutOfRange"},
	} {
		var de dbus.Error
		if err := call(f.obj, dbusapi.Iface+".SetPosition", tc.target).Err; !errors.As(err, &de) || de.Name != tc.want || len(de.Body) != 1 {
			t.Errorf("SetPosition(%d): %v, want %s with a message", tc.target, err, tc.want)
		}
	}
	if err := call(f.obj, dbusapi.Iface+".SetPosition", uint32(100)).Err; err != nil {
		t.Fatalf("SetPosition(100): %v", err)
	}
	if st := f.gate.Status(); st.State != gate.Opening || st.Cause != gate.CauseDBus {
		t.Errorf("after SetPosition(100): %s, want opening by dbus", st.JSON())
	}
	for _, step := range []struct {
		name   string
		action func()
		want   int32
	}{
		{"leaves the closed limit", func() { f.gate.Set(f.gate.ClosedLimit, false) }, -1},
		{"reaches the open limit", func() { f.gate.Set(f.gate.OpenLimit, true) }, 100},
	} {
		step.action()
		timeout := time.After(5 * time.Second)
	wait:
		for {
			select {
			case s := <-sigs:
				if s.Name != "org.freedesktop.DBus.Properties.PropertiesChanged" {
					continue
				}
				changed, _ := s.Body[1].(map[string]dbus.Variant)
				if v, ok := changed["Position"]; ok && v.Value() == step.want {
					break wait
				}
			case <-timeout:
				t.Fatalf("%s: no PropertiesChanged Position=%d in 5s", step.name, step.want)
			}
		}
	}
}
