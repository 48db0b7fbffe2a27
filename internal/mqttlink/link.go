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
package mqttlink

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/jonboulle/clockwork"

	"rocksaying.tw/gated/internal/gate"
)

// Gate is what the link needs of the gate; *gate.Gate implements it.
type Gate interface {
	// Do submits a command and returns once the gate accepted or refused
	// it (a *gate.RefusedError), or ctx ended.
	Do(ctx context.Context, cmd gate.Command, cause gate.Cause) (gate.Status, error)
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

// Config is the [mqtt] section, with the password already read (see
// ReadPassword) and the gate's name.
type Config struct {
	Broker      string // tcp://, mqtt://, ssl://, tls:// or mqtts:// URL
	ClientID    string // "": DefaultClientID()
	TopicPrefix string // "": tw/rocksaying
	Username    string
	Password    string // never logged

	CAFile, CertFile, KeyFile string

	KeepAlive     time.Duration // 0: 30s
	MaxCommandAge time.Duration // 0: 10s

	Discovery       bool
	DiscoveryPrefix string // "": homeassistant
	GateName        string // the Home Assistant device name; "": gate
}

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

// The defaults of SPEC.md's [mqtt] section.
const (
	DefaultTopicPrefix     = "tw/rocksaying"
	DefaultDiscoveryPrefix = "homeassistant"
	DefaultKeepAlive       = 30 * time.Second
	DefaultMaxCommandAge   = 10 * time.Second
)

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
	broker string // the URL as paho wants it
	tls    *tls.Config
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
}

type topics struct {
	status, state, availability, command, result, sim string
}

// job is work for the goroutine that talks to the gate: a command, or a
// simulator control word.
type job struct {
	req request
	sim string
}

// result is the answer to one command message, as published on
// <prefix>/result.
type result struct {
	ID      string     `json:"id"`
	Command string     `json:"command"`
	OK      bool       `json:"ok"`
	State   gate.State `json:"state,omitempty"`
	Error   string     `json:"error,omitempty"`   // the machine reason
	Message string     `json:"message,omitempty"` // a sentence for people
}

// New checks cfg and returns a Link; nothing connects before Run. Errors
// name the key at fault: a broker URL with a scheme paho cannot use, TLS
// files that cannot be read or parsed, TLS files with a plain-TCP broker.
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
	if cfg.ClientID == "" {
		cfg.ClientID = DefaultClientID()
	}
	if cfg.TopicPrefix == "" {
		cfg.TopicPrefix = DefaultTopicPrefix
	}
	if cfg.DiscoveryPrefix == "" {
		cfg.DiscoveryPrefix = DefaultDiscoveryPrefix
	}
	if cfg.GateName == "" {
		cfg.GateName = "gate"
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = DefaultKeepAlive
	}
	if cfg.MaxCommandAge <= 0 {
		cfg.MaxCommandAge = DefaultMaxCommandAge
	}
	for key, t := range map[string]string{"topic_prefix": cfg.TopicPrefix, "discovery_prefix": cfg.DiscoveryPrefix} {
		if strings.ContainsAny(t, "+#\x00") || strings.HasSuffix(t, "/") || strings.HasPrefix(t, "/") {
			return nil, fmt.Errorf("mqtt %s %q: want a topic without wildcards (+, #) or a leading or trailing /", key, t)
		}
	}
	broker, secure, err := brokerURL(cfg.Broker)
	if err != nil {
		return nil, err
	}
	l := &Link{
		cfg: cfg, g: g, opt: opt, clk: opt.Clock, broker: broker,
		log:     opt.Log.With("part", "mqtt"),
		connEv:  make(chan struct{}, 1),
		jobs:    make(chan job, jobQueue),
		results: make(chan result, resultQueue),
		done:    make(chan struct{}),
	}
	// Throttling uses real time: a fake clock in tests judges command ages.
	rc := clockwork.NewRealClock()
	l.failLog.clk, l.setupLog.clk, l.dropLog.clk = rc, rc, rc
	if secure {
		if l.tls, err = tlsConfig(cfg); err != nil {
			return nil, err
		}
	} else if cfg.CAFile != "" || cfg.CertFile != "" || cfg.KeyFile != "" {
		return nil, fmt.Errorf("mqtt broker %q: ca_file, cert_file and key_file need an ssl://, tls:// or mqtts:// broker", cfg.Broker)
	}
	p := cfg.TopicPrefix
	l.t = topics{
		status: p + "/status", state: p + "/state", availability: p + "/availability",
		command: p + "/command", result: p + "/result", sim: p + "/sim",
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
	if l.opt.Sim != nil {
		l.client.AddRoute(l.t.sim, l.onSim)
	}
	return l, nil
}

