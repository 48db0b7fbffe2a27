package main

import (
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
	"rocksaying.tw/gated/internal/testpeer"
)

// mosquitto is started here rather than with mqtttest, which needs a
// testing.TB: gatebench is a program, not a test. dbus-daemon is started by
// testpeer, which dbustest wraps.

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

// startBus starts a private, session-like dbus-daemon in a new directory
// under parent.
func startBus(parent string) (*testpeer.DBus, error) {
	dir, err := os.MkdirTemp(parent, "bus")
	if err != nil {
		return nil, err
	}
	return testpeer.StartDBus(dir, testpeer.SessionBusConfig)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
