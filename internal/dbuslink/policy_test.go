package dbuslink_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"rocksaying.tw/gated/internal/dbuslink"
	"rocksaying.tw/gated/internal/dbuslink/dbusapi"
	"rocksaying.tw/gated/internal/dbuslink/dbustest"
	"rocksaying.tw/gated/internal/gate/gatetest"
)

// The test binary doubles as the programs that the policy test runs as
// other users: the service owning the name, and a client making one call.
const (
	helperEnv = "DBUSLINK_TEST_HELPER" // "owner" or "call"
	addrEnv   = "DBUSLINK_TEST_ADDR"
	callEnv   = "DBUSLINK_TEST_CALL"
)

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "owner":
		os.Exit(helperOwner())
	case "call":
		os.Exit(helperCall())
	}
	os.Exit(m.Run())
}

// helperOwner serves a gate until its stdin closes. It prints READY once
// the name is owned, or the error.
func helperOwner() int {
	g, err := gatetest.New(nil)
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer cancel()
	go g.Run(ctx)
	svc, err := dbuslink.Start(ctx, dbuslink.Config{Bus: os.Getenv(addrEnv)}, g, dbuslink.Options{})
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	fmt.Println("READY")
	go func() { io.Copy(io.Discard, os.Stdin); cancel() }()
	svc.Run(ctx)
	return 0
}

// helperCall makes one call and prints "ok" or the D-Bus error name. The
// call "signal" waits up to 5 s for a StatusChanged, printing READY when
// subscribed.
func helperCall() int {
	c, err := dbus.Connect(os.Getenv(addrEnv))
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	defer c.Close()
	err = policyCall(c, os.Getenv(callEnv), func() { fmt.Println("READY") })
	var de dbus.Error
	switch {
	case err == nil:
		fmt.Println("ok")
	case errors.As(err, &de):
		fmt.Println(de.Name)
	default:
		fmt.Println("error:", err)
	}
	return 0
}

