// Package dbustest starts private dbus-daemons for tests, and gates on fake
// pins for the D-Bus link and its client to serve.
//
// Each daemon listens on a unix socket in its own temporary directory and is
// stopped by t.Cleanup. Under CI=true a missing dbus-daemon fails the test;
// elsewhere the test is skipped, saying why.
package dbustest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"rocksaying.tw/gated/internal/testpeer"
)

// Daemon is a running private dbus-daemon, stopped by t.Cleanup.
type Daemon struct {
	*testpeer.DBus
	t testing.TB
}

// Start starts a session-like bus: anyone may own any name and send
// anything.
func Start(t testing.TB) *Daemon {
	t.Helper()
	return start(t, testpeer.SessionBusConfig)
}

// StartSystem starts a bus configured like Debian's system bus
// (/usr/share/dbus-1/system.conf: method calls and name ownership denied
// unless a policy allows them) that includes the given policy files, as the
// system bus includes /usr/share/dbus-1/system.d. The daemon runs as the
// test's user (root in CI) and enforces the policies on its clients; its
// socket is reachable by every user, so tests can connect as others with
// setpriv or runuser.
func StartSystem(t testing.TB, policies ...string) *Daemon {
	t.Helper()
	var inc strings.Builder
	for _, p := range policies {
		abs, err := filepath.Abs(p)
		if err != nil {
			t.Fatalf("dbustest: policy %s: %v", p, err)
		}
		fmt.Fprintf(&inc, "  <include>%s</include>\n", abs)
	}
	return start(t, func(sock string) string {
		return testpeer.BusConfig("system", sock, systemPolicy+inc.String())
	})
}

// systemPolicy is the default policy of Debian's system.conf.
const systemPolicy = `  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
    <deny send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus" send_member="UpdateActivationEnvironment"/>
  </policy>
`

// Need fails (in CI) or skips the test if a program is missing.
func Need(t testing.TB, prog string) string {
	t.Helper()
	p, err := exec.LookPath(prog)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is needed: %v", prog, err)
	}
	t.Skipf("%s not installed (%v); CI=true makes this a failure", prog, err)
	return ""
}

// NeedRoot fails (in CI) or skips the test unless it runs as root.
func NeedRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("this test must run as root (it creates users): euid %d", os.Geteuid())
	}
	t.Skipf("not root (euid %d): cannot create test users; CI=true makes this a failure", os.Geteuid())
}

// PublicTempDir returns a new directory that every user may enter and
// read, removed by t.Cleanup. t.TempDir is private to the test's user and
// its paths can outgrow a unix socket's 108 bytes.
func PublicTempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "dbt")
	if err != nil {
		t.Fatalf("dbustest: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatalf("dbustest: %v", err)
	}
	return dir
}

func start(t testing.TB, config func(sock string) string) *Daemon {
	t.Helper()
	Need(t, "dbus-daemon")
	p, err := testpeer.StartDBus(PublicTempDir(t), config)
	if err != nil {
		t.Fatalf("dbustest: %v", err)
	}
	d := &Daemon{DBus: p, t: t}
	t.Cleanup(func() {
		d.Stop()
		if t.Failed() {
			if s := d.Stderr(); s != "" {
				t.Logf("dbus-daemon stderr:\n%s", s)
			}
		}
	})
	return d
}

// Restart stops the daemon and starts a new one on the same socket.
func (d *Daemon) Restart() {
	d.t.Helper()
	if err := d.DBus.Restart(); err != nil {
		d.t.Fatalf("dbustest: %v", err)
	}
}

// Freeze stops the daemon with SIGSTOP, so it reads nothing and answers
// nothing, as a stuck bus would; Thaw resumes it.
func (d *Daemon) Freeze() { d.Signal(syscall.SIGSTOP) }

// Thaw resumes a frozen daemon.
func (d *Daemon) Thaw() { d.Signal(syscall.SIGCONT) }
