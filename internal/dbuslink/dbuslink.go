// Package dbuslink serves the gate on D-Bus: the bus name tw.rocksaying.Gate
// with the object /tw/rocksaying/Gate, whose interface tw.rocksaying.Gate has
// the five commands, GetStatus, the StatusChanged signal and four read-only
// properties (SPEC.md, "D-Bus").
//
// Method calls run on godbus's goroutines: they only hand the command to the
// gate with Gate.Do and a bounded context. Signals and PropertiesChanged are
// emitted from Run's goroutine, fed by Gate.Subscribe, which never waits for
// a slow reader: a stuck bus stalls this link and nothing else.
//
// This file holds the Service: the connection, the name, the signals and
// properties. object.go holds the methods callers invoke; the names they
// use are in dbusapi.
package dbuslink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/introspect"
	"github.com/godbus/dbus/v5/prop"

	"rocksaying.tw/gated/internal/dbuslink/dbusapi"
	"rocksaying.tw/gated/internal/gate"
)

// ErrNameOwned is returned by Start when another connection owns dbusapi.Name.
var ErrNameOwned = errors.New("dbus: name " + dbusapi.Name + " is already owned by another connection")

// Gate is what the link needs of the gate; *gate.Gate implements it.
type Gate interface {
	// Send submits a command (a position with its target; who asked, as
	// the link names them, goes into the gate's record of it) and returns
	// once the gate accepted or refused it (a *gate.RefusedError), or ctx
	// ended.
	Send(ctx context.Context, req gate.Request) (gate.Status, error)
	Status() gate.Status
	Subscribe() (<-chan gate.Status, func())
}

// Config says which bus to serve on.
type Config struct {
	// Bus is "system" (also the empty string), "session", or a D-Bus
	// address such as "unix:path=/run/dbus/system_bus_socket". "none" is
	// refused by Start: the caller should not start the link at all.
	Bus string
}

// Options are the link's collaborators; the zero value is usable.
type Options struct {
	Log *slog.Logger // nil: slog.Default()
	// Backoff is the first wait before reconnecting after the bus went
	// away; it doubles on every failure up to MaxBackoff. 0: 1s.
	Backoff time.Duration
	// MaxBackoff caps the wait between reconnection attempts. 0: 30s.
	MaxBackoff time.Duration
	// History serves GetEvents (events.go); nil: an empty history.
	History History
}

// How long a D-Bus caller waits for the gate to take a command, and how
// long connecting (dial, authentication, Hello, RequestName) may take.
const (
	commandTimeout = 5 * time.Second
	shownWait      = time.Second // a reply waiting for its status to be shown
	connectTimeout = 15 * time.Second
	releaseTimeout = 2 * time.Second
)

// Service is the gate on one bus. Start returns it owning the name; Run
// keeps it up to date and gives the name back when its context ends.
type Service struct {
	cfg Config
	g   Gate
	log *slog.Logger
	opt Options

	life context.Context // ends when the service stops: closes every conn
	stop context.CancelFunc

	// Owned by Run's goroutine after Start returns.
	conn  *dbus.Conn
	props *prop.Properties
	up    atomic.Bool // Connected

	// shown is the seq of the latest status shown on the bus (or held by
	// the properties at export). A method call replies once the status it
	// made has been shown.
	shown seqWait
}

// seqWait holds the seq of the latest status shown on the bus and lets
// other goroutines wait for it to reach a value.
type seqWait struct {
	mu  sync.Mutex
	seq uint64
	ch  chan struct{} // closed when seq moves; nil: no one waits
}

func (w *seqWait) set(seq uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if seq <= w.seq {
		return
	}
	w.seq = seq
	if w.ch != nil {
		close(w.ch)
		w.ch = nil
	}
}

func (w *seqWait) load() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.seq
}

// wait returns true once seq has been shown, false if ctx ends first.
func (w *seqWait) wait(ctx context.Context, seq uint64) bool {
	for {
		w.mu.Lock()
		if w.seq >= seq {
			w.mu.Unlock()
			return true
		}
		if w.ch == nil {
			w.ch = make(chan struct{})
		}
		ch := w.ch
		w.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		}
	}
}

// Start connects to the bus, exports the object with all its interfaces and
// then requests the name, so that every member is there when the name
// appears. It returns once the name is owned (so the caller may report
// readiness) or with an error: ErrNameOwned (wrapped) when another
// connection owns the name, or an error naming the bus and what failed.
// Start gives up when ctx ends, and after 15 s in any case.
func Start(ctx context.Context, cfg Config, g Gate, opt Options) (*Service, error) {
	if cfg.Bus == "none" {
		return nil, errors.New(`dbus: bus "none": the link is off`)
	}
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	if opt.Backoff <= 0 {
		opt.Backoff = time.Second
	}
	if opt.MaxBackoff <= 0 {
		opt.MaxBackoff = 30 * time.Second
	}
	s := &Service{cfg: cfg, g: g, opt: opt, log: opt.Log.With("part", "dbus")}
	s.life, s.stop = context.WithCancel(context.Background())
	if err := s.connect(ctx); err != nil {
		s.stop()
		return nil, err
	}
	s.log.Info("serving on the bus", "bus", busLabel(cfg.Bus), "name", dbusapi.Name)
	return s, nil
}

