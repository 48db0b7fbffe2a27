// Package clocksync tells whether the system clock has been synchronized
// since boot. A Raspberry Pi has no battery-backed clock: until NTP answers,
// its wall clock can be days off, and the age of a command judged by it
// means nothing.
//
// gated's unit has ProtectClock=yes, which forbids adjtimex(2) even for
// reading the kernel's synchronization flag, so a Checker asks two sources
// that can be read inside the sandbox:
//
//   - systemd-timesyncd's TimesyncFile, which exists once timesyncd has
//     synchronized the clock since boot (Raspberry Pi OS and Debian's
//     default NTP client);
//   - the NTPSynchronized property of org.freedesktop.timedate1 on the
//     system bus: systemd-timedated reads the kernel's flag, which every
//     NTP client that disciplines the kernel clock clears once synchronized
//     (chrony with its rtcsync directive, as Debian ships it; ntpd; ntpsec).
//
// The clock is synchronized as soon as either says so, and stays so for the
// life of the process: once set from NTP, a clock is off by seconds a day at
// most, whatever NTP does next. While neither source can answer (no
// timesyncd file, and timedated missing or the bus unreachable), the clock
// is taken as synchronized, as gated did before it asked: a machine without
// both is not a stock Pi, and a wrong clock then shows as refused commands
// rather than as commands of any age accepted. A chrony configured without
// rtcsync never clears the kernel's flag: gated then never judges a
// command's age (mqttlink says so once, at WARN), so add rtcsync or use
// timesyncd.
package clocksync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/jonboulle/clockwork"
)

// TimesyncFile exists once systemd-timesyncd has synchronized the clock
// since boot; it is touched at every synchronization after that
// (systemd-timesyncd.service(8)).
const TimesyncFile = "/run/systemd/timesync/synchronized"

// The timedated names.
const (
	TimedateName  = "org.freedesktop.timedate1"
	TimedatePath  = dbus.ObjectPath("/org/freedesktop/timedate1")
	TimedateIface = "org.freedesktop.timedate1"
)

// Defaults for the zero values of Options.
const (
	DefaultEvery   = 5 * time.Second // between two questions to timedated
	DefaultTimeout = 2 * time.Second // for one question, connecting included
	maxBackoff     = time.Minute     // between questions while timedated cannot answer
)

// Options are a Checker's sources and collaborators; the zero value asks
// the real ones.
type Options struct {
	// File exists once the clock is synchronized; "" means TimesyncFile.
	File string
	// Bus is the D-Bus address timedated is asked on; "" means the system
	// bus. Ignored when Ask is set.
	Bus string
	// Ask, if set, replaces the question to timedated: it reports whether
	// the clock is synchronized, and returns by ctx's deadline.
	Ask func(ctx context.Context) (bool, error)

	Log     *slog.Logger    // nil: slog.Default()
	Clock   clockwork.Clock // paces the questions; nil: the real clock
	Every   time.Duration   // 0: DefaultEvery
	Timeout time.Duration   // 0: DefaultTimeout (real time)
}

// The states of a Checker.
const (
	unknown  int32 = iota // no source has answered
	unsynced              // timedated said no, and there is no TimesyncFile
	synced                // a source said yes: for good
)

// Checker tells whether the clock is synchronized. Synchronized may be
// called from any goroutine; Run asks timedated in the background.
type Checker struct {
	file    string
	bus     string
	ask     func(ctx context.Context) (bool, error)
	log     *slog.Logger
	clk     clockwork.Clock
	every   time.Duration
	timeout time.Duration

	state    atomic.Int32
	syncOnce sync.Once
}

// New returns a Checker. It checks TimesyncFile at once; timedated is asked
// only by Run.
func New(opt Options) *Checker {
	if opt.File == "" {
		opt.File = TimesyncFile
	}
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	if opt.Clock == nil {
		opt.Clock = clockwork.NewRealClock()
	}
	if opt.Every <= 0 {
		opt.Every = DefaultEvery
	}
	if opt.Timeout <= 0 {
		opt.Timeout = DefaultTimeout
	}
	c := &Checker{
		file: opt.File, bus: opt.Bus, ask: opt.Ask,
		log: opt.Log.With("part", "clock"), clk: opt.Clock, every: opt.Every, timeout: opt.Timeout,
	}
	c.fileSays()
	return c
}

