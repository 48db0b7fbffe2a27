package main

// The echo relay: the least any service can do between a command and its
// status, and so the floor of every command → status figure. It is a paho
// client in a process of its own (gatebench run again with -echo-relay),
// as gated is, that receives each message on echoIn and publishes it
// straight back on echoOut from paho's handler: two broker hops, one
// client's reader, router and writer, nothing else. gated cannot do that
// (a handler that publishes with OrderMatters(true) can stall paho, and a
// command has to reach the gate), so the ratio of the two is what gated's
// own hand-offs cost.

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

const (
	echoIn  = "gatebench/echo/command"
	echoOut = "gatebench/echo/status"
	// coldGap is the idle time before each cold sample: a gate's commands
	// come seconds apart, after every thread of the service has parked.
	coldGap = 400 * time.Millisecond
)

// runEchoRelay is the relay's process: it says "ready" on stdout once
// subscribed and relays until its stdin closes.
func runEchoRelay(url string) error {
	o := mqtt.NewClientOptions().AddBroker(url).SetClientID("gatebench-echo-relay").
		SetCleanSession(true).SetAutoReconnect(false).
		SetOrderMatters(true). // as gated's link
		SetKeepAlive(30 * time.Second).
		SetWriteTimeout(5 * time.Second)
	c := mqtt.NewClient(o)
	if err := wait(c.Connect()); err != nil {
		return fmt.Errorf("echo relay: connect %s: %w", url, err)
	}
	defer c.Disconnect(100)
	// Retained at QoS 1, as gated's status is.
	err := wait(c.Subscribe(echoIn, 1, func(c mqtt.Client, m mqtt.Message) {
		c.Publish(echoOut, 1, true, m.Payload())
	}))
	if err != nil {
		return fmt.Errorf("echo relay: subscribe: %w", err)
	}
	fmt.Println("ready")
	bufio.NewReader(os.Stdin).ReadString('\n') // EOF when gatebench ends
	return nil
}

// echoRelay is a running relay process.
type echoRelay struct {
	cmd   *exec.Cmd
	stdin interface{ Close() error }
}

// startEchoRelay starts the relay process with gomaxprocs as GOMAXPROCS (0:
// Go's default), as gated is run.
func startEchoRelay(url string, gomaxprocs int) (*echoRelay, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "-echo-relay", url)
	cmd.Env = os.Environ()
	if gomaxprocs > 0 {
		cmd.Env = append(cmd.Env, "GOMAXPROCS="+strconv.Itoa(gomaxprocs))
	}
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("echo relay: %w", err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	if line != "ready\n" {
		in.Close()
		cmd.Wait()
		return nil, errors.New("echo relay did not start")
	}
	return &echoRelay{cmd: cmd, stdin: in}, nil
}

func (e *echoRelay) stop() { e.stdin.Close(); e.cmd.Wait() }

// commandPath measures command → status against gated and against the echo
// relay, interleaved sample by sample so that the machine's load hits both
// alike: back to back (hot) and each after gap of idle (cold).
func commandPath(u *users, url string, relay *echoRelay, warm, n int, gap time.Duration) (gated, echo dist, err error) {
	pub, err := client(url, "gatebench-echo-cmd")
	if err != nil {
		return dist{}, dist{}, err
	}
	defer pub.Disconnect(100)
	watch, err := client(url, "gatebench-echo-watch")
	if err != nil {
		return dist{}, dist{}, err
	}
	defer watch.Disconnect(100)
	echoes, _, err := subscribe(watch, echoOut, 16)
	if err != nil {
		return dist{}, dist{}, err
	}
	var sg, se series
	for i := range warm + n {
		// gated: a command, its status (and its result, so that nothing is
		// in flight when the echo is timed).
		cmd, match, _ := step(i)
		u.drain()
		time.Sleep(gap)
		t0 := time.Now()
		tok := u.cmd.Publish(u.prefix+"/command", 1, false, string(cmd))
		ts, oks := waitFor(u.status, sampleTimeout, match)
		waitFor(u.results, sampleTimeout, func([]byte) bool { return true })
		wait(tok)
		// The echo: the same payload size, tagged to be matched.
		drain(echoes)
		time.Sleep(gap)
		tag := []byte(fmt.Sprintf("%-4s %08d", cmd, i))
		e0 := time.Now()
		tok = pub.Publish(echoIn, 1, false, tag)
		te, oke := waitFor(echoes, sampleTimeout, func(b []byte) bool { return string(b) == string(tag) })
		wait(tok)
		if i < warm {
			continue
		}
		sg.note(t0, ts, oks)
		se.note(e0, te, oke)
		if sg.lost > maxLost || se.lost > maxLost {
			break
		}
	}
	return sg.dist(), se.dist(), nil
}
