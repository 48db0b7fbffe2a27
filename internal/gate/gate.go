package gate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"
	"periph.io/x/conn/v3/gpio"
)

// Pins are the gate's lines. OpenLimit, ClosedLimit, MotorOpen and MotorClose
// are required; the others may be nil.
type Pins struct {
	OpenLimit   gpio.PinIn
	ClosedLimit gpio.PinIn
	Obstruction gpio.PinIn // nil: no sensor
	MotorOpen   gpio.PinOut
	MotorClose  gpio.PinOut
	MotorStop   gpio.PinOut // pulse mode only; nil: none
	Siren       gpio.PinOut // nil: none
}

// OutputMode says how the motor outputs are driven.
type OutputMode string

// Output modes.
const (
	Hold  OutputMode = "hold"  // relay held while the motor runs
	Pulse OutputMode = "pulse" // momentary contact on an operator's inputs
)

// Config is what a Gate needs beyond its pins.
type Config struct {
	Name   string
	Params Params

	InputsActiveLow           bool // a closed switch pulls the line low
	OutputsActiveLow          bool // relay boards that switch on a low line
	ObstructionNormallyClosed bool // line active while the beam is clear (fail-safe)
	OutputMode                OutputMode
	PulseWidth                time.Duration
	Debounce                  time.Duration
}

// Options are the Gate's collaborators; the zero value is usable.
type Options struct {
	Clock clockwork.Clock // nil: the real clock
	Log   *slog.Logger    // nil: slog.Default()
	// Heartbeat, if set, is called every HeartbeatEvery from the goroutine
	// that owns the gate, so a stuck gate loop stops the heartbeats (the
	// systemd watchdog).
	Heartbeat      func()
	HeartbeatEvery time.Duration
	// EdgeWait bounds each wait for an input edge; on timeout the line is
	// read again (resynchronising after a missed edge). 0: 10s.
	EdgeWait time.Duration
}

// Gate owns a Machine and its pins: one goroutine (Run) decides and drives
// the outputs; any goroutine may call Do, Status and Subscribe.
type Gate struct {
	cfg  Config
	pins Pins
	opt  Options
	clk  clockwork.Clock
	log  *slog.Logger

	reqs  chan request
	edges chan edge

	status  atomic.Pointer[Status]
	running atomic.Bool
	// stopped is closed when Run returns, so that a Do whose request the
	// owner will never take does not wait for its context.
	stopped  chan struct{}
	stopOnce sync.Once

	mu   sync.Mutex
	subs map[chan Status]struct{}
}

type request struct {
	cmd   Command
	cause Cause
	reply chan result // buffered: the owner never waits for a caller
}

type result struct {
	st  Status
	err error
}

type input int8

const (
	inOpen input = iota
	inClosed
	inObstruction
	numInputs
)

var inputNames = [numInputs]string{"open_limit", "closed_limit", "obstruction"}

type edge struct {
	in    input
	level gpio.Level
}

// New checks pins and config and returns a Gate; Run starts it.
func New(cfg Config, pins Pins, opt Options) (*Gate, error) {
	if pins.OpenLimit == nil || pins.ClosedLimit == nil || pins.MotorOpen == nil || pins.MotorClose == nil {
		return nil, errors.New("gate: open_limit, closed_limit, motor_open and motor_close pins are required")
	}
	if cfg.Params.AutoClose > 0 && pins.Obstruction == nil {
		// UL 325: automatic closing needs entrapment protection.
		return nil, errors.New("gate: auto_close needs an obstruction sensor")
	}
	if cfg.OutputMode == "" {
		cfg.OutputMode = Hold
	}
	if cfg.OutputMode != Hold && cfg.OutputMode != Pulse {
		return nil, fmt.Errorf("gate: output mode %q: want hold or pulse", cfg.OutputMode)
	}
	if cfg.OutputMode == Pulse && cfg.PulseWidth <= 0 {
		return nil, errors.New("gate: pulse mode needs a positive pulse width")
	}
	if cfg.Params.TravelTimeout <= 0 {
		return nil, errors.New("gate: travel timeout must be positive")
	}
	if opt.Clock == nil {
		opt.Clock = clockwork.NewRealClock()
	}
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	if opt.EdgeWait <= 0 {
		opt.EdgeWait = 10 * time.Second
	}
	g := &Gate{
		cfg: cfg, pins: pins, opt: opt, clk: opt.Clock, log: opt.Log,
		reqs:    make(chan request, 64),
		edges:   make(chan edge, 64),
		subs:    map[chan Status]struct{}{},
		stopped: make(chan struct{}),
	}
	st := NewMachine(cfg.Params).Status()
	st.Gate = cfg.Name
	g.status.Store(&st)
	return g, nil
}

// Status returns the latest status. It never blocks.
func (g *Gate) Status() Status { return *g.status.Load() }

