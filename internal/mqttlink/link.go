// Package mqttlink connects a gate to an MQTT broker, as SPEC.md "MQTT"
// describes: it publishes the status document, the bare state and the
// availability (all retained), takes commands on <prefix>/command and answers
// each one on <prefix>/result, and announces the gate to Home Assistant.
//
// The gate never waits for MQTT: the link connects in the background,
// retries forever, keeps only the latest status while the broker is away,
// and hands every command to the gate through a bounded queue.
//
// A retained command is refused when the broker replays it, on every
// (re)connection. MQTT 3.1.1 brokers clear the retain flag on messages they
// forward to clients already subscribed, so a retained command published
// while the link is connected is indistinguishable from a plain one and is
// carried out once; the replays are refused.
//
// Link (this file) is made by New and runs its goroutines in Run. The rest
// is a file a job: config.go the link's configuration, conn.go the
// connection and its set-up, command.go the parsing of command messages,
// queue.go the command queue and its worker, publisher.go and acker.go the
// publications and their PUBACKs, discovery.go Home Assistant's documents,
// throttle.go the throttled warnings.
package mqttlink

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/jonboulle/clockwork"

	"rocksaying.tw/gated/internal/gate"
)

// Gate is what the link needs of the gate; *gate.Gate implements it.
type Gate interface {
	// Send submits a command (a position with its target; who asked, as
	// the link names them, goes into the gate's record of it) and returns
	// once the gate accepted or refused it (a *gate.RefusedError), or ctx
	// ended.
	Send(ctx context.Context, req gate.Request) (gate.Status, error)
	// Status returns the latest status without blocking.
	Status() gate.Status
	// Subscribe returns the current status and then every new one; the
	// gate never waits for the reader. cancel ends the subscription.
	Subscribe() (<-chan gate.Status, func())
}

// Sim is the simulator's control, nil when not simulating: Control takes
// "obstruct", "clear", "force_open", "jam", "unjam", "eye_stuck", "eye_ok"
// and errors on anything else.
type Sim interface{ Control(cmd string) error }

// Options are the link's collaborators; the zero value is usable.
type Options struct {
	Log     *slog.Logger    // nil: slog.Default()
	Clock   clockwork.Clock // judges the age of commands; nil: the real clock
	Sim     Sim             // non-nil: serve <prefix>/sim
	Version string          // sw_version in Home Assistant's device block
	// ClockSynced says whether the system clock can be trusted to judge the
	// age of commands (clocksync.Checker.Synchronized); it is called for
	// each command on paho's goroutine and must return at once. nil: always.
	ClockSynced func() bool
}

// Timings. They bound every wait on the broker so that a dead broker can
// delay a publication but never hold up the gate or a clean exit.
const (
	commandTimeout   = 2 * time.Second  // how long a command may wait for the gate
	publishTimeout   = 5 * time.Second  // one publication or subscription
	resultWait       = time.Second      // the worker waiting for room in the result queue
	offlineTimeout   = 2 * time.Second  // the "offline" publication on exit
	quiesce          = 250              // ms paho may take to send DISCONNECT
	stopTimeout      = 3 * time.Second  // our goroutines winding down
	connectTimeout   = 10 * time.Second // one connection attempt
	maxReconnectWait = 10 * time.Second // backoff ceiling between attempts
	jobQueue         = 32               // commands waiting for the gate
	// resultQueue is the results waiting for the broker. A flood's
	// backlog waits here, about 100 bytes a result.
	resultQueue = 16384
	// ackWindow is the publications awaiting their PUBACK. Waiting for
	// each in turn held delivery to one publication per round trip to the
	// broker, fewer results a second than a flood brings commands.
	ackWindow = 1024
)

// Link is the gate's MQTT connection. Make one with New, start it with Run.
type Link struct {
	cfg    Config
	g      Gate
	opt    Options
	log    *slog.Logger
	clk    clockwork.Clock
	broker string      // cfg.Broker
	tls    *tls.Config // cfg.TLS
	t      topics

	client   mqtt.Client
	ran      atomic.Bool
	connEv   chan struct{} // a (re)connection to set up; capacity 1
	jobs     chan job
	results  chan result
	done     chan struct{} // closed when Run is winding down
	failLog  throttle      // connection attempts
	setupLog throttle      // subscriptions and publications after connecting
	dropLog  throttle      // results that could not be delivered
	unsynced unsyncedNote  // said that commands' ages are not judged
	// From paho's handlers to the publisher (hass.go): Home Assistant came
	// online; a legacy per-entity document is retained.
	haOnline chan struct{} // capacity 1
	legacy   chan string
}

type topics struct {
	status, state, availability, command, result, sim string
	position, positionSet                             string
}