// brokerURL checks a broker URL and returns it as paho wants it, with the
// default port, and whether it uses TLS. Errors never repeat a password
// written into the URL.
func brokerURL(s string) (string, bool, error) {
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the URL, password and all
		}
		return "", false, fmt.Errorf("mqtt broker %q: %w", redact(s), err)
	}
	var scheme, port string
	var secure bool
	switch strings.ToLower(u.Scheme) {
	case "tcp", "mqtt":
		scheme, port = "tcp", "1883"
	case "ssl", "tls", "mqtts":
		scheme, port, secure = "ssl", "8883", true
	default:
		return "", false, fmt.Errorf("mqtt broker %q: want a tcp://, mqtt://, ssl://, tls:// or mqtts:// URL", u.Redacted())
	}
	if u.User != nil {
		return "", false, fmt.Errorf("mqtt broker %q: put the user name in username and the password in password_file, not in the URL", u.Redacted())
	}
	if u.Hostname() == "" {
		return "", false, fmt.Errorf("mqtt broker %q: no host", s)
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.Fragment != "" {
		return "", false, fmt.Errorf("mqtt broker %q: want scheme://host[:port] only", s)
	}
	if u.Port() != "" {
		port = u.Port()
	}
	return scheme + "://" + net.JoinHostPort(u.Hostname(), port), secure, nil
}

// redact hides what may be a password in a URL that did not parse.
func redact(s string) string {
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		start := strings.Index(s, "://") + 3
		if start < 3 || start > i {
			start = 0
		}
		return s[:start] + "xxxxx" + s[i:]
	}
	return s
}

func tlsConfig(cfg Config) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("mqtt ca_file: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("mqtt ca_file %s: no PEM certificate in it", cfg.CAFile)
		}
	}
	if (cfg.CertFile == "") != (cfg.KeyFile == "") {
		return nil, errors.New("mqtt: cert_file and key_file go together: set both or neither")
	}
	if cfg.CertFile != "" {
		c, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("mqtt cert_file %s, key_file %s: %w", cfg.CertFile, cfg.KeyFile, err)
		}
		tc.Certificates = []tls.Certificate{c}
	}
	return tc, nil
}

// DefaultClientID returns "gated-<hostname>", so that two gates on one
// broker do not share a client id (the broker would drop one each time the
// other connects).
func DefaultClientID() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		b := make([]byte, 4)
		rand.Read(b)
		h = hex.EncodeToString(b)
	}
	return "gated-" + h
}

// ReadPassword returns the broker password: the systemd credential
// $CREDENTIALS_DIRECTORY/mqtt-password when it exists (LoadCredential=),
// else the contents of passwordFile, else "". One trailing newline is
// removed.
func ReadPassword(passwordFile string) (string, error) {
	if dir := os.Getenv("CREDENTIALS_DIRECTORY"); dir != "" {
		p := filepath.Join(dir, "mqtt-password")
		b, err := os.ReadFile(p)
		if err == nil {
			return trimNewline(b), nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("mqtt credential %s: %w", p, err)
		}
	}
	if passwordFile == "" {
		return "", nil
	}
	b, err := os.ReadFile(passwordFile)
	if err != nil {
		return "", fmt.Errorf("mqtt password_file: %w", err)
	}
	return trimNewline(b), nil
}