// Subscribe returns a channel that receives the current status and then
// every new one, until cancel is called. The owner never waits for a
// subscriber: when a subscriber falls 16 statuses behind, the oldest unread
// status is dropped, so a slow subscriber sees a gap in seq but always ends
// with the latest status.
func (g *Gate) Subscribe() (<-chan Status, func()) {
	c := make(chan Status, 16)
	g.mu.Lock()
	g.subs[c] = struct{}{}
	c <- g.Status() // under mu, so no newer status can be sent before it
	g.mu.Unlock()
	var once sync.Once
	return c, func() {
		once.Do(func() {
			g.mu.Lock()
			delete(g.subs, c)
			g.mu.Unlock()
		})
	}
}

func (g *Gate) publish(st Status) {
	g.status.Store(&st)
	g.mu.Lock()
	defer g.mu.Unlock()
	for c := range g.subs {
		for {
			select {
			case c <- st:
			default:
				select {
				case <-c: // drop the oldest unread status
				default:
				}
				continue
			}
			break
		}
	}
}

// Do submits a command and waits until the gate has accepted or refused it;
// accepted means the motion has started (or was not needed), not that it has
// ended. It returns the status right after the command. If ctx ends first, Do
// returns a *RefusedError with ReasonBusy, and the command may still be
// carried out if the owner had already taken it.
func (g *Gate) Do(ctx context.Context, cmd Command, cause Cause) (Status, error) {
	if !g.running.Load() {
		return g.Status(), &RefusedError{Reason: ReasonStopped, Msg: "the gate is not running"}
	}
	r := request{cmd: cmd, cause: cause, reply: make(chan result, 1)}
	stopped := &RefusedError{Reason: ReasonStopped, Msg: "the gate has stopped"}
	select {
	case g.reqs <- r:
	case <-g.stopped:
		return g.Status(), stopped
	case <-ctx.Done():
		return g.Status(), &RefusedError{Reason: ReasonBusy, Msg: "the gate is busy: " + ctx.Err().Error()}
	}
	select {
	case res := <-r.reply:
		return res.st, res.err
	case <-g.stopped:
		// The owner answers before it looks at its context again, so an
		// answer, if any, is here already.
		select {
		case res := <-r.reply:
			return res.st, res.err
		default:
			return g.Status(), stopped
		}
	case <-ctx.Done():
		return g.Status(), &RefusedError{Reason: ReasonBusy, Msg: "the gate did not answer: " + ctx.Err().Error()}
	}
}

// Run owns the gate until ctx ends. It sets the outputs off, reads the
// inputs, and from then on is the only goroutine that steps the machine or
// drives an output. Every output is off when Run returns, whatever the
// reason (invariant 6).
func (g *Gate) Run(ctx context.Context) (err error) {
	o := &outputs{cfg: &g.cfg, pins: &g.pins, log: g.log}
	defer func() {
		o.allOff()
		g.running.Store(false)
		g.stopOnce.Do(func() { close(g.stopped) })
		if r := recover(); r != nil {
			err = fmt.Errorf("gate: panic: %v", r)
		}
	}()
	if err := o.allOff(); err != nil {
		return err
	}
	ins := [numInputs]gpio.PinIn{g.pins.OpenLimit, g.pins.ClosedLimit, g.pins.Obstruction}
	var deb [numInputs]debouncer
	pull := gpio.PullDown
	if g.cfg.InputsActiveLow {
		pull = gpio.PullUp // an open circuit reads inactive
	}
	for i, p := range ins {
		if p == nil {
			continue
		}
		if err := p.In(pull, gpio.BothEdges); err != nil {
			return fmt.Errorf("gpio %s %s: %w", inputNames[i], p, err)
		}
		deb[i] = debouncer{stable: p.Read(), cand: p.Read()}
	}
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	for i, p := range ins {
		if p != nil {
			go g.watch(wctx, input(i), p, deb[i].stable)
		}
	}

	now := g.clk.Now()
	m := NewMachine(g.cfg.Params)
	m, _ = m.Step(Event{At: now, Kind: EvStart, Inputs: g.logical(deb)})
	var seq uint64
	last := Status{}
	emit := func() {
		st := m.Status()
		st.Gate = g.cfg.Name
		if seq > 0 && st.sameAs(last) {
			return
		}
		seq++
		st.Seq = seq
		last = st
		g.publish(st) // before the log line: a write to the journal can wait
		g.log.Info("gate", "state", st.State, "moving", st.Moving, "alarm", st.Alarm, "obstructed", st.Obstructed, "fault", st.Fault, "cause", st.Cause, "seq", st.Seq)
	}
	// apply drives the outputs to what the machine wants. It returns the
	// first output error, if any. A failing output is logged when it starts
	// and when it ends, not at every retry.
	failing := false
	apply := func(at time.Time) error {
		var first error
		for i := 0; i < 3; i++ {
			err := o.set(m.Outputs(), at)
			if err == nil {
				break
			}
			if first == nil {
				first = err
			}
			m, _ = m.Step(Event{At: at, Kind: EvOutputFailed, Err: err})
		}
		switch {
		case first != nil && !failing:
			g.log.Error("output failed", "err", first)
		case first != nil:
			g.log.Debug("output still failing", "err", first)
		case failing:
			g.log.Info("outputs answer again")
		}
		failing = first != nil
		emit()
		return first
	}
	// Running before the first status is published: a caller that waits
	// for that status and then calls Do must not be told "not running".
	// Requests wait in g.reqs until the loop starts.
	g.running.Store(true)
	apply(now)

	timer := g.clk.NewTimer(time.Hour)
	defer timer.Stop()
	var beat <-chan time.Time
	if g.opt.Heartbeat != nil && g.opt.HeartbeatEvery > 0 {
		t := g.clk.NewTicker(g.opt.HeartbeatEvery)
		defer t.Stop()
		beat = t.Chan()
		g.opt.Heartbeat()
	}
	for {
		// The next wake-up: the machine's deadline, a debounce settling, or
		// a pulse ending. Nothing else wakes the loop.
		wake, ok := m.Deadline()
		for i := range deb {
			if deb[i].pending && (!ok || deb[i].at.Before(wake)) {
				wake, ok = deb[i].at, true
			}
		}
		if t, p := o.pulseEnd(); p && (!ok || t.Before(wake)) {
			wake, ok = t, true
		}
		timer.Stop()
		var tc <-chan time.Time
		if ok {
			timer.Reset(max(wake.Sub(g.clk.Now()), 0))
			tc = timer.Chan()
		}

		select {
		case <-ctx.Done():
			return nil
		case <-beat:
			g.opt.Heartbeat()
		case r := <-g.reqs:
			now := g.clk.Now()
			var err error
			m, err = m.Step(Event{At: now, Kind: EvCommand, Cmd: r.cmd, Cause: r.cause})
			if err != nil {
				g.log.Info("command refused", "command", r.cmd, "cause", r.cause, "err", err)
			}
			if oerr := apply(now); err == nil && oerr != nil {
				// Accepted, but the outputs did not follow: the caller
				// must not be told ok.
				err = &RefusedError{Reason: ReasonFault, Msg: "the gate's outputs failed: " + oerr.Error()}
			}
			r.reply <- result{st: g.Status(), err: err}
		case e := <-g.edges:
			now := g.clk.Now()
			deb[e.in].edge(e.level, now, g.cfg.Debounce)
			g.settle(&m, &deb, now)
			apply(now)
		case <-tc:
			now := g.clk.Now()
			if err := o.endPulse(now); err != nil {
				// A contact that cannot be released holds the operator's
				// input: as with any output, fault and alarm.
				g.log.Error("output failed", "err", err)
				m, _ = m.Step(Event{At: now, Kind: EvOutputFailed, Err: err})
			}
			g.settle(&m, &deb, now)
			m, _ = m.Step(Event{At: now, Kind: EvTick})
			apply(now)
		}
	}
}

