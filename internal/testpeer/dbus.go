// Package testpeer starts the real peers that gated is tested and measured
// against as plain processes. It needs no testing.TB, so that a program
// (cmd/gatebench) can use it as well as the test helpers (dbustest) that
// wrap it.
package testpeer

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"rocksaying.tw/gated/internal/syncbuf"
)

// DBus is a private dbus-daemon listening on a unix socket.
type DBus struct {
	// Address is the bus address, "unix:path=…". It carries no guid, so it
	// stays valid across Restart.
	Address string
	// Socket is the path of the bus socket.
	Socket string

	config string // the daemon's configuration file

	mu     sync.Mutex
	cmd    *exec.Cmd // nil once stopped
	stderr *syncbuf.Buffer
	done   chan struct{} // closed when cmd has exited
}

// BusConfig is the configuration of a bus of the given type ("session",
// "system") listening on sock, with EXTERNAL authentication and the rest
// (policies, includes) as it is written in body.
func BusConfig(typ, sock, body string) string {
	return fmt.Sprintf(`<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>%s</type>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
%s</busconfig>
`, typ, sock, body)
}

// SessionBusConfig is the configuration of a session-like bus listening on
// sock: anyone may own any name and send anything.
func SessionBusConfig(sock string) string {
	return BusConfig("session", sock, `  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
`)
}

// StartDBus starts a dbus-daemon listening on the socket dir/bus, with the
// configuration that config returns for that socket (SessionBusConfig, for
// example) written to dir/bus.conf. It returns once the daemon has printed
// its address, or after 10 s with an error.
func StartDBus(dir string, config func(sock string) string) (*DBus, error) {
	if _, err := exec.LookPath("dbus-daemon"); err != nil {
		return nil, fmt.Errorf("dbus-daemon not found: install the dbus-daemon package: %w", err)
	}
	d := &DBus{Socket: filepath.Join(dir, "bus"), config: filepath.Join(dir, "bus.conf")}
	d.Address = "unix:path=" + d.Socket
	if err := os.WriteFile(d.config, []byte(config(d.Socket)), 0o644); err != nil {
		return nil, fmt.Errorf("dbus-daemon: %w", err)
	}
	if err := d.launch(); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *DBus) launch() error {
	cmd := exec.Command("dbus-daemon", "--config-file="+d.config, "--nofork", "--nopidfile", "--print-address=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("dbus-daemon: %w", err)
	}
	stderr := &syncbuf.Buffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start dbus-daemon: %w", err)
	}
	done := make(chan struct{})
	got := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		got <- strings.TrimSpace(line)
		cmd.Wait()
		close(done)
	}()
	select {
	case line := <-got:
		if !strings.HasPrefix(line, "unix:") {
			cmd.Process.Kill()
			<-done
			return fmt.Errorf("dbus-daemon printed %q, want an address; stderr: %s", line, stderr.String())
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
		return fmt.Errorf("dbus-daemon gave no address in 10s; stderr: %s", stderr.String())
	}
	d.mu.Lock()
	d.cmd, d.stderr, d.done = cmd, stderr, done
	d.mu.Unlock()
	return nil
}

// Stop stops the daemon (SIGTERM, then SIGKILL after 5 s) and removes its
// socket. Its clients see their connections close. It is safe to call more
// than once.
func (d *DBus) Stop() {
	d.mu.Lock()
	cmd, done := d.cmd, d.done
	d.cmd = nil
	d.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGCONT) // in case it was frozen
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		<-done
	}
	os.Remove(d.Socket)
}

// Restart stops the daemon and starts a new one on the same socket.
func (d *DBus) Restart() error {
	d.Stop()
	return d.launch()
}

// Signal sends sig to the running daemon: SIGSTOP freezes it as a stuck
// bus would be, SIGCONT resumes it. Once stopped it is an error.
func (d *DBus) Signal(sig os.Signal) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd == nil {
		return errors.New("dbus-daemon: not running")
	}
	return d.cmd.Process.Signal(sig)
}

// Stderr is what the daemon has written to its standard error so far.
func (d *DBus) Stderr() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stderr == nil {
		return ""
	}
	return d.stderr.String()
}