func trimNewline(b []byte) string {
	s := strings.TrimSuffix(string(b), "\n")
	return strings.TrimSuffix(s, "\r")
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

// The paho handlers below run on paho's goroutines: they never publish,
// wait on a token or wait for room in our queues; our goroutines do the
// rest.

func (l *Link) onConnect(mqtt.Client) {
	l.failLog.reset()
	l.setupLog.reset()
	l.log.Info("connected", "broker", l.broker)
	select {
	case l.connEv <- struct{}{}:
	default: // one set-up pending is enough
	}
}

func (l *Link) onLost(_ mqtt.Client, err error) {
	l.log.Warn("connection lost, reconnecting", "err", err)
}

func (l *Link) onNotification(_ mqtt.Client, n mqtt.ConnectionNotification) {
	switch n := n.(type) {
	case mqtt.ConnectionNotificationFailed:
		l.failLog.log(l.log, "cannot connect, retrying", "broker", l.broker, "err", n.Reason)
	case mqtt.ConnectionNotificationBrokerFailed:
		l.failLog.log(l.log, "cannot connect, retrying", "broker", l.broker, "err", n.Reason)
	}
}

func (l *Link) onCommand(_ mqtt.Client, m mqtt.Message) {
	req, err := l.parse(m.Payload(), m.Retained())
	if err != nil {
		l.answer(req, gate.Status{}, err, false)
		return
	}
	select {
	case l.jobs <- job{req: req}:
	default:
		// A flood must not grow memory: the queue is bounded and the
		// sender learns at once that the command was not taken.
		l.answer(req, gate.Status{}, &gate.RefusedError{Reason: gate.ReasonBusy, Msg: "too many commands waiting for the gate: command dropped"}, false)
	}
}

func (l *Link) onSim(_ mqtt.Client, m mqtt.Message) {
	if m.Retained() {
		l.log.Warn("retained simulation control ignored", "topic", m.Topic())
		return
	}
	if len(m.Payload()) > MaxPayload {
		l.log.Warn("simulation control too large, ignored", "bytes", len(m.Payload()))
		return
	}
	w := strings.ToLower(strings.TrimSpace(string(m.Payload())))
	select {
	case l.jobs <- job{sim: w}:
	default:
		l.log.Warn("simulation control dropped: queue full", "control", echo(w))
	}
}

// answer queues the result of one command message (see queue), then logs
// it. A paho handler never waits (wait false): the queue is deep enough
// (resultQueue) that a flood's refusals fit.
func (l *Link) answer(req request, st gate.Status, err error, wait bool) {
	r := result{ID: req.ID, Command: req.Word, OK: err == nil}
	if err == nil {
		r.State = st.State
	} else {
		var re *gate.RefusedError
		if errors.As(err, &re) {
			r.Error, r.Message = string(re.Reason), re.Msg
		} else {
			r.Error, r.Message = "error", err.Error() // not a refusal: say so plainly
		}
	}
	roomless := !l.queue(r, wait)
	if err == nil {
		l.log.Info("command", "id", req.ID, "command", req.Cmd, "state", st.State)
	} else {
		l.log.Info("command refused", "id", echo(req.ID), "command", req.Word, "reason", r.Error, "err", r.Message)
	}
	if roomless {
		l.dropLog.log(l.log, "result dropped: the broker is not taking results", "id", echo(req.ID), "command", req.Word)
	}
}

// queue puts r in the result queue. Only the worker (wait) waits for
// room, up to resultWait. It is false when r was dropped for want of room;
// a result the link stops with is dropped too, but not worth a warning.
func (l *Link) queue(r result, wait bool) bool {
	select {
	case l.results <- r:
		return true
	default:
	}
	if !wait {
		return false
	}
	t := time.NewTimer(resultWait)
	defer t.Stop()
	select {
	case l.results <- r:
		return true
	case <-t.C:
		return false
	case <-l.done:
		return true
	}
}

// worker is the only goroutine that hands commands to the gate, one at a
// time, each with a deadline.
func (l *Link) worker(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-l.jobs:
			if j.sim != "" || j.req.Cmd == "" {
				l.simControl(j.sim)
				continue
			}
			dctx, cancel := context.WithTimeout(ctx, commandTimeout)
			st, err := l.g.Do(dctx, j.req.Cmd, gate.CauseMQTT)
			cancel()
			l.answer(j.req, st, err, true)
		}
	}
}

