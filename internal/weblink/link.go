// Package weblink is gated's HTTP link: the web panel for the phone and the
// HTTP API for scripts (SPEC.md "Web and HTTP API"). Like the MQTT and
// D-Bus links it only translates: the gate decides, a handler turns its
// answer into a status code and a document. Who may do what is
// internal/webauth's business; the history is internal/history's.
package weblink

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/jonboulle/clockwork"
	"rocksaying.tw/gated/internal/gate"
	"rocksaying.tw/gated/internal/history"
	"rocksaying.tw/gated/internal/webauth"
)

// Gate is what the link needs of the gate; *gate.Gate implements it.
type Gate interface {
	// Status returns the latest status without blocking.
	Status() gate.Status
	// Subscribe returns the current status and then every new one; the
	// gate never waits for the reader (a slow one misses statuses, never
	// the latest). cancel ends the subscription.
	Subscribe() (<-chan gate.Status, func())
	// SubscribeCommands returns the record of every command the gate
	// answers from now on, with the same never-wait rule.
	SubscribeCommands() (<-chan gate.Reply, func())
	// Send submits a command and returns once the gate accepted or refused
	// it (a *gate.RefusedError), or ctx ended (refused as busy); who is
	// recorded with it.
	Send(ctx context.Context, req gate.Request) (gate.Status, error)
}

// History is what the link reads of the event history (*history.Store; a
// nil store lists nothing).
type History interface {
	// List returns up to limit events (0: a default; capped), newest
	// first, with seq below before (0: from the newest).
	List(limit int, before uint64) ([]history.Event, error)
}

// Config is the [web] section, checked by internal/config.
type Config struct {
	Listen       string // host:port
	CertFile     string // with KeyFile: serve HTTPS
	KeyFile      string
	PublicStatus bool // GET /api/status without credentials
}

// Options are the link's collaborators.
type Options struct {
	Auth    *webauth.Auth // required
	History History       // nil: no history
	// Running reports whether the gate's loop runs (GET /healthz). nil: always.
	Running func() bool
	// MQTTConnected and DBusConnected feed the panel and /metrics; nil: the
	// link is not configured (shown as off).
	MQTTConnected func() bool
	DBusConnected func() bool
	Clock         clockwork.Clock // nil: the real clock
	Log           *slog.Logger    // nil: slog.Default()
}

// Timeouts of the server. A phone on a weak Wi-Fi still sends a small
// request in well under ReadTimeout; slow clients cannot hold connections
// for ever (slowloris). The event stream lifts its write deadline itself.
const (
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 10 * time.Second
	WriteTimeout      = 15 * time.Second
	IdleTimeout       = 120 * time.Second
	// StreamHeartbeat is how often the event stream sends a comment line, so
	// that proxies and phones do not cut a quiet stream, and a dead client
	// is found.
	StreamHeartbeat = 20 * time.Second
	shutdownWait    = 2 * time.Second
)

// Link serves the panel and the API.
type Link struct {
	cfg     Config
	opt     Options
	g       Gate
	clk     clockwork.Clock
	log     *slog.Logger
	started time.Time
	metrics *metrics
	pages   *pages
	handler http.Handler
}

// New builds the link; Run serves it.
func New(cfg Config, g Gate, opt Options) (*Link, error) {
	if opt.Auth == nil {
		return nil, errors.New("web: no users (users_file)")
	}
	if (cfg.CertFile == "") != (cfg.KeyFile == "") {
		return nil, errors.New("web: cert_file and key_file go together")
	}
	if opt.Clock == nil {
		opt.Clock = clockwork.NewRealClock()
	}
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	if opt.Running == nil {
		opt.Running = func() bool { return true }
	}
	l := &Link{cfg: cfg, opt: opt, g: g, clk: opt.Clock, log: opt.Log, started: opt.Clock.Now()}
	l.metrics = newMetrics(l)
	p, err := newPages()
	if err != nil {
		return nil, err
	}
	l.pages = p
	l.handler = securityHeaders(l.routes())
	return l, nil
}

// Handler is the link's whole HTTP handler, for tests and for Run.
func (l *Link) Handler() http.Handler { return l.handler }

// Run listens on cfg.Listen and serves until ctx ends; open event streams
// end with ctx. It also counts transitions and commands for /metrics.
func (l *Link) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", l.cfg.Listen)
	if err != nil {
		return fmt.Errorf("web: %w", err)
	}
	return l.Serve(ctx, ln)
}

// Serve is Run on a listener of the caller's.
func (l *Link) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           l.handler,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    16 << 10,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          slog.NewLogLogger(l.log.Handler(), slog.LevelDebug),
	}
	tlsOn := l.cfg.CertFile != ""
	if tlsOn {
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	go l.metrics.watch(ctx, l.g)
	errc := make(chan error, 1)
	go func() {
		if tlsOn {
			errc <- srv.ServeTLS(ln, l.cfg.CertFile, l.cfg.KeyFile)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	scheme := "http"
	if tlsOn {
		scheme = "https"
	}
	l.log.Info("web panel listening", "url", scheme+"://"+ln.Addr().String()+"/")
	select {
	case err := <-errc:
		return fmt.Errorf("web: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownWait)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	<-errc
	return nil
}
