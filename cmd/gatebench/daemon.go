package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"rocksaying.tw/gated/internal/gate"
)

const daemonPrefix = "gatebench/gated"

// build cross-compiles gated as the package does and returns its path.
func build(dir, goarch, goarm string) (string, error) {
	out := filepath.Join(dir, "gated-"+goarch+goarm)
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, "./cmd/gated")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch, "GOARM="+goarm, "GOFLAGS=")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build gated for %s: %v: %s", goarch, err, b)
	}
	return out, nil
}

// daemon is a running gated binary.
type daemon struct {
	cmd     *exec.Cmd
	done    chan struct{}
	start   time.Time
	ready   chan time.Time
	pings   *counter // WATCHDOG=1 received
	notify  *net.UnixConn
	logFile string
}

func writeDaemonConfig(dir, brokerURL, busAddr string) (string, error) {
	// An hour of travel, as in process: a cold run's commands (400 ms
	// apart, open and stop) must never bring the gate to its open limit,
	// where an open changes nothing and sends no status.
	conf := fmt.Sprintf(`[gate]
name = "bench"
travel_timeout = "2h"

[sim]
travel_time = "1h"

[gpio]
driver = "sim"

[mqtt]
broker = %q
client_id = "gatebench-gated"
topic_prefix = %q

[dbus]
bus = %q
`, brokerURL, daemonPrefix, busAddr)
	path := filepath.Join(dir, "gated.toml")
	return path, os.WriteFile(path, []byte(conf), 0o644)
}

// startDaemon runs gated as systemd would: NOTIFY_SOCKET on a unixgram
// socket we read, and WATCHDOG_USEC as the unit's WatchdogSec=10s sets it.
func startDaemon(bin, conf, dir string, n, gomaxprocs int) (*daemon, error) {
	sock := filepath.Join(dir, fmt.Sprintf("notify-%d", n))
	os.Remove(sock)
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("notify socket: %w", err)
	}
	d := &daemon{done: make(chan struct{}), ready: make(chan time.Time, 1), pings: &counter{}, notify: conn,
		logFile: filepath.Join(dir, fmt.Sprintf("gated-%d.log", n))}
	go func() {
		buf := make([]byte, 4096)
		readySent := false
		for {
			k, err := conn.Read(buf)
			if err != nil {
				return
			}
			at := time.Now()
			for _, line := range strings.Split(string(buf[:k]), "\n") {
				switch line {
				case "READY=1":
					if !readySent {
						d.ready <- at
						readySent = true
					}
				case "WATCHDOG=1":
					d.pings.add(1)
				}
			}
		}
	}()
	logf, err := os.Create(d.logFile)
	if err != nil {
		conn.Close()
		return nil, err
	}
	defer logf.Close()
	d.cmd = exec.Command(bin, "-config", conf)
	// Its state file and event history in dir, as systemd's StateDirectory=
	// would give them: the flood's figures include the history's writes.
	d.cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock, "WATCHDOG_USEC=10000000", "STATE_DIRECTORY="+dir)
	if gomaxprocs > 0 {
		d.cmd.Env = append(d.cmd.Env, fmt.Sprintf("GOMAXPROCS=%d", gomaxprocs))
	}
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	d.start = time.Now()
	if err := d.cmd.Start(); err != nil {
		conn.Close()
		return nil, fmt.Errorf("start gated: %w", err)
	}
	go func() { d.cmd.Wait(); close(d.done) }()
	return d, nil
}

func (d *daemon) pid() int { return d.cmd.Process.Pid }

func (d *daemon) alive() bool {
	select {
	case <-d.done:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM and returns how long gated took to exit and its exit
// status.
func (d *daemon) stop() (time.Duration, int, error) {
	defer d.notify.Close()
	t0 := time.Now()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return 0, -1, err
	}
	select {
	case <-d.done:
	case <-time.After(20 * time.Second):
		d.cmd.Process.Kill()
		<-d.done
		return 0, -1, errors.New("gated did not exit 20s after SIGTERM")
	}
	return time.Since(t0), d.cmd.ProcessState.ExitCode(), nil
}

func (d *daemon) log() string {
	b, _ := os.ReadFile(d.logFile)
	return string(b)
}

// startup is one start of gated: process start to READY=1 and to the first
// status on the broker.
type startup struct {
	ready, status time.Duration
}

// launch clears the retained status, starts gated and waits for READY=1 and
// its first status on the broker.
func launch(bin, conf, dir string, n, gomaxprocs int, watcher mqtt.Client, status <-chan stamped) (*daemon, startup, error) {
	var su startup
	// A retained status from an earlier run would arrive at once.
	if err := wait(watcher.Publish(daemonPrefix+"/status", 1, true, "")); err != nil {
		return nil, su, err
	}
	time.Sleep(100 * time.Millisecond) // let the empty message through
	drain(status)
	d, err := startDaemon(bin, conf, dir, n, gomaxprocs)
	if err != nil {
		return nil, su, err
	}
	select {
	case at := <-d.ready:
		su.ready = at.Sub(d.start)
	case <-d.done:
		return nil, su, fmt.Errorf("gated exited at start-up: %s", d.log())
	case <-time.After(10 * time.Second):
		d.stop()
		return nil, su, fmt.Errorf("no READY=1 from gated in 10s: %s", d.log())
	}
	at, ok := waitFor(status, 10*time.Second, func(b []byte) bool { _, ok := statusIn(b); return ok })
	if !ok {
		d.stop()
		return nil, su, fmt.Errorf("no status from gated on the broker in 10s: %s", d.log())
	}
	su.status = at.Sub(d.start)
	return d, su, nil
}

// finalStatus asks the gate to stop and checks the status that follows.
func finalStatus(url, prefix string) (gate.Status, error) {
	c, err := client(url, "gatebench-final")
	if err != nil {
		return gate.Status{}, err
	}
	defer c.Disconnect(100)
	ch, _, err := subscribe(c, prefix+"/status", 64)
	if err != nil {
		return gate.Status{}, err
	}
	if err := wait(c.Publish(prefix+"/command", 1, false, "stop")); err != nil {
		return gate.Status{}, err
	}
	var st gate.Status
	// The retained status comes first; wait for one that is at rest.
	_, ok := waitFor(ch, 5*time.Second, func(b []byte) bool {
		s, ok := statusIn(b)
		if ok {
			st = s
		}
		return ok && !s.Moving
	})
	if !ok {
		return st, fmt.Errorf("no status at rest 5s after stop; last %+v", st)
	}
	return st, nil
}

// sane reports whether a status at rest is consistent.
func sane(st gate.Status) error {
	switch st.State {
	case gate.Closed, gate.Open, gate.Stopped, gate.Unknown, gate.Faulted:
	default:
		return fmt.Errorf("state %q at rest", st.State)
	}
	if st.Moving {
		return fmt.Errorf("moving in state %q after stop", st.State)
	}
	if (st.State == gate.Faulted) != (st.Fault != "") {
		return fmt.Errorf("state %q with fault %q", st.State, st.Fault)
	}
	return nil
}

// errorLines returns the lines of gated's log at level ERROR, and panics.
func errorLines(log string) []string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "level=ERROR") || strings.HasPrefix(l, "panic:") || strings.HasPrefix(l, "fatal error:") {
			out = append(out, l)
		}
	}
	return out
}