// simControl passes a control word to the simulator. Mistakes are logged
// only: <prefix>/sim has no result topic, to keep <prefix>/result one
// answer per command message.
func (l *Link) simControl(w string) {
	if err := l.opt.Sim.Control(w); err != nil {
		l.log.Warn("simulation control refused", "control", echo(w), "err", err)
		return
	}
	l.log.Info("simulation control", "control", w)
}

// acker waits for the PUBACKs of publications in the background, in the
// order they were made, with at most window of them outstanding.
type acker struct {
	sent chan sent
	done chan struct{}
}

// sent is a publication awaiting its PUBACK.
type sent struct {
	tok      mqtt.Token
	deadline time.Time
	status   bool // the status or the state, not a result
}

// startAcker starts an acker; failed is called, on the acker's goroutine,
// for each publication that failed or had no PUBACK within publishTimeout.
// It stops when ctx ends.
func startAcker(ctx context.Context, window int, failed func(sent, error)) *acker {
	a := &acker{sent: make(chan sent, window), done: make(chan struct{})}
	go func() {
		defer close(a.done)
		for {
			select {
			case <-ctx.Done():
				return
			case s := <-a.sent:
				if err := waitUntil(ctx, s.tok, s.deadline); err != nil {
					failed(s, err)
				}
			}
		}
	}()
	return a
}

// add hands the acker a publication's token, waiting while window of them
// are outstanding. It is false if ctx ended first.
func (a *acker) add(ctx context.Context, tok mqtt.Token, status bool) bool {
	select {
	case a.sent <- sent{tok, time.Now().Add(publishTimeout), status}:
		return true
	case <-ctx.Done():
		return false
	}
}

// stop waits for the acker's goroutine, which ends with ctx.
func (a *acker) stop() { <-a.done }

// waitUntil waits for a token until deadline, or until ctx ends (nil).
func waitUntil(ctx context.Context, t mqtt.Token, deadline time.Time) error {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case <-t.Done():
		return t.Error()
	case <-timer.C:
		return fmt.Errorf("no answer from the broker in %s", publishTimeout)
	case <-ctx.Done():
		return nil
	}
}

