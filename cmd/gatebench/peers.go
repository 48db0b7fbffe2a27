package main

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"rocksaying.tw/gated/internal/syncbuf"
)

// The peers are started here rather than with mqtttest and dbustest, which
// need a testing.TB: gatebench is a program, not a test.

// broker is a private mosquitto on a free port of 127.0.0.1.
type broker struct {
	URL  string // tcp://127.0.0.1:port
	Addr string
	cmd  *exec.Cmd
	out  *syncbuf.Buffer
	done chan struct{}
}

var mosquittoPaths = []string{"mosquitto", "/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"}

// startBroker starts mosquitto with set_tcp_nodelay (Debian's default leaves
// Nagle on and adds a 40 ms tail to QoS 1) and a queue of a million messages
// per client, so that a flood measures gated and not mosquitto's
// max_queued_messages (1000, beyond which it drops).
func startBroker(dir string) (*broker, error) {
	bin := ""
	for _, p := range mosquittoPaths {
		if path, err := exec.LookPath(p); err == nil {
			bin = path
			break
		}
	}
	if bin == "" {
		return nil, errors.New("mosquitto not found: install the mosquitto package")
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	b := &broker{Addr: "127.0.0.1:" + strconv.Itoa(port), out: &syncbuf.Buffer{}, done: make(chan struct{})}
	b.URL = "tcp://" + b.Addr
	var conf strings.Builder
	conf.WriteString("persistence false\nset_tcp_nodelay true\nmax_queued_messages 1000000\nlog_dest stderr\nlog_type error\nlog_type warning\n")
	if os.Geteuid() == 0 {
		conf.WriteString("user root\n") // else it drops to user mosquitto
	}
	fmt.Fprintf(&conf, "allow_anonymous true\nlistener %d 127.0.0.1\n", port)
	confFile := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(confFile, []byte(conf.String()), 0o600); err != nil {
		return nil, err
	}
	b.cmd = exec.Command(bin, "-c", confFile)
	b.cmd.Stdout, b.cmd.Stderr = b.out, b.out
	if err := b.cmd.Start(); err != nil {
		return nil, fmt.Errorf("mosquitto: %w", err)
	}
	go func() { b.cmd.Wait(); close(b.done) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", b.Addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return b, nil
		}
		select {
		case <-b.done:
			return nil, fmt.Errorf("mosquitto exited at start-up: %s", b.out.String())
		default:
		}
		if time.Now().After(deadline) {
			b.stop()
			return nil, fmt.Errorf("mosquitto not listening on %s after 5s: %s", b.Addr, b.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (b *broker) stop() {
	b.cmd.Process.Kill()
	<-b.done
}

// bus is a private, session-like dbus-daemon.
type bus struct {
	Address string
	cmd     *exec.Cmd
	done    chan struct{}
}

// startBus starts a private dbus-daemon in a new directory under parent.
func startBus(parent string) (*bus, error) {
	if _, err := exec.LookPath("dbus-daemon"); err != nil {
		return nil, fmt.Errorf("dbus-daemon not found: install the dbus package: %w", err)
	}
	dir, err := os.MkdirTemp(parent, "bus")
	if err != nil {
		return nil, err
	}
	sock := filepath.Join(dir, "bus")
	conf := filepath.Join(dir, "bus.conf")
	err = os.WriteFile(conf, []byte(fmt.Sprintf(`<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
`, sock)), 0o644)
	if err != nil {
		return nil, err
	}
	b := &bus{Address: "unix:path=" + sock, done: make(chan struct{})}
	b.cmd = exec.Command("dbus-daemon", "--config-file="+conf, "--nofork", "--nopidfile", "--print-address=1")
	out, err := b.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr := &syncbuf.Buffer{}
	b.cmd.Stderr = stderr
	if err := b.cmd.Start(); err != nil {
		return nil, fmt.Errorf("dbus-daemon: %w", err)
	}
	got := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		got <- strings.TrimSpace(line)
		b.cmd.Wait()
		close(b.done)
	}()
	select {
	case line := <-got:
		if !strings.HasPrefix(line, "unix:") {
			b.stop()
			return nil, fmt.Errorf("dbus-daemon printed %q, want an address: %s", line, stderr.String())
		}
		return b, nil
	case <-time.After(10 * time.Second):
		b.stop()
		return nil, fmt.Errorf("dbus-daemon gave no address in 10s: %s", stderr.String())
	}
}

func (b *bus) stop() {
	b.cmd.Process.Kill()
	<-b.done
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
