package gate

import (
	"errors"
	"log/slog"
	"time"

	"periph.io/x/conn/v3/gpio"
)

// EventKind says what an Event carries.
type EventKind int8

// Event kinds.
const (
	EvStart   EventKind = iota // Levels: every input line as Run starts, every output off
	EvCommand                  // Cmd, Cause: a command; its round ends with a Reply
	EvEdge                     // Input, Level: an input line changed level
	EvTick                     // the time of the last Wake has come (early or late is harmless)
	EvDriven                   // Failed: the outcome of the SetOutput actions just carried out
)

// Event is what happens to the gate, with its time: the controller reads no
// clock. Events must come in time order.
type Event struct {
	At     time.Time
	Kind   EventKind
	Cmd    Command
	Target int // CmdPosition: 0 (closed) .. 100 (open)
	Cause  Cause
	Who    string // EvCommand: who asked, as the link names them; only recorded
	Input  Input
	Level  gpio.Level
	Levels [NumInputs]gpio.Level // EvStart; an input that is not fitted is ignored
	Failed []OutputError         // EvDriven; empty when every output followed
}

// OutputError is an output line that could not be driven.
type OutputError struct {
	Output Output
	Err    error
}

// Action is what the controller asks of its shell: SetOutput, Publish,
// Reply, Wake, Log or Learned.
type Action interface{ action() }

// SetOutput drives an output line on (energised, contact made) or off; the
// shell applies the wiring's polarity.
type SetOutput struct {
	Output Output
	On     bool
}

// Publish makes Status the gate's status: subscribers get it, then the log.
type Publish struct{ Status Status }

// Reply ends the handling of the round's command: Err is nil (accepted) or
// a *RefusedError, Status the status right after it. The shell answers the
// caller; it is also the record of who asked for what.
type Reply struct {
	Cmd    Command
	Cause  Cause
	Who    string // the command's Event.Who: Reply is the record of each command
	Target int    // the command's Event.Target (CmdPosition)
	Status Status
	Err    error
	// Later: the answer to the oldest command whose round ended with
	// Defer, not to this round's.
	Later bool
}

// Defer ends the round of a command that is answered later, by a Reply
// with Later set: a close waiting for the photo-eye self-test. Such
// answers come in the order of their commands.
type Defer struct{}

// Wake asks for an EvTick at At, replacing any earlier Wake; a zero At
// means nothing to wait for.
type Wake struct{ At time.Time }

// Log is a line for the log.
type Log struct {
	Level slog.Level
	Msg   string
	Args  []any
}

func (SetOutput) action() {}
func (Publish) action()   {}
func (Reply) action()     {}
func (Wake) action()      {}
func (Log) action()       {}
func (Learned) action()   {}
func (Defer) action()     {}

// maxDrives is how many drives of one round may fail before the round gives
// up; the next event tries the lines again.
const maxDrives = 3

// dirUnknown is the direction last sent to a pulse-mode operator after a
// contact failed: it may or may not have seen it.
const dirUnknown Dir = -1

// Controller decides everything the gate does between its pins and its
// callers: debouncing and the wiring of the inputs, the state machine, which
// output lines to drive and in what order, pulses, retries of failed
// outputs, status numbering and de-duplication, and the answers to commands.
// It is a value: Step returns the next one and never changes the receiver.
//
// The protocol: every event starts a round. A shell carries out the actions
// Step returns in order. When a batch holds SetOutput actions, the shell
// carries out all of them, even after one fails, and then steps EvDriven
// with the ones that failed; the controller answers with the next batch. A
// batch without SetOutput ends the round. No SetOutput depends on an earlier
// one of its batch having worked: a motor line is switched on only in a
// batch after the one that switched the others off (invariant 1). Step
// panics on an EvDriven it did not ask for, or on another event before it.
type Controller struct {
	cfg            Config
	has            [NumOutputs]bool
	hasObstruction bool

	m   Machine
	deb [NumInputs]debouncer
	out [NumOutputs]line

	// Pulse mode: opDir is the direction the operator was last sent; a
	// contact is made whenever the machine wants another.
	opDir Dir
	pulse pulse
	// holdUntil: a motor line waits for the reverse delay until then.
	holdUntil time.Time

	// The round in progress.
	driving  bool // SetOutput actions are out: the next event is EvDriven
	failures int  // drives of this round that failed
	roundErr error
	reply    pendingReply

	held []pendingReply // commands answered when the self-test ends

	// What the log was last told of the suspension of automatic closing.
	toldStrikes, toldEye bool

	failing bool      // the last round ended with an output failing
	seq     uint64    // of the last published status
	last    Status    // the last published status
	armed   time.Time // the Wake in force; zero: none

	pos posTrack // position.go
}