func policyCall(c *dbus.Conn, what string, ready func()) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	obj := c.Object(dbusapi.Name, dbusapi.Path)
	switch what {
	case "Get":
		return obj.CallWithContext(ctx, "org.freedesktop.DBus.Properties.Get", 0, dbusapi.Iface, "State").Err
	case "GetAll":
		return obj.CallWithContext(ctx, "org.freedesktop.DBus.Properties.GetAll", 0, dbusapi.Iface).Err
	case "Set":
		return obj.CallWithContext(ctx, "org.freedesktop.DBus.Properties.Set", 0, dbusapi.Iface, "State", dbus.MakeVariant("open")).Err
	case "Introspect":
		return obj.CallWithContext(ctx, "org.freedesktop.DBus.Introspectable.Introspect", 0).Err
	case "Ping":
		return obj.CallWithContext(ctx, "org.freedesktop.DBus.Peer.Ping", 0).Err
	case "SetPosition":
		return obj.CallWithContext(ctx, dbusapi.Iface+".SetPosition", 0, uint32(0)).Err
	case "GetEvents":
		return obj.CallWithContext(ctx, dbusapi.Iface+".GetEvents", 0, uint32(10)).Err
	case "signal":
		if err := c.AddMatchSignal(dbus.WithMatchSender(dbusapi.Name), dbus.WithMatchMember("StatusChanged")); err != nil {
			return err
		}
		ch := make(chan *dbus.Signal, 16)
		c.Signal(ch)
		ready()
		select {
		case <-ch:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return obj.CallWithContext(ctx, dbusapi.Iface+"."+what, 0).Err
}

// testUsers are throw-away accounts standing in for the package's: owner
// for user gated, group for group gate, member in it, outsider not.
type testUsers struct {
	owner, member, outsider, group string
}

func createUsers(t *testing.T) testUsers {
	t.Helper()
	for _, p := range []string{"useradd", "userdel", "groupadd", "groupdel"} {
		dbustest.Need(t, p)
	}
	b := make([]byte, 4)
	rand.Read(b)
	id := hex.EncodeToString(b)
	u := testUsers{owner: "gdto" + id, member: "gdtm" + id, outsider: "gdtx" + id, group: "gdtg" + id}
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	run("groupadd", "--system", u.group)
	t.Cleanup(func() { exec.Command("groupdel", u.group).Run() })
	for _, name := range []string{u.owner, u.member, u.outsider} {
		args := []string{"useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "--user-group"}
		if name == u.member {
			args = append(args, "--groups", u.group)
		}
		run(append(args, name)...)
		t.Cleanup(func() { exec.Command("userdel", name).Run() })
	}
	return u
}

// testPolicy is the package's policy with the test's user and group.
func testPolicy(t *testing.T, dir string, u testUsers) string {
	t.Helper()
	b, err := os.ReadFile("../../dbus/tw.rocksaying.Gate.conf")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, r := range []struct{ old, new string }{
		{`user="gated"`, `user="` + u.owner + `"`},
		{`group="gate"`, `group="` + u.group + `"`},
	} {
		if n := strings.Count(s, r.old); n != 1 {
			t.Fatalf("policy: got %d × %s, want 1", n, r.old)
		}
		s = strings.ReplaceAll(s, r.old, r.new)
	}
	p := filepath.Join(dir, "tw.rocksaying.Gate.conf")
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// asUser returns a command running prog as user, with the user's groups.
func asUser(user, prog string, args ...string) *exec.Cmd {
	return exec.Command("setpriv", append([]string{"--reuid=" + user, "--regid=" + user, "--init-groups", "--", prog}, args...)...)
}

func TestPolicy(t *testing.T) {
	dbustest.NeedRoot(t)
	dbustest.Need(t, "setpriv")
	dir := dbustest.PublicTempDir(t)
	u := createUsers(t)
	bus := dbustest.StartSystem(t, testPolicy(t, dir, u))

	// The test binary, where other users may run it.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "helper")
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exe, b, 0o755); err != nil {
		t.Fatal(err)
	}
	helper := func(user, kind, call string) *exec.Cmd {
		c := asUser(user, exe)
		// The race detector waits 1 s at exit unless told not to.
		c.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=0", helperEnv+"="+kind, addrEnv+"="+bus.Address, callEnv+"="+call)
		return c
	}

	t.Run("outsider cannot own the name", func(t *testing.T) {
		out, _ := helper(u.outsider, "owner", "").CombinedOutput()
		if !strings.Contains(string(out), "org.freedesktop.DBus.Error.AccessDenied") {
			t.Errorf("owner as %s: got %q, want AccessDenied", u.outsider, out)
		}
	})

	// The service, as the owner user.
	owner := helper(u.owner, "owner", "")
	stdin, _ := owner.StdinPipe()
	stdout, _ := owner.StdoutPipe()
	owner.Stderr = os.Stderr
	if err := owner.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { owner.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			owner.Process.Kill()
			<-done
		}
	})
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	if line != "READY\n" {
		t.Fatalf("owner as %s: got %q, want READY", u.owner, line)
	}

	root := connect(t, bus.Address)
	status := func() string {
		var s string
		if err := call(root.Object(dbusapi.Name, dbusapi.Path), dbusapi.Iface+".GetStatus").Store(&s); err != nil {
			t.Fatalf("GetStatus as root: %v", err)
		}
		return s
	}

	const denied = "org.freedesktop.DBus.Error.AccessDenied"
	for _, tc := range []struct {
		user, call, want string
	}{
		{u.outsider, "Open", denied},
		{u.outsider, "Close", denied},
		{u.outsider, "Stop", denied},
		{u.outsider, "Alarm", denied},
		{u.outsider, "Silence", denied},
		{u.outsider, "Set", denied},
		{u.outsider, "SetPosition", denied},
		{u.outsider, "GetEvents", denied},
		{u.outsider, "GetStatus", "ok"},
		{u.outsider, "Get", "ok"},
		{u.outsider, "GetAll", "ok"},
		{u.outsider, "Introspect", "ok"},
		{u.outsider, "Ping", "ok"},
		{u.member, "Set", denied},
		{u.member, "Alarm", "ok"},
		{u.member, "Silence", "ok"},
		{u.member, "Open", "ok"},
		{u.member, "Stop", "ok"},
		{u.member, "Close", "ok"},
		{u.member, "SetPosition", "ok"},
		{u.member, "GetEvents", "ok"},
		{"root", "Open", "ok"},
		{"root", "Set", denied},
	} {
		t.Run(tc.user+" "+tc.call, func(t *testing.T) {
			var got string
			if tc.user == "root" {
				got = "ok"
				var de dbus.Error
				if err := policyCall(root, tc.call, nil); errors.As(err, &de) {
					got = de.Name
				} else if err != nil {
					got = err.Error()
				}
			} else {
				out, err := helper(tc.user, "call", tc.call).Output()
				if err != nil {
					t.Fatalf("helper: %v", err)
				}
				got = strings.TrimSpace(string(out))
			}
			if got != tc.want {
				t.Errorf("%s as %s: got %s, want %s", tc.call, tc.user, got, tc.want)
			}
		})
	}
	if s := status(); !strings.Contains(s, `"state":"opening"`) || !strings.Contains(s, `"cause":"dbus"`) {
		t.Errorf("after root's Open: got %s, want opening by dbus", s)
	}

	t.Run("everyone receives signals", func(t *testing.T) {
		c := helper(u.outsider, "call", "signal")
		out, _ := c.StdoutPipe()
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		r := bufio.NewReader(out)
		if l, _ := r.ReadString('\n'); l != "READY\n" {
			c.Wait()
			t.Fatalf("signal helper: got %q, want READY", l)
		}
		if err := policyCall(root, "Alarm", nil); err != nil {
			t.Fatalf("Alarm as root: %v", err)
		}
		l, _ := r.ReadString('\n')
		c.Wait()
		if l != "ok\n" {
			t.Errorf("StatusChanged as %s: got %q, want ok", u.outsider, l)
		}
	})

	t.Run("busctl", func(t *testing.T) {
		dbustest.Need(t, "busctl")
		for _, tc := range []struct {
			user, member string
			ok           bool
		}{
			{u.outsider, "Open", false},
			{u.outsider, "GetStatus", true},
			{u.member, "Stop", true},
		} {
			out, err := asUser(tc.user, "busctl", "--address="+bus.Address, "call", dbusapi.Name, string(dbusapi.Path), dbusapi.Iface, tc.member).CombinedOutput()
			if (err == nil) != tc.ok {
				t.Errorf("busctl call %s as %s: got %v: %s; want ok=%v", tc.member, tc.user, err, out, tc.ok)
			}
			if !tc.ok && !strings.Contains(strings.ToLower(string(out)), "access denied") {
				t.Errorf("busctl call %s as %s: got %s, want access denied", tc.member, tc.user, out)
			}
		}
	})

	t.Run("gdbus", func(t *testing.T) {
		dbustest.Need(t, "gdbus")
		for _, tc := range []struct {
			user, member, want string
		}{
			{u.outsider, "Close", denied},
			{u.outsider, "GetStatus", `"gate":"test"`},
			{u.member, "Silence", "()"},
		} {
			out, _ := asUser(tc.user, "gdbus", "call", "--address", bus.Address, "--dest", dbusapi.Name,
				"--object-path", string(dbusapi.Path), "--method", dbusapi.Iface+"."+tc.member).CombinedOutput()
			if !strings.Contains(string(out), tc.want) {
				t.Errorf("gdbus call %s as %s: got %s, want %s", tc.member, tc.user, out, tc.want)
			}
		}
	})
}