// Connected reports whether the service is on its bus now, owning the
// name; false while it reconnects and after Run returns.
func (s *Service) Connected() bool { return s.up.Load() }

// Run forwards every new status as the StatusChanged signal and as
// PropertiesChanged until ctx ends; then it releases the name, closes the
// connection and returns nil. If the bus goes away, Run logs it and
// reconnects with a growing backoff (re-exporting and re-requesting the
// name) while the gate carries on; method calls fail meanwhile only because
// there is no bus to carry them. Run must be called once.
func (s *Service) Run(ctx context.Context) error {
	defer s.stop()
	// A write to a bus that stopped reading blocks; the service must still
	// stop soon after ctx ends, so the connection is closed under it.
	context.AfterFunc(ctx, func() { time.AfterFunc(2*releaseTimeout, s.stop) })

	sub, unsubscribe := s.g.Subscribe()
	defer unsubscribe()
	for {
		select {
		case <-ctx.Done():
			s.release()
			return nil
		case st := <-sub:
			s.publish(st)
		case <-s.conn.Context().Done():
			s.up.Store(false)
			if ctx.Err() != nil {
				continue // shutting down: the conn was closed by us
			}
			s.log.Warn("lost the bus connection; the gate carries on, reconnecting", "bus", busLabel(s.cfg.Bus))
			if !s.reconnect(ctx, sub) {
				return nil
			}
			s.log.Info("serving on the bus again", "bus", busLabel(s.cfg.Bus), "name", dbusapi.Name)
		}
	}
}

// reconnect tries until it owns the name again or ctx ends (then false).
// Statuses that arrive meanwhile are dropped: the new properties start from
// the gate's status at the time of export.
func (s *Service) reconnect(ctx context.Context, sub <-chan gate.Status) bool {
	wait := s.opt.Backoff
	var lastErr string
	var lastLog time.Time
	for attempt := 1; ; attempt++ {
		t := time.NewTimer(wait)
	waiting:
		for {
			select {
			case <-ctx.Done():
				t.Stop()
				return false
			case <-sub:
			case <-t.C:
				break waiting
			}
		}
		err := s.connect(ctx)
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		// The same failure on every attempt is logged once a minute.
		if msg := err.Error(); msg != lastErr || time.Since(lastLog) >= time.Minute {
			s.log.Warn("reconnect failed", "attempt", attempt, "retry_in", min(2*wait, s.opt.MaxBackoff), "err", err)
			lastErr, lastLog = msg, time.Now()
		}
		wait = min(2*wait, s.opt.MaxBackoff)
	}
}

// connect dials, exports and requests the name; on success the new conn
// replaces the old one.
func (s *Service) connect(ctx context.Context) error {
	dctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	connCtx, closeConn := context.WithCancel(s.life)
	// Until the name is owned, ctx (or the timeout) ending abandons the
	// attempt: closing the conn unblocks authentication and calls.
	unhook := context.AfterFunc(dctx, closeConn)
	fail := func(err error) error {
		unhook()
		closeConn()
		if ctx.Err() != nil {
			return fmt.Errorf("dbus: connect to %s bus: %w", busLabel(s.cfg.Bus), ctx.Err())
		}
		return err
	}

	conn, err := dbusapi.Connect(connCtx, s.cfg.Bus)
	if err != nil {
		return fail(fmt.Errorf("dbus: connect to %s bus: %w", busLabel(s.cfg.Bus), err))
	}
	st := s.g.Status()
	props, err := s.export(conn)
	if err != nil {
		return fail(fmt.Errorf("dbus: export %s: %w", dbusapi.Path, err))
	}
	var reply uint32
	err = conn.BusObject().CallWithContext(dctx, "org.freedesktop.DBus.RequestName", 0, dbusapi.Name, uint32(dbus.NameFlagDoNotQueue)).Store(&reply)
	if err != nil {
		return fail(fmt.Errorf("dbus: request name %s on %s bus: %w", dbusapi.Name, busLabel(s.cfg.Bus), named(err)))
	}
	switch dbus.RequestNameReply(reply) {
	case dbus.RequestNameReplyPrimaryOwner, dbus.RequestNameReplyAlreadyOwner:
	default:
		return fail(fmt.Errorf("%w%s: is another gated running?", ErrNameOwned, ownerOf(dctx, conn)))
	}
	if !unhook() {
		closeConn()
		return fmt.Errorf("dbus: connect to %s bus: %w", busLabel(s.cfg.Bus), dctx.Err())
	}
	// Properties hold the status seen before export; anything newer comes
	// through Run's subscription.
	s.setProps(props, st)
	if s.conn != nil {
		s.conn.Close()
	}
	s.conn, s.props = conn, props
	s.up.Store(true)
	s.shown.set(st.Seq)
	return nil
}