// pulse is the contact made in pulse mode.
type pulse struct {
	active bool
	out    Output
	until  time.Time
}

type pendingReply struct {
	pending bool
	cmd     Command
	cause   Cause
	who     string
	target  int
	err     error
	later   bool // answered when the self-test ends
}

// NewController returns a controller for a gate with the optional lines f;
// feed it EvStart first.
func NewController(cfg Config, f Fitted) Controller {
	p := cfg.Params
	p.EyeTest = 0
	if f.ObstructionTest && f.Obstruction {
		p.EyeTest = cfg.ObstructionTestTime + cfg.Debounce
	}
	c := Controller{cfg: cfg, has: f.outputs(), hasObstruction: f.Obstruction, m: NewMachine(p).restore(cfg.Restored)}
	c.toldStrikes = cfg.Restored.Suspended
	c.pos = newPosTrack(cfg)
	c.last = c.m.Status()
	c.last.Gate = cfg.Name
	return c
}

// Status returns the last published status (seq 0 before the first).
func (c Controller) Status() Status { return c.last }

// Step handles one event and returns the next controller and the actions to
// carry out, in order.
func (c Controller) Step(ev Event) (Controller, []Action) {
	if ev.Kind == EvDriven {
		if !c.driving {
			panic("gate: EvDriven with no outputs being driven")
		}
		// Not "return c, c.driven(ev)": Go leaves unspecified whether c is
		// read before or after the call changes it.
		acts := c.driven(ev)
		return c, acts
	}
	if c.driving {
		panic("gate: event before the outcome of the outputs being driven (EvDriven)")
	}
	at := ev.At
	c.failures, c.roundErr = 0, nil
	c.expire(at)
	switch ev.Kind {
	case EvStart:
		for i := range c.deb {
			c.deb[i] = debouncer{stable: ev.Levels[i], cand: ev.Levels[i]}
		}
		c.m, _ = c.m.Step(MachineEvent{At: at, Kind: MachineStart, Inputs: c.inputs()})
	case EvCommand:
		err := c.command(ev)
		c.reply = pendingReply{pending: true, cmd: ev.Cmd, cause: ev.Cause, who: ev.Who, target: ev.Target, err: err}
		if err == nil && closing(ev.Cmd) && c.m.Testing() { // a close tests the photo eye first
			c.reply.later = true
		}
	case EvEdge:
		if ev.Input < 0 || ev.Input >= NumInputs || (ev.Input == InObstruction && !c.hasObstruction) {
			break
		}
		c.deb[ev.Input].edge(ev.Level, at, c.cfg.Debounce)
		c.settle(at) // with no debounce time the level holds at once
	case EvTick:
		c.armed = time.Time{} // the timer that brought the tick is spent
	}
	acts := c.drive(at)
	return c, acts
}

// expire handles every deadline up to at, whatever the event: a pulse
// ending (its contact is released by the round's drive), inputs settling,
// the machine's own. A late tick must not leave a deadline in the past.
func (c *Controller) expire(at time.Time) {
	if c.pulse.active && !at.Before(c.pulse.until) {
		c.pulse.active = false
	}
	c.settle(at)
	if d, ok := c.m.Deadline(); ok && !d.After(at) {
		c.m, _ = c.m.Step(MachineEvent{At: at, Kind: MachineTick})
	}
}

// settle commits the debounced inputs that have held long enough.
func (c *Controller) settle(at time.Time) {
	changed := false
	for i := range c.deb {
		if c.deb[i].settle(at) {
			changed = true
		}
	}
	if changed {
		c.m, _ = c.m.Step(MachineEvent{At: at, Kind: MachineInputs, Inputs: c.inputs()})
	}
}

// inputs are the debounced lines in logical terms.
func (c *Controller) inputs() Inputs {
	active := func(i Input) bool { return bool(c.deb[i].stable) != c.cfg.InputsActiveLow }
	in := Inputs{OpenLimit: active(InOpenLimit), ClosedLimit: active(InClosedLimit)}
	if c.hasObstruction {
		// Fail-safe: with a normally-closed sensor the line is active while
		// the beam is clear, so a cut wire reads as obstructed.
		in.Obstructed = active(InObstruction) != c.cfg.ObstructionNormallyClosed
	}
	return in
}

