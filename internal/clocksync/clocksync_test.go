package clocksync

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/jonboulle/clockwork"

	"rocksaying.tw/gated/internal/dbuslink/dbustest"
	"rocksaying.tw/gated/internal/syncbuf"
)

// deadline bounds the tests' waits: a deadlock detector, not a speed limit.
const deadline = 30 * time.Second

type answer struct {
	ok  bool
	err error
}

// fakeAsk is a timedated the test answers question by question.
type fakeAsk struct {
	asked   chan context.Context
	answers chan answer
}

func newFakeAsk() *fakeAsk {
	return &fakeAsk{asked: make(chan context.Context), answers: make(chan answer)}
}

func (f *fakeAsk) ask(ctx context.Context) (bool, error) {
	select {
	case f.asked <- ctx:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	select {
	case a := <-f.answers:
		return a.ok, a.err
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

// answer waits for Run's next question and answers it.
func (f *fakeAsk) answer(t *testing.T, a answer) {
	t.Helper()
	select {
	case <-f.asked:
	case <-time.After(deadline):
		t.Fatal("Run asked nothing")
	}
	f.answers <- a
}

type rig struct {
	c    *Checker
	ask  *fakeAsk
	clk  *clockwork.FakeClock
	logs *syncbuf.Buffer
	file string
	ctx  context.Context // for BlockUntilContext
	done chan struct{}   // closed when Run returns
}

// start returns a Checker on a fake timedated and a TimesyncFile that does
// not exist yet, with Run started.
func start(t *testing.T) *rig {
	t.Helper()
	r := &rig{ask: newFakeAsk(), clk: clockwork.NewFakeClock(), logs: &syncbuf.Buffer{},
		file: filepath.Join(t.TempDir(), "synchronized"), done: make(chan struct{})}
	// A question's timeout is real time: longer than the test, so that
	// only the fake clock paces Run.
	r.c = New(Options{File: r.file, Ask: r.ask.ask, Clock: r.clk, Timeout: time.Hour,
		Log: slog.New(slog.NewTextHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		defer close(r.done)
		r.c.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	wctx, wcancel := context.WithTimeout(context.Background(), deadline)
	t.Cleanup(wcancel)
	r.ctx = wctx
	return r
}

// waiting waits until Run waits for its next question.
func (r *rig) waiting(t *testing.T) {
	t.Helper()
	if err := r.clk.BlockUntilContext(r.ctx, 1); err != nil {
		t.Fatalf("Run does not wait for its next question: %v", err)
	}
}

func (r *rig) want(t *testing.T, want bool, when string) {
	t.Helper()
	done := make(chan bool, 1)
	go func() { done <- r.c.Synchronized() }()
	var got bool
	select {
	case got = <-done:
	case <-time.After(deadline):
		t.Fatalf("%s: Synchronized() waits", when)
	}
	if got != want {
		t.Errorf("%s: Synchronized() = %v, want %v\nlog:\n%s", when, got, want, r.logs)
	}
}

func (r *rig) returned(t *testing.T) {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(deadline):
		t.Fatal("Run did not return")
	}
}

func TestTimesyncFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "synchronized")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var logs syncbuf.Buffer
	c := New(Options{File: file, Ask: func(context.Context) (bool, error) { return false, nil },
		Log: slog.New(slog.NewTextHandler(&logs, nil))})
	if !c.Synchronized() {
		t.Error("Synchronized() = false with the timesyncd file present")
	}
	done := make(chan struct{})
	go func() { c.Run(context.Background()); close(done) }()
	select {
	case <-done:
	case <-time.After(deadline):
		t.Fatal("Run asked timedated although the timesyncd file said synchronized")
	}
	if !strings.Contains(logs.String(), "source=systemd-timesyncd") {
		t.Errorf("log does not name timesyncd:\n%s", &logs)
	}
}

func TestTimedatedAnswers(t *testing.T) {
	r := start(t)
	r.ask.answer(t, answer{ok: false})
	r.waiting(t)
	r.want(t, false, "timedated said no")

	// A question that fails keeps the last answer; failures are one WARN,
	// and the questions come less often.
	r.clk.Advance(DefaultEvery)
	r.ask.answer(t, answer{err: errors.New("no bus")})
	r.waiting(t)
	r.want(t, false, "after a failed question")
	r.clk.Advance(DefaultEvery) // the first wait after a failure is twice as long
	r.waiting(t)
	r.clk.Advance(DefaultEvery)
	r.ask.answer(t, answer{err: errors.New("no bus")})
	r.waiting(t)
	if n := strings.Count(r.logs.String(), "level=WARN"); n != 1 {
		t.Errorf("%d WARNs for two failed questions, want 1:\n%s", n, r.logs)
	}
	r.clk.Advance(4 * DefaultEvery)
	r.ask.answer(t, answer{ok: false})
	r.waiting(t)
	r.want(t, false, "timedated said no again")

	r.clk.Advance(DefaultEvery)
	r.ask.answer(t, answer{ok: true})
	r.returned(t)
	r.want(t, true, "timedated said yes")
	if !strings.Contains(r.logs.String(), "source=systemd-timedated") {
		t.Errorf("log does not name timedated:\n%s", r.logs)
	}
}

// While no source can tell, the clock is taken as synchronized.
func TestUnknownIsSynchronized(t *testing.T) {
	r := start(t)
	r.ask.answer(t, answer{err: errors.New("org.freedesktop.DBus.Error.ServiceUnknown")})
	r.waiting(t)
	r.want(t, true, "timedated cannot answer")
	if !strings.Contains(r.logs.String(), "taking it as synchronized") {
		t.Errorf("log does not say the clock is taken as synchronized:\n%s", r.logs)
	}
}

// The timesyncd file appearing is seen at once, without waiting for Run.
func TestTimesyncFileAppears(t *testing.T) {
	r := start(t)
	r.ask.answer(t, answer{ok: false})
	r.waiting(t)
	r.want(t, false, "no file, timedated said no")
	if err := os.WriteFile(r.file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	r.want(t, true, "the file appeared")
	r.clk.Advance(DefaultEvery)
	r.returned(t) // without another question
}

// Synchronized never waits for timedated, however long it takes, and each
// question has a deadline.
func TestSynchronizedNeverWaits(t *testing.T) {
	r := start(t)
	r.ask.answer(t, answer{ok: false})
	r.waiting(t)
	r.clk.Advance(DefaultEvery)
	var ctx context.Context
	select {
	case ctx = <-r.ask.asked: // and no answer: timedated hangs
	case <-time.After(deadline):
		t.Fatal("Run asked nothing")
	}
	if dl, ok := ctx.Deadline(); !ok || time.Until(dl) > time.Hour {
		t.Errorf("question deadline %v (set %v), want one within the hour of Options.Timeout", dl, ok)
	}
	done := make(chan bool)
	go func() { done <- r.c.Synchronized() }()
	select {
	case got := <-done:
		if got {
			t.Error("Synchronized() = true while timedated hangs after saying no")
		}
	case <-time.After(deadline):
		t.Fatal("Synchronized waited for timedated")
	}
}

// fakeTimedate serves org.freedesktop.DBus.Properties.Get for timedated's
// NTPSynchronized.
type fakeTimedate struct {
	mu     sync.Mutex
	synced bool
}

func (f *fakeTimedate) set(v bool) {
	f.mu.Lock()
	f.synced = v
	f.mu.Unlock()
}

func (f *fakeTimedate) Get(iface, name string) (dbus.Variant, *dbus.Error) {
	if iface != TimedateIface || name != "NTPSynchronized" {
		return dbus.Variant{}, dbus.NewError("org.freedesktop.DBus.Error.UnknownProperty", []any{iface + "." + name})
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return dbus.MakeVariant(f.synced), nil
}

// serveTimedate puts a fake timedated on the bus at addr.
func serveTimedate(t *testing.T, addr string) *fakeTimedate {
	t.Helper()
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	f := &fakeTimedate{}
	if err := conn.Export(f, TimedatePath, "org.freedesktop.DBus.Properties"); err != nil {
		t.Fatal(err)
	}
	if reply, err := conn.RequestName(TimedateName, dbus.NameFlagDoNotQueue); err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("request name %s: %v, %v", TimedateName, reply, err)
	}
	return f
}

// The question to timedated, against a real dbus-daemon.
func TestTimedateOverDBus(t *testing.T) {
	d := dbustest.Start(t)
	ctx := context.Background()
	q := func(td *timedate) (bool, error) {
		actx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer cancel()
		return td.ask(actx)
	}

	td := &timedate{bus: d.Address, life: ctx}
	defer td.close()
	if _, err := q(td); err == nil || !strings.Contains(err.Error(), "ServiceUnknown") {
		t.Errorf("no timedated on the bus: err %v, want ServiceUnknown", err)
	}

	f := serveTimedate(t, d.Address)
	for _, want := range []bool{false, true} {
		f.set(want)
		if got, err := q(td); err != nil || got != want {
			t.Errorf("NTPSynchronized %v: asked %v, %v", want, got, err)
		}
	}

	// A bus that hangs costs one question's timeout, and the next
	// question opens a new connection.
	d.Freeze()
	if _, err := q(td); err == nil {
		t.Error("a frozen bus answered")
	}
	d.Thaw()
	if got, err := q(td); err != nil || !got {
		t.Errorf("after the bus came back: %v, %v; want true", got, err)
	}

	bad := &timedate{bus: "unix:path=" + filepath.Join(t.TempDir(), "none"), life: ctx}
	if _, err := q(bad); err == nil || !strings.Contains(err.Error(), "connect") {
		t.Errorf("no bus: err %v, want a connect error", err)
	}
}

// A Checker on a real bus: not synchronized until timedated says so.
func TestCheckerOverDBus(t *testing.T) {
	d := dbustest.Start(t)
	f := serveTimedate(t, d.Address)
	clk := clockwork.NewFakeClock()
	c := New(Options{File: filepath.Join(t.TempDir(), "none"), Bus: d.Address, Clock: clk,
		Log: slog.New(slog.DiscardHandler)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	wctx, wcancel := context.WithTimeout(context.Background(), deadline)
	defer wcancel()
	if err := clk.BlockUntilContext(wctx, 1); err != nil {
		t.Fatal(err)
	}
	if c.Synchronized() {
		t.Error("Synchronized() = true while timedated says false")
	}
	f.set(true)
	clk.Advance(DefaultEvery)
	select {
	case <-done:
	case <-time.After(deadline):
		t.Fatal("Run did not return once timedated said true")
	}
	if !c.Synchronized() {
		t.Error("Synchronized() = false after timedated said true")
	}
}