// named puts a D-Bus error's name before its message, which is all that
// dbus.Error's Error method says.
func named(err error) error {
	var de dbus.Error
	if errors.As(err, &de) {
		return fmt.Errorf("%s: %w", de.Name, err)
	}
	return err
}

// ownerOf describes who owns dbusapi.Name, for the error message; best effort.
func ownerOf(ctx context.Context, conn *dbus.Conn) string {
	var owner string
	if conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.GetNameOwner", 0, dbusapi.Name).Store(&owner) != nil {
		return ""
	}
	var pid uint32
	if conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.GetConnectionUnixProcessID", 0, owner).Store(&pid) != nil {
		return " (" + owner + ")"
	}
	return fmt.Sprintf(" (%s, pid %d)", owner, pid)
}

// export puts the object on conn: the gate interface, Properties and
// Introspectable. godbus answers org.freedesktop.DBus.Peer on every path by
// itself.
func (s *Service) export(conn *dbus.Conn) (*prop.Properties, error) {
	obj := &object{s: s, conn: conn}
	if err := conn.Export(obj, dbusapi.Path, dbusapi.Iface); err != nil {
		return nil, err
	}
	st := s.g.Status()
	props, err := prop.Export(conn, dbusapi.Path, prop.Map{dbusapi.Iface: {
		"State":      {Value: string(st.State), Emit: prop.EmitTrue},
		"Alarm":      {Value: st.Alarm, Emit: prop.EmitTrue},
		"Obstructed": {Value: st.Obstructed, Emit: prop.EmitTrue},
		"Fault":      {Value: string(st.Fault), Emit: prop.EmitTrue},
		"Position":   {Value: positionProp(st), Emit: prop.EmitTrue},
	}})
	if err != nil {
		return nil, err
	}
	pi := props.Introspection(dbusapi.Iface)
	sort.Slice(pi, func(i, j int) bool { return pi[i].Name < pi[j].Name })
	node := &introspect.Node{
		Name: string(dbusapi.Path),
		Interfaces: []introspect.Interface{
			prop.IntrospectData,
			{
				Name:    dbusapi.Iface,
				Methods: introspect.Methods(obj),
				Signals: []introspect.Signal{{
					Name: "StatusChanged",
					Args: []introspect.Arg{{Name: "payload", Type: "s", Direction: "out"}},
				}},
				Properties: pi,
			},
		},
	}
	// NewIntrospectable adds Introspectable and Peer.
	if err := conn.Export(introspect.NewIntrospectable(node), dbusapi.Path, "org.freedesktop.DBus.Introspectable"); err != nil {
		return nil, err
	}
	return props, nil
}

// publish emits st unless it was already shown.
func (s *Service) publish(st gate.Status) {
	if st.Seq <= s.shown.load() {
		return
	}
	defer s.shown.set(st.Seq)
	// Properties first, so a client that reads them on StatusChanged sees
	// the new values.
	s.setProps(s.props, st)
	if err := s.conn.Emit(dbusapi.Path, dbusapi.Signal, string(st.JSON())); err != nil {
		s.log.Debug("emit StatusChanged", "seq", st.Seq, "err", err)
	}
}

// setProps updates the properties that changed; prop emits one
// PropertiesChanged for each.
func (s *Service) setProps(p *prop.Properties, st gate.Status) {
	for _, kv := range []struct {
		name string
		v    any
	}{
		{"State", string(st.State)},
		{"Alarm", st.Alarm},
		{"Obstructed", st.Obstructed},
		{"Fault", string(st.Fault)},
		{"Position", positionProp(st)},
	} {
		if err := setProp(p, kv.name, kv.v); err != nil {
			s.log.Debug("emit PropertiesChanged", "property", kv.name, "err", err)
		}
	}
}

// setProp sets a read-only property. prop offers only SetMust for that,
// which panics when the signal cannot be sent (a closed connection); the
// value is stored before the signal is sent, so recovering loses nothing.
func setProp(p *prop.Properties, name string, v any) (err error) {
	if p.GetMust(dbusapi.Iface, name) == v {
		return nil
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	p.SetMust(dbusapi.Iface, name, v)
	return nil
}

// release gives the name back and closes the connection.
func (s *Service) release() {
	s.up.Store(false)
	if s.conn == nil || !s.conn.Connected() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
	defer cancel()
	if err := s.conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.ReleaseName", 0, dbusapi.Name).Err; err != nil {
		s.log.Warn("release name", "name", dbusapi.Name, "err", err)
	}
	s.conn.Close()
}

func busLabel(bus string) string {
	if bus == "" {
		return "system"
	}
	return bus
}