// drive returns the next batch of the round: the output lines still to
// drive, or, when there are none, the end of the round.
func (c *Controller) drive(at time.Time) []Action {
	c.steer(at)
	c.startPulse(at)
	if acts := c.sets(at); len(acts) > 0 {
		c.driving = true
		return acts
	}
	return c.finish(at)
}

// driven takes the outcome of the last batch's SetOutput actions.
func (c *Controller) driven(ev Event) []Action {
	c.driving = false
	if len(ev.Failed) == 0 {
		return c.drive(ev.At)
	}
	errs := make([]error, len(ev.Failed))
	for i, f := range ev.Failed {
		errs[i] = f.Err
		if f.Output >= 0 && f.Output < NumOutputs {
			c.out[f.Output].unknown = true
		}
		if c.pulse.active && c.pulse.out == f.Output {
			// The operator may not have seen the contact.
			c.pulse.active, c.opDir = false, dirUnknown
		}
	}
	if c.roundErr == nil {
		c.roundErr = errors.Join(errs...)
	}
	// A relay that cannot be driven may be stuck on: everything off and the
	// alarm on, so a person looks at it.
	c.m, _ = c.m.Step(MachineEvent{At: ev.At, Kind: MachineOutputFailed})
	if c.failures++; c.failures >= maxDrives {
		return c.finish(ev.At)
	}
	return c.drive(ev.At)
}

// finish ends the round: log lines, the next wake-up, the status if it
// changed, and the answer to the round's command.
func (c *Controller) finish(at time.Time) []Action {
	acts := make([]Action, 0, 4) // room for a round's usual Wake, Publish and Reply
	acts = c.positionActions(at, acts)
	if c.reply.pending && c.reply.err != nil {
		acts = append(acts, Log{Level: slog.LevelInfo, Msg: "command refused", Args: []any{"command", c.reply.cmd, "cause", c.reply.cause, "err", c.reply.err}})
	}
	// A failing output is logged when it starts failing and when it answers
	// again, not at every retry.
	switch {
	case c.roundErr != nil && !c.failing:
		acts = append(acts, Log{Level: slog.LevelError, Msg: "output failed", Args: []any{"err", c.roundErr}})
	case c.roundErr != nil:
		acts = append(acts, Log{Level: slog.LevelDebug, Msg: "output still failing", Args: []any{"err", c.roundErr}})
	case c.failing:
		acts = append(acts, Log{Level: slog.LevelInfo, Msg: "outputs answer again"})
	}
	c.failing = c.roundErr != nil
	acts = c.logSuspension(acts)

	if d := c.deadline(); !d.Equal(c.armed) {
		c.armed = d
		acts = append(acts, Wake{At: d})
	}
	st := c.m.Status()
	st.Gate = c.cfg.Name
	c.pos.fill(&st)
	if c.seq == 0 || !st.sameAs(c.last) {
		c.seq++
		st.Seq = c.seq
		c.last = st
		acts = append(acts, Publish{Status: st})
	}
	acts = c.answerHeld(acts)
	if c.reply.pending && c.reply.later && c.m.Testing() {
		c.held = append(c.held, c.reply)
		c.reply = pendingReply{}
		acts = append(acts, Defer{})
	}
	if c.reply.pending {
		err := c.reply.err
		if err == nil && c.roundErr != nil {
			// Accepted, but the outputs did not follow: the caller must not
			// be told ok.
			err = &RefusedError{Reason: ReasonFault, Msg: "the gate's outputs failed: " + c.roundErr.Error()}
		}
		acts = append(acts, Reply{Cmd: c.reply.cmd, Cause: c.reply.cause, Who: c.reply.who, Target: c.reply.target, Status: c.last, Err: err})
		c.reply = pendingReply{}
	}
	return acts
}

// deadline is the earliest time the controller wants an EvTick; zero: none.
func (c *Controller) deadline() time.Time {
	d, _ := c.m.Deadline()
	earlier := func(t time.Time) {
		if d.IsZero() || t.Before(d) {
			d = t
		}
	}
	for _, b := range c.deb {
		if b.pending {
			earlier(b.at)
		}
	}
	if c.pulse.active {
		earlier(c.pulse.until)
	}
	if !c.holdUntil.IsZero() {
		earlier(c.holdUntil)
	}
	for _, t := range []time.Time{c.pos.goal.stopAt, c.pos.pubAt} {
		if !t.IsZero() {
			earlier(t)
		}
	}
	return d
}

// closing reports whether cmd may start a close: close itself, or a
// position (or the pedestrian opening) below the present one.
func closing(cmd Command) bool {
	return cmd == CmdClose || cmd == CmdPosition || cmd == CmdPedestrian
}
