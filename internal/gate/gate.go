package gate

// A little over 450 lines: Gate's API (New, Send, Subscribe) and the shell that carries out the
// controller's actions (Run, step) share the request and reply types; the controller is in
// controller.go.

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

	"rocksaying.tw/gated/internal/position"
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
	// Warning is the pre-close warning light or buzzer; nil: the siren
	// warns.
	Warning gpio.PinOut
	// ObstructionTest powers the photo eye's transmitter, so that the eye
	// can be tested before each close; nil: no self-test. It is on while
	// the gate runs, off at start and at exit like every output.
	ObstructionTest gpio.PinOut
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

	// Position: the travel times (0: learn), the full runs learned before
	// (from the state file; a set SetSamples refuses is ignored: the gate
	// learns again), and pedestrian_position (0: off).
	Position           position.Config
	Samples            position.Samples
	PedestrianPosition int
	// ObstructionTestTime is how long each half of the photo-eye self-test
	// waits for the input to follow, beyond Debounce (Pins.ObstructionTest).
	ObstructionTestTime time.Duration
	// Restored is what the last run left: counters, the two-strike
	// suspension (cmd/gated keeps them with internal/state).
	Restored Restored
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
	// OnLearned, if set, is called from the goroutine that owns the gate
	// with every full run's new set of learned travel times, for the state
	// file. It must not block.
	OnLearned func(position.Samples)
}

// Gate owns a Controller and its pins: one goroutine (Run) steps the
// controller and carries out its actions; any goroutine may call Do, Status
// and Subscribe.
type Gate struct {
	cfg    Config
	fitted Fitted
	ins    [NumInputs]gpio.PinIn   // nil: not fitted
	outs   [NumOutputs]gpio.PinOut // nil: not fitted
	opt    Options
	clk    clockwork.Clock
	log    *slog.Logger

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
	cmds map[chan Reply]struct{} // SubscribeCommands; made on first use
}

type request struct {
	Request
	reply chan result // buffered: the owner never waits for a caller
}

type result struct {
	st  Status
	err error
}

type edge struct {
	in    Input
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
	if pins.ObstructionTest != nil && (pins.Obstruction == nil || cfg.ObstructionTestTime <= 0) {
		return nil, errors.New("gate: the photo-eye self-test needs an obstruction sensor and a positive test time")
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
		cfg: cfg, fitted: pins.Fitted(), opt: opt, clk: opt.Clock, log: opt.Log,
		reqs:    make(chan request, 64),
		edges:   make(chan edge, 64),
		subs:    map[chan Status]struct{}{},
		stopped: make(chan struct{}),
	}
	g.ins = [NumInputs]gpio.PinIn{pins.OpenLimit, pins.ClosedLimit, pins.Obstruction}
	g.outs = [NumOutputs]gpio.PinOut{pins.MotorOpen, pins.MotorClose, pins.MotorStop, pins.Siren, pins.Warning, pins.ObstructionTest}
	st := NewController(cfg, g.fitted).Status()
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
// accepted means the motion has started (or was not needed, or its warning
// has started), not that it has ended. A close waits for the photo-eye
// self-test, when there is one: twice (ObstructionTestTime + Debounce) at
// most. It returns the status right after the command. If ctx ends first, Do
// returns a *RefusedError with ReasonBusy, and the command may still be
// carried out if the owner had already taken it.
func (g *Gate) Do(ctx context.Context, cmd Command, cause Cause) (Status, error) {
	return g.Send(ctx, Request{Cmd: cmd, Cause: cause})
}

// A Request is a command as Send takes it.
type Request struct {
	Cmd    Command
	Target int // CmdPosition: 0 (closed) to 100 (open); see SPEC.md "Position"
	Cause  Cause
	Who    string // who asked, as the link names them (an MQTT id, a user): recorded only
}

// Send is Do for any request: a position command, or one whose caller the
// link can name.
func (g *Gate) Send(ctx context.Context, req Request) (Status, error) {
	if !g.running.Load() {
		return g.Status(), &RefusedError{Reason: ReasonStopped, Msg: "the gate is not running"}
	}
	r := request{Request: req, reply: make(chan result, 1)}
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

// Run owns the gate until ctx ends. It switches every output off, reads the
// inputs, and from then on is the only goroutine that steps the controller
// or drives an output: it feeds the controller what happens (commands,
// edges, its timer) and carries out the actions it returns. Every output is
// switched off when Run returns, whatever the reason (invariant 6); if one
// cannot be, even on a second try, Run returns an error saying which.
func (g *Gate) Run(ctx context.Context) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("gate: panic: %v", r)
		}
		err = errors.Join(err, g.exitOff())
		g.running.Store(false)
		g.stopOnce.Do(func() { close(g.stopped) })
	}()
	if err := g.allOff(); err != nil {
		return err
	}
	var levels [NumInputs]gpio.Level
	pull := gpio.PullDown
	if g.cfg.InputsActiveLow {
		pull = gpio.PullUp // an open circuit reads inactive
	}
	for i, p := range g.ins {
		if p == nil {
			continue
		}
		if err := p.In(pull, gpio.BothEdges); err != nil {
			return fmt.Errorf("gpio %s %s: %w", Input(i), p, err)
		}
		levels[i] = p.Read()
	}
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	for i, p := range g.ins {
		if p != nil {
			go g.watch(wctx, Input(i), p, levels[i])
		}
	}

	s := shell{g: g, c: NewController(g.cfg, g.fitted), timer: g.clk.NewTimer(time.Hour)}
	s.timer.Stop()
	defer s.timer.Stop()
	// Running before the first status is published: a caller that waits
	// for that status and then calls Do must not be told "not running".
	// Requests wait in g.reqs until the loop starts.
	g.running.Store(true)
	s.step(Event{At: g.clk.Now(), Kind: EvStart, Levels: levels}, nil)

	var beat <-chan time.Time
	if g.opt.Heartbeat != nil && g.opt.HeartbeatEvery > 0 {
		t := g.clk.NewTicker(g.opt.HeartbeatEvery)
		defer t.Stop()
		beat = t.Chan()
		g.opt.Heartbeat()
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-beat:
			g.opt.Heartbeat()
		case r := <-g.reqs:
			s.step(Event{At: g.clk.Now(), Kind: EvCommand, Cmd: r.Cmd, Target: r.Target, Cause: r.Cause, Who: r.Who}, r.reply)
		case e := <-g.edges:
			s.step(Event{At: g.clk.Now(), Kind: EvEdge, Input: e.in, Level: e.level}, nil)
		case <-s.wake:
			s.step(Event{At: g.clk.Now(), Kind: EvTick}, nil)
		}
	}
}