// New returns a Link; nothing connects before Run. It takes cfg as it is:
// internal/config has checked every field of it already.
func New(cfg Config, g Gate, opt Options) (*Link, error) {
	if g == nil {
		return nil, errors.New("mqtt: no gate")
	}
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	if opt.Clock == nil {
		opt.Clock = clockwork.NewRealClock()
	}
	l := &Link{
		cfg: cfg, g: g, opt: opt, clk: opt.Clock, broker: cfg.Broker, tls: cfg.TLS,
		log:     opt.Log.With("part", "mqtt"),
		connEv:  make(chan struct{}, 1),
		jobs:    make(chan job, jobQueue),
		results: make(chan result, resultQueue),
		done:    make(chan struct{}),

		haOnline: make(chan struct{}, 1),
		legacy:   make(chan string, 8),
	}
	// Throttling uses real time: a fake clock in tests judges command ages.
	rc := clockwork.NewRealClock()
	l.failLog.clk, l.setupLog.clk, l.dropLog.clk = rc, rc, rc
	p := cfg.TopicPrefix
	l.t = topics{
		status: p + "/status", state: p + "/state", availability: p + "/availability",
		command: p + "/command", result: p + "/result", sim: p + "/sim",
		position: p + "/position", positionSet: p + "/position/set",
	}
	o := mqtt.NewClientOptions().
		AddBroker(l.broker).
		SetClientID(l.cfg.ClientID).
		SetCleanSession(true). // a command sent while we were away is never run later
		SetResumeSubs(false).
		// Handlers run in order on paho's router goroutine, so commands are
		// carried out in the order they were published. They never block
		// or publish (either could stall paho): they queue work for ours.
		SetOrderMatters(true).
		SetKeepAlive(l.cfg.KeepAlive).
		SetPingTimeout(min(l.cfg.KeepAlive, 10*time.Second)).
		SetConnectTimeout(connectTimeout).
		SetWriteTimeout(publishTimeout).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(time.Second).
		SetMaxReconnectInterval(maxReconnectWait).
		SetCustomOpenConnectionFn(openConn).
		SetWill(l.t.availability, "offline", 1, true).
		SetOnConnectHandler(l.onConnect).
		SetConnectionLostHandler(l.onLost).
		SetConnectionNotificationHandler(l.onNotification)
	if l.cfg.Username != "" {
		o.SetUsername(l.cfg.Username)
		o.SetPassword(l.cfg.Password)
	}
	if l.tls != nil {
		o.SetTLSConfig(l.tls)
	}
	l.client = mqtt.NewClient(o)
	l.client.AddRoute(l.t.command, l.onCommand)
	l.client.AddRoute(l.t.positionSet, l.onPositionSet)
	if l.cfg.Discovery {
		l.addHARoutes()
	}
	if l.opt.Sim != nil {
		l.client.AddRoute(l.t.sim, l.onSim)
	}
	return l, nil
}

// Connected reports whether the link is connected to the broker now.
func (l *Link) Connected() bool { return l.client.IsConnectionOpen() }

// Run connects in the background and serves the gate until ctx ends; it
// never waits for the broker before serving, and retries forever with
// backoff. On a clean exit it publishes "offline" (retained) and
// disconnects, each wait bounded, and returns nil. Run may be called once.
func (l *Link) Run(ctx context.Context) error {
	if l.ran.Swap(true) {
		return errors.New("mqtt: Run called twice")
	}
	ictx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, f := range []func(context.Context){l.publisher, l.worker} {
		wg.Add(1)
		go func() { defer wg.Done(); f(ictx) }()
	}
	l.log.Info("connecting", "broker", l.broker, "client_id", l.cfg.ClientID, "username", l.cfg.Username, "tls", l.tls != nil)
	l.client.Connect() // with ConnectRetry it retries in the background; its token is not needed

	<-ctx.Done()
	close(l.done)
	cancel()
	if !waitTimeout(&wg, stopTimeout) {
		l.log.Warn("mqtt goroutines did not stop in time", "timeout", stopTimeout)
	}
	if l.client.IsConnectionOpen() {
		t := l.client.Publish(l.t.availability, 1, true, "offline")
		if !t.WaitTimeout(offlineTimeout) {
			l.log.Warn("publishing offline timed out", "timeout", offlineTimeout)
		} else if err := t.Error(); err != nil {
			l.log.Warn("publishing offline failed", "err", err)
		}
	}
	l.client.Disconnect(quiesce)
	l.log.Info("disconnected")
	return nil
}

func waitTimeout(wg *sync.WaitGroup, d time.Duration) bool {
	c := make(chan struct{})
	go func() { wg.Wait(); close(c) }()
	select {
	case <-c:
		return true
	case <-time.After(d):
		return false
	}
}