// publisher is the only goroutine that publishes: status, state,
// availability, discovery and results. It does not wait for each PUBACK:
// paho writes publications in the order they are handed to it, and an
// acker watches the PUBACKs. That order gives two guarantees:
//   - after any reconnection, the latest status is the one retained: a
//     failed or unanswered status has the latest published again;
//   - a result goes out after the status it reports, so a client that gets
//     "ok, opening" and then reads the status topic never sees the state from
//     before the command. The gate hands a status to its subscribers before
//     it answers the command, so that status is waiting in sub when the
//     result arrives.
//
// During an outage it keeps only the latest status, and drops results: a
// result for a client that is gone is worth nothing.
func (l *Link) publisher(ctx context.Context) {
	sub, cancel := l.g.Subscribe()
	defer cancel()
	failed := make(chan error, 1)
	acks := startAcker(ctx, ackWindow, func(p sent, err error) {
		if !p.status {
			l.dropLog.log(l.log, "publishing result failed", "err", err)
			return
		}
		select {
		case failed <- err:
		default: // one republication pending is enough
		}
	})
	defer acks.stop()
	var (
		latest  = l.g.Status()
		dirty   = true
		retry   <-chan time.Time
		pending bool // a connection waits for its set-up
	)
	for {
		var res *result
		select {
		case <-ctx.Done():
			return
		case st := <-sub:
			latest, dirty = st, true
		case r := <-l.results:
			res = &r
		case <-l.connEv:
			pending = true
		case <-retry:
			retry = nil
		case err := <-failed:
			l.setupLog.log(l.log, "publishing status failed, retrying", "err", err)
			dirty, retry = true, time.After(2*time.Second)
			continue
		}
		// Catch up with the gate: the status a result reports is here.
		for caught := false; !caught; {
			select {
			case st := <-sub:
				latest, dirty = st, true
			default:
				caught = true
			}
		}
		if !l.client.IsConnectionOpen() {
			if res != nil {
				l.log.Debug("result dropped: not connected", "id", echo(res.ID))
			}
			continue // onConnect brings us back
		}
		if pending {
			if err := l.setUp(); err != nil {
				l.setupLog.log(l.log, "setting up the session failed, retrying", "err", err)
				retry = time.After(2 * time.Second)
				continue
			}
			pending, dirty = false, true
		}
		if dirty {
			if !acks.add(ctx, l.client.Publish(l.t.status, 1, true, latest.JSON()), true) ||
				!acks.add(ctx, l.client.Publish(l.t.state, 1, true, string(latest.State)), true) {
				return
			}
			dirty = false
		}
		if res != nil {
			b, _ := json.Marshal(res)
			if !acks.add(ctx, l.client.Publish(l.t.result, 1, false, b), false) {
				return
			}
		}
	}
}

// setUp runs after each connection: with a clean session the broker forgot
// our subscriptions.
func (l *Link) setUp() error {
	subs := map[string]byte{l.t.command: 1}
	if l.opt.Sim != nil {
		subs[l.t.sim] = 1
	}
	tok := l.client.SubscribeMultiple(subs, nil)
	if err := wait(tok); err != nil {
		return fmt.Errorf("subscribe %s: %w", l.t.command, err)
	}
	for topic, code := range tok.(*mqtt.SubscribeToken).Result() {
		if code == 0x80 { // SUBACK failure: typically the broker's ACL
			return fmt.Errorf("subscribe %s: refused by the broker (check its ACL for this user)", topic)
		}
	}
	if l.cfg.Discovery {
		for _, d := range l.discovery() {
			if err := wait(l.client.Publish(d.topic, 1, true, d.payload)); err != nil {
				return fmt.Errorf("discovery %s: %w", d.topic, err)
			}
		}
	}
	if err := wait(l.client.Publish(l.t.availability, 1, true, "online")); err != nil {
		return fmt.Errorf("availability: %w", err)
	}
	l.log.Info("online", "command_topic", l.t.command, "status_topic", l.t.status)
	return nil
}

// wait waits for a token, never for ever: paho's Wait can hang.
func wait(t mqtt.Token) error {
	if !t.WaitTimeout(publishTimeout) {
		return fmt.Errorf("no answer from the broker in %s", publishTimeout)
	}
	return t.Error()
}

// throttle logs an error that would repeat on every reconnection attempt
// once, then at most once a minute with the number suppressed meanwhile.
type throttle struct {
	clk        clockwork.Clock
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// throttleEvery is how often a repeating error is logged.
const throttleEvery = time.Minute

func (t *throttle) log(log *slog.Logger, msg string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.clk.Now()
	if !t.last.IsZero() && now.Sub(t.last) < throttleEvery {
		t.suppressed++
		return
	}
	if t.suppressed > 0 {
		args = append(args, "suppressed", t.suppressed)
	}
	t.last, t.suppressed = now, 0
	log.Warn(msg, args...)
}

func (t *throttle) reset() {
	t.mu.Lock()
	t.last, t.suppressed = time.Time{}, 0
	t.mu.Unlock()
}