// shell is Run's state: the controller, and the timer its Wake actions set.
type shell struct {
	g     *Gate
	c     Controller
	timer clockwork.Timer
	wake  <-chan time.Time // the timer's channel while a Wake is in force
	held  []chan<- result  // commands answered later (Defer), oldest first
}

// step feeds ev to the controller and carries out its actions, feeding the
// outcome of the outputs back, until the round ends. reply, if set, gets
// the round's Reply.
func (s *shell) step(ev Event, reply chan<- result) {
	g := s.g
	for {
		var acts []Action
		s.c, acts = s.c.Step(ev)
		driven := false
		var failed []OutputError
		for _, a := range acts {
			switch a := a.(type) {
			case SetOutput:
				driven = true
				if err := g.out(a.Output, a.On); err != nil {
					failed = append(failed, OutputError{a.Output, err})
				}
			case Publish:
				st := a.Status
				g.publish(st) // before the log line: a write to the journal can wait
				// Attrs, not ...any: no value boxed on every status.
				g.log.LogAttrs(context.Background(), slog.LevelInfo, "gate", slog.String("state", string(st.State)), slog.Bool("moving", st.Moving), slog.Bool("alarm", st.Alarm),
					slog.Bool("obstructed", st.Obstructed), slog.String("fault", string(st.Fault)), slog.String("cause", string(st.Cause)), slog.Any("position", st.positionArg()), slog.Bool("warning", st.Warning), slog.String("auto_close", string(st.AutoClose)), slog.Uint64("seq", st.Seq))
			case Reply:
				g.record(a) // the record of every command, answered now or later
				to := reply
				if a.Later {
					if len(s.held) == 0 {
						continue
					}
					to, s.held = s.held[0], s.held[1:]
				}
				if to != nil {
					to <- result{st: a.Status, err: a.Err}
				}
			case Defer:
				s.held = append(s.held, reply)
			case Wake:
				s.timer.Stop()
				s.wake = nil
				if !a.At.IsZero() {
					s.timer.Reset(max(a.At.Sub(g.clk.Now()), 0))
					s.wake = s.timer.Chan()
				}
			case Log:
				g.log.Log(context.Background(), a.Level, a.Msg, a.Args...)
			case Learned:
				if g.opt.OnLearned != nil {
					g.opt.OnLearned(a.Samples)
				}
			}
		}
		if !driven {
			return
		}
		ev = Event{At: ev.At, Kind: EvDriven, Failed: failed}
	}
}

// out drives one output line; the controller speaks of on and off, the
// wiring decides the level.
func (g *Gate) out(o Output, on bool) error {
	p := g.outs[o]
	if p == nil {
		return nil
	}
	if err := p.Out(gpio.Level(on != g.cfg.OutputsActiveLow)); err != nil {
		return fmt.Errorf("gpio %s %s: %w", o, p, err)
	}
	return nil
}

// allOff switches every output off, trying each even if one fails.
func (g *Gate) allOff() error {
	var errs []error
	for o := range NumOutputs {
		errs = append(errs, g.out(o, false))
	}
	return errors.Join(errs...)
}

// exitOff is invariant 6 on the way out, when something else may already
// have failed: every output off, and a second try if one could not be.
func (g *Gate) exitOff() error {
	err := g.allOff()
	if err == nil {
		return nil
	}
	g.log.Error("switching the outputs off on exit failed: trying again", "err", err)
	if err = g.allOff(); err == nil {
		g.log.Info("outputs switched off on the second try")
		return nil
	}
	g.log.Error("outputs may still be on", "err", err)
	return fmt.Errorf("gate: switching the outputs off on exit: %w", err)
}

// watch turns edges on one input line into messages to the owner. periph's
// WaitForEdge(-1) returns at once on the character-device driver
// (periph/host#78), so each wait has a positive timeout, after which the
// line is read again anyway.
func (g *Gate) watch(ctx context.Context, in Input, p gpio.PinIn, last gpio.Level) {
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
