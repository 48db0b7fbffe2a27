package main

// systemd: the notifier that speaks sd_notify (READY, STATUS, WATCHDOG,
// STOPPING) and the one-line STATUS summary.

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"rocksaying.tw/gated/internal/config"
	"rocksaying.tw/gated/internal/gate"
	"rocksaying.tw/gated/internal/mqttlink"
)

// statusLine is systemd's one-line summary.
func statusLine(st gate.Status, link *mqttlink.Link, cfg config.Config) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Gate %s: %s", cfg.Gate.Name, st.State)
	if st.Fault != "" {
		fmt.Fprintf(&b, " (%s)", st.Fault)
	}
	if st.Alarm {
		b.WriteString(", ALARM")
	}
	if st.Obstructed {
		b.WriteString(", obstructed")
	}
	switch {
	case link == nil:
		b.WriteString("; MQTT off")
	case link.Connected():
		b.WriteString("; MQTT connected")
	default:
		b.WriteString("; MQTT disconnected")
	}
	return b.String()
}

// notifier speaks sd_notify. Without NOTIFY_SOCKET every call is a no-op.
type notifier struct {
	log           *slog.Logger
	watchdogEvery time.Duration
	status        func() string

	mu   sync.Mutex
	last string
}

func newNotifier(log *slog.Logger) *notifier {
	n := &notifier{log: log}
	if d, err := daemon.SdWatchdogEnabled(false); err == nil && d > 0 {
		n.watchdogEvery = d / 2
	}
	return n
}

func (n *notifier) send(state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		n.log.Debug("sd_notify", "err", err)
	}
}

// statusUpdate returns "STATUS=…" when the line changed since last sent.
func (n *notifier) statusUpdate() string {
	if n.status == nil {
		return ""
	}
	s := n.status()
	n.mu.Lock()
	defer n.mu.Unlock()
	if s == n.last {
		return ""
	}
	n.last = s
	return "STATUS=" + s
}

func (n *notifier) ready() { n.send(strings.TrimSpace("READY=1\n" + n.statusUpdate())) }

func (n *notifier) stopping() { n.send("STOPPING=1\nSTATUS=stopping") }

// heartbeat runs on the gate's owner goroutine: a stuck gate loop stops the
// pings and the watchdog restarts us. It also carries MQTT's connection
// changes into the STATUS line.
func (n *notifier) heartbeat() {
	n.send(strings.TrimSpace("WATCHDOG=1\n" + n.statusUpdate()))
}

func (n *notifier) followStatus(ctx context.Context, g *gate.Gate) {
	c, cancel := g.Subscribe()
	defer cancel()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c:
			if s := n.statusUpdate(); s != "" {
				n.send(s)
			}
		}
	}
}