// settle commits debounced inputs that have been stable long enough.
func (g *Gate) settle(m *Machine, deb *[numInputs]debouncer, now time.Time) {
	changed := false
	for i := range deb {
		if deb[i].settle(now) {
			changed = true
		}
	}
	if changed {
		*m, _ = m.Step(Event{At: now, Kind: EvInputs, Inputs: g.logical(*deb)})
	}
}

func (g *Gate) logical(deb [numInputs]debouncer) Inputs {
	active := func(l gpio.Level) bool { return bool(l) != g.cfg.InputsActiveLow }
	in := Inputs{
		OpenLimit:   active(deb[inOpen].stable),
		ClosedLimit: active(deb[inClosed].stable),
	}
	if g.pins.Obstruction != nil {
		a := active(deb[inObstruction].stable)
		// Fail-safe: with a normally-closed sensor the line is active while
		// the beam is clear, so a cut wire reads as obstructed.
		in.Obstructed = a != g.cfg.ObstructionNormallyClosed
	}
	return in
}

// watch turns edges on one input line into messages to the owner. periph's
// WaitForEdge(-1) returns at once on the character-device driver
// (periph/host#78), so each wait has a positive timeout, after which the
// line is read again anyway.
func (g *Gate) watch(ctx context.Context, in input, p gpio.PinIn, last gpio.Level) {
	for ctx.Err() == nil {
		p.WaitForEdge(g.opt.EdgeWait)
		if ctx.Err() != nil {
			return
		}
		l := p.Read()
		if l == last {
			continue // a bounce that came back, or a timeout with no change
		}
		last = l
		select {
		case g.edges <- edge{in, l}:
		case <-ctx.Done():
			return
		}
	}
}

// debouncer accepts a level once it has held for the debounce time. periph's
// gpioutil.Debounce ignores its debounce argument, so this is ours.
type debouncer struct {
	stable  gpio.Level
	cand    gpio.Level
	pending bool
	at      time.Time // when cand becomes stable
}

func (d *debouncer) edge(l gpio.Level, now time.Time, wait time.Duration) {
	if l == d.stable {
		d.pending = false
		return
	}
	if !d.pending || l != d.cand {
		d.cand, d.at, d.pending = l, now.Add(wait), true
	}
}

func (d *debouncer) settle(now time.Time) bool {
	if !d.pending || now.Before(d.at) {
		return false
	}
	d.pending, d.stable = false, d.cand
	return true
}