// Synchronized reports whether the system clock has been synchronized since
// boot (true also while no source can tell, see the package comment). It
// never waits for D-Bus: it returns timedated's last answer, after a stat of
// TimesyncFile while the clock is not known to be synchronized.
func (c *Checker) Synchronized() bool {
	switch c.state.Load() {
	case synced:
		return true
	case unsynced:
		return c.fileSays()
	}
	c.fileSays()
	return true
}

// fileSays reports whether TimesyncFile exists, and if so marks the clock
// synchronized.
func (c *Checker) fileSays() bool {
	if _, err := os.Stat(c.file); err != nil {
		return false
	}
	c.synchronized("systemd-timesyncd", c.file)
	return true
}

func (c *Checker) synchronized(source, detail string) {
	c.state.Store(synced)
	c.syncOnce.Do(func() { c.log.Info("system clock synchronized", "source", source, "by", detail) })
}

// Run asks timedated every Every, each time within Timeout, until a source
// says that the clock is synchronized or ctx ends; then it returns. While
// timedated cannot answer it asks less often, up to once a minute.
func (c *Checker) Run(ctx context.Context) {
	ask := c.ask
	if ask == nil {
		td := &timedate{bus: c.bus, life: ctx}
		defer td.close()
		ask = td.ask
	}
	wait := c.every
	failed, saidNo := false, false
	for c.state.Load() != synced && !c.fileSays() {
		actx, cancel := context.WithTimeout(ctx, c.timeout)
		ok, err := ask(actx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		switch {
		case err != nil:
			if !failed {
				failed = true
				taken := "taking it as synchronized until timedated answers"
				if c.state.Load() == unsynced {
					taken = "keeping timedated's last answer, not synchronized"
				}
				c.log.Warn("cannot ask timedated whether the system clock is synchronized: "+taken, "err", err)
			} else {
				c.log.Debug("timedated still cannot answer", "err", err)
			}
			wait = min(wait*2, maxBackoff)
		case ok:
			c.synchronized("systemd-timedated", TimedateIface+".NTPSynchronized")
			return
		default:
			c.state.CompareAndSwap(unknown, unsynced)
			if !saidNo {
				saidNo = true
				c.log.Info("system clock not synchronized since boot yet: the age of commands is not judged until it is")
			}
			failed, wait = false, c.every
		}
		t := c.clk.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.Chan():
		}
	}
}

// timedate asks timedated over a connection of its own, opened at the
// first question and again after any error.
type timedate struct {
	bus  string
	life context.Context // the connection closes when it ends
	conn *dbus.Conn
	stop context.CancelFunc
}

func (t *timedate) ask(ctx context.Context) (bool, error) {
	if t.conn == nil {
		if err := t.connect(ctx); err != nil {
			return false, err
		}
	}
	var v dbus.Variant
	err := t.conn.Object(TimedateName, TimedatePath).
		CallWithContext(ctx, "org.freedesktop.DBus.Properties.Get", 0, TimedateIface, "NTPSynchronized").Store(&v)
	if err != nil {
		t.close() // a stuck or broken connection is not asked again
		return false, fmt.Errorf("%s.NTPSynchronized: %w", TimedateIface, named(err))
	}
	b, ok := v.Value().(bool)
	if !ok {
		return false, fmt.Errorf("%s.NTPSynchronized is %s, not a boolean", TimedateIface, v.Signature())
	}
	return b, nil
}

// connect opens the connection; ctx ending abandons the attempt, as
// closing the connection unblocks authentication.
func (t *timedate) connect(ctx context.Context) error {
	cctx, stop := context.WithCancel(t.life)
	unhook := context.AfterFunc(ctx, stop)
	opts := []dbus.ConnOption{dbus.WithContext(cctx)}
	var (
		conn *dbus.Conn
		err  error
	)
	if t.bus == "" {
		conn, err = dbus.ConnectSystemBus(opts...)
	} else {
		conn, err = dbus.Connect(t.bus, opts...)
	}
	if !unhook() && err == nil {
		err = ctx.Err()
	}
	if err != nil {
		stop()
		return fmt.Errorf("connect to the %s bus: %w", busLabel(t.bus), err)
	}
	t.conn, t.stop = conn, stop
	return nil
}

func (t *timedate) close() {
	if t.conn != nil {
		t.stop()
		t.conn.Close()
		t.conn, t.stop = nil, nil
	}
}

func busLabel(bus string) string {
	if bus == "" {
		return "system"
	}
	return bus
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
