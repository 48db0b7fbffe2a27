package gate

import (
	"fmt"
	"log/slog"
	"time"

	"rocksaying.tw/gated/internal/position"
)

// Learned carries the learned travel times after a full run taught a new
// one: the shell hands them to Options.OnLearned for the state file.
type Learned struct{ Samples position.Samples }

// posTrack is the controller's side of SPEC.md "Position": the estimator fed
// with what the machine does, the position last published and when the
// next may go out, and the target of a position command.
type posTrack struct {
	est   position.Estimator
	motor Dir // as last fed to est
	thr   position.Throttle

	pub     int  // the position in the published status
	known   bool // pub is known
	pubAt   time.Time
	learned bool // a full run since the last round's end

	goal goal
}

// goal is a position command on its way.
type goal struct {
	active bool
	target int
	dir    Dir
	cause  Cause
	stopAt time.Time // when the estimate reaches target at the present speed; zero while the motor waits
}

func newPosTrack(cfg Config) posTrack {
	t := posTrack{est: position.New(cfg.Position)}
	_ = t.est.SetSamples(cfg.Samples) // refused: a corrupt file; cmd/gated warns, the gate learns again
	return t
}

// track feeds the estimator the limit switches and the motor as the
// machine now has them.
func (c *Controller) track(at time.Time) {
	in := c.m.Inputs()
	if c.pos.est.Limits(in.OpenLimit, in.ClosedLimit, at) {
		c.pos.learned = true
	}
	if mo := c.m.Outputs().Motor; mo != c.pos.motor {
		c.pos.est.Motor(position.Dir(mo), at)
		c.pos.motor = mo
	}
}

// command handles a command event: position commands here, the rest in the
// machine.
func (c *Controller) command(ev Event) error {
	at := ev.At
	c.track(at)
	switch ev.Cmd {
	case CmdPedestrian, CmdPosition:
		target := ev.Target
		if ev.Cmd == CmdPedestrian {
			if c.cfg.PedestrianPosition <= 0 {
				return &RefusedError{Reason: ReasonUnknown, Msg: `unknown command "pedestrian": pedestrian_position is not set`}
			}
			target = c.cfg.PedestrianPosition
		}
		err := c.goTo(at, target, ev.Cause)
		if err == nil {
			c.m.personCommands() // a person sent the gate somewhere: two strikes are lifted
		}
		return err
	case CmdOpen, CmdClose, CmdStop:
		c.pos.goal = goal{}
	}
	return c.machineCommand(at, ev.Cmd, ev.Cause)
}

func (c *Controller) machineCommand(at time.Time, cmd Command, cause Cause) error {
	m, err := c.m.Step(MachineEvent{At: at, Kind: MachineCommand, Cmd: cmd, Cause: cause})
	c.m = m
	return err
}

// goTo starts a position command. 0 and 100 are close and open with all
// their rules; a target between goes the way the estimate says with the
// rules of that way's command (a close is refused while obstructed, and an
// obstruction reverses it), and steer stops it there.
func (c *Controller) goTo(at time.Time, target int, cause Cause) error {
	switch {
	case target < 0 || target > 100:
		return &RefusedError{Reason: ReasonRange, Msg: fmt.Sprintf("position %d: want 0 (closed) to 100 (open)", target)}
	case target == 0:
		c.pos.goal = goal{}
		return c.machineCommand(at, CmdClose, cause)
	case target == 100:
		c.pos.goal = goal{}
		return c.machineCommand(at, CmdOpen, cause)
	}
	if c.m.Status().State == Faulted {
		// Invariant 8: fault is left by open, close or stop, which a person
		// chooses knowing the fault.
		return &RefusedError{Reason: ReasonFault, Msg: fmt.Sprintf("the gate is in fault (%s): open, close or stop it first", c.m.Status().Fault)}
	}
	d, _, err := c.pos.est.TimeTo(target, at)
	if err != nil {
		return &RefusedError{Reason: ReasonPositionUnknown, Msg: "the position is not known yet (it is after the gate reaches a limit switch, and between them once it has run end to end each way): open or close it first"}
	}
	if d == position.Off {
		// Already there: a gate on its way stops, one at rest stays.
		c.pos.goal = goal{}
		if c.m.Outputs().Motor == DirNone && !c.m.Status().Moving {
			return nil
		}
		return c.machineCommand(at, CmdStop, cause)
	}
	cmd, dir := CmdOpen, DirOpen
	if d == position.Closing {
		cmd, dir = CmdClose, DirClose
	}
	if err := c.machineCommand(at, cmd, cause); err != nil {
		return err
	}
	c.pos.goal = goal{active: true, target: target, dir: dir, cause: cause}
	return nil
}

