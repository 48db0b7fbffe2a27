// Package demobroker is the embedded MQTT broker of gated -demo: a mochi-mqtt
// server with one TCP listener on loopback that lets anyone in, so the whole
// system runs on a bare machine in one command. It is not for production:
// there is no authentication and nothing is kept across restarts.
package demobroker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Start starts the broker on addr, which must be a loopback address
// ("127.0.0.1:1883", or "127.0.0.1:0" for any free port; "" means
// 127.0.0.1:1883). It returns the address bound and a stop func, which
// closes the listener and every client connection and may be called more
// than once; the broker also stops when ctx ends. log may be nil.
func Start(ctx context.Context, addr string, log *slog.Logger) (string, func(), error) {
	if addr == "" {
		addr = "127.0.0.1:1883"
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "", nil, fmt.Errorf("demo broker %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return "", nil, fmt.Errorf("demo broker %q: it lets anyone in, so it listens on loopback only", addr)
	}
	if log == nil {
		log = slog.Default()
	}
	log = log.With("part", "demobroker")
	// mochi logs every connection at Info: keep its chatter at Warn and up.
	quiet := slog.New(levelFilter{log.Handler(), slog.LevelWarn})
	s := mochi.New(&mochi.Options{InlineClient: false, Logger: quiet})
	// mochi refuses every client until an auth hook says otherwise.
	auth := new(allowAll)
	if err := s.AddHook(auth, nil); err != nil {
		return "", nil, fmt.Errorf("demo broker: %w", err)
	}
	tcp := listeners.NewTCP(listeners.Config{ID: "demo", Address: addr})
	if err := s.AddListener(tcp); err != nil { // binds here, so errors come now
		s.Close()
		return "", nil, fmt.Errorf("demo broker listen %s: %w", addr, err)
	}
	if err := s.Serve(); err != nil { // returns at once: listeners run on their own goroutines
		s.Close()
		return "", nil, fmt.Errorf("demo broker: %w", err)
	}
	bound := tcp.Address()
	log.Info("demo broker listening", "addr", bound)

	var once sync.Once
	done := make(chan struct{})
	stop := func() {
		once.Do(func() {
			close(done)
			// mochi's Close races, under -race, with what its connection
			// goroutines read when they start (mochi-mqtt/server#541):
			// taking the lock every connection took in its auth hook
			// orders those reads before Close.
			n := auth.count()
			s.Close()
			log.Info("demo broker stopped", "connections", n)
		})
	}
	go func() {
		select {
		case <-ctx.Done():
			stop()
		case <-done:
		}
	}()
	return bound, stop, nil
}

// allowAll lets every client connect and use every topic, as mochi's
// hooks/auth.AllowHook does; that package also pulls in a YAML parser
// (for its ledger) that gated has no other use for.
type allowAll struct {
	mochi.HookBase
	mu      sync.Mutex // see stop in Start
	clients int        // connections accepted
}

func (a *allowAll) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.clients
}

func (*allowAll) ID() string { return "allow-all" }

func (*allowAll) Provides(b byte) bool {
	return slices.Contains([]byte{mochi.OnConnectAuthenticate, mochi.OnACLCheck}, b)
}

func (a *allowAll) OnConnectAuthenticate(*mochi.Client, packets.Packet) bool {
	a.mu.Lock()
	a.clients++
	a.mu.Unlock()
	return true
}

func (*allowAll) OnACLCheck(*mochi.Client, string, bool) bool { return true }

// levelFilter passes records at or above min to h, except mochi's warnings
// about connections it closed itself.
type levelFilter struct {
	h   slog.Handler
	min slog.Level
}

func (f levelFilter) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= f.min && f.h.Enabled(ctx, l)
}
func (f levelFilter) Handle(ctx context.Context, r slog.Record) error {
	closed := false
	r.Attrs(func(a slog.Attr) bool {
		if err, ok := a.Value.Any().(error); ok && errors.Is(err, net.ErrClosed) {
			closed = true // mochi warns of every connection it closes on stop
		}
		return !closed
	})
	if closed {
		return nil
	}
	return f.h.Handle(ctx, r)
}
func (f levelFilter) WithAttrs(a []slog.Attr) slog.Handler {
	return levelFilter{f.h.WithAttrs(a), f.min}
}
func (f levelFilter) WithGroup(n string) slog.Handler { return levelFilter{f.h.WithGroup(n), f.min} }