// steer keeps a position command on course: it follows the estimate while
// the motor runs the goal's way, stops the motor when the estimate reaches
// the target, and drops the goal when anything else took over (a stop, an
// obstruction reversing a close, a limit, a fault).
func (c *Controller) steer(at time.Time) {
	c.track(at)
	g := &c.pos.goal
	if !g.active {
		return
	}
	want := Opening
	if g.dir == DirClose {
		want = Closing
	}
	if c.m.Status().State != want {
		*g = goal{}
		return
	}
	if c.m.Outputs().Motor != g.dir {
		g.stopAt = time.Time{} // waiting for the reverse delay
		return
	}
	if in := c.m.Inputs(); (g.dir == DirOpen && in.ClosedLimit) || (g.dir == DirClose && in.OpenLimit) {
		// The estimate stays at the limit the leaf is leaving until its
		// switch releases, whose edge steers again: a wake now would come
		// back every millisecond while a jammed leaf holds the switch.
		g.stopAt = time.Time{}
		return
	}
	d, dur, err := c.pos.est.TimeTo(g.target, at)
	if err == nil && d != position.Off && Dir(d) == g.dir {
		g.stopAt = at.Add(dur)
		return
	}
	// There (or past it, or lost): stop.
	cause := g.cause
	*g = goal{}
	_ = c.machineCommand(at, CmdStop, cause) // stop is never refused
	c.track(at)
}

// positionActions publishes the position as position.Throttle allows and
// says when the next publication may be due; it returns acts with a
// Learned and its log line appended after a full run.
func (c *Controller) positionActions(at time.Time, acts []Action) []Action {
	p := &c.pos
	pos, known := p.est.Position(at)
	moving := c.m.Outputs().Motor != DirNone
	if p.thr.Publish(pos, known, moving, at) {
		p.pub, p.known = pos, known
	}
	p.pubAt = time.Time{}
	open, closeT := p.est.TravelTimes()
	held := known != p.known || (known && pos != p.pub)
	reckoning := known && ((c.m.Outputs().Motor == DirOpen && open > 0) || (c.m.Outputs().Motor == DirClose && closeT > 0))
	if moving && (held || reckoning) {
		// A change held back goes out when the throttle allows; while the
		// estimate moves, tick so the next change goes out on time.
		p.pubAt = p.thr.Next()
		if !p.pubAt.After(at) {
			p.pubAt = at.Add(position.Interval)
		}
	}
	if p.learned {
		p.learned = false
		s := p.est.Samples()
		acts = append(acts, Learned{Samples: s},
			Log{Level: slog.LevelInfo, Msg: "learned a full run", Args: []any{"open_time", open, "close_time", closeT, "open_runs", len(s.Open), "close_runs", len(s.Close)}})
	}
	return acts
}

// fill puts the published position and the travel times into st.
func (p *posTrack) fill(st *Status) {
	st.Position, st.PositionKnown = p.pub, p.known
	if !p.known {
		st.Position = 0
	}
	st.OpenTime, st.CloseTime = p.est.TravelTimes()
}

// positionArg is the position for a log line: a number, or "unknown".
func (s Status) positionArg() any {
	if !s.PositionKnown {
		return "unknown"
	}
	return s.Position
}
