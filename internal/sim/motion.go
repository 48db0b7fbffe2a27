// The leaf's motion model and timers: advancing it, its drive, the input edges and the relays.

package sim

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"periph.io/x/conn/v3/gpio"

	"rocksaying.tw/gated/internal/gate"
)

func (s *Gate) position() float64 { return float64(s.pos) / float64(s.span) }

func (s *Gate) openContact() bool   { return s.pos >= s.span-s.band }
func (s *Gate) closedContact() bool { return s.pos <= s.band }

// drive is the direction the motor is driven now.
func (s *Gate) drive() gate.Dir {
	if s.cfg.Pulse {
		return s.op
	}
	switch o, c := s.relay[outOpen], s.relay[outClose]; {
	case o && !c:
		return gate.DirOpen
	case c && !o:
		return gate.DirClose
	}
	return gate.DirNone // off, or a short: a reversing contactor pair cuts out
}

func (s *Gate) moving(d gate.Dir) bool {
	if s.jammed {
		return false
	}
	return (d == gate.DirOpen && s.pos < s.span) || (d == gate.DirClose && s.pos > 0)
}

// advance brings the model from s.at to now, handling the operator's own
// events (the end of a reverse pause, reaching an end) at their own times.
func (s *Gate) advance(now time.Time) {
	for {
		pending := s.opPending != gate.DirNone && !s.opPendingAt.After(now)
		to := now
		if pending {
			to = s.opPendingAt
		}
		s.move(to)
		if !pending {
			return
		}
		s.op, s.opPending = s.opPending, gate.DirNone
		s.noteMotor(s.at)
		s.stopAtEnd(s.at)
	}
}

// move moves the leaf at the current drive from s.at to t.
func (s *Gate) move(t time.Time) {
	d := int64(t.Sub(s.at))
	if d <= 0 {
		return
	}
	from := s.at
	s.at = t
	dir := s.drive()
	if s.jammed || dir == gate.DirNone {
		return
	}
	var room int64
	if dir == gate.DirOpen {
		room = s.span - s.pos
		s.pos += min(d, room)
	} else {
		room = s.pos
		s.pos -= min(d, room)
	}
	if d >= room {
		s.stopAtEnd(from.Add(time.Duration(room)))
	}
}

func (s *Gate) noteMotor(at time.Time) {
	if d := s.drive(); d != s.motor {
		// A stop at INFO, with the simulator's own position: what a person
		// trying position commands in -demo compares with gated's estimate.
		lvl := slog.LevelDebug
		if d == gate.DirNone {
			lvl = slog.LevelInfo
		}
		s.log.Log(context.Background(), lvl, "sim motor", "motor", d, "position", s.position(), "percent", fmt.Sprintf("%.1f", 100*s.position()))
		s.motor, s.motorSince = d, at
	}
}

// settle updates the input lines (signalling their edges) and sets the timer
// for the next event. Call it, under mu, after every change.
func (s *Gate) settle() {
	for _, p := range s.ins {
		if p == nil {
			continue
		}
		l := s.lineLevel(p)
		if l == p.level {
			continue
		}
		p.level = l
		s.log.Debug("sim input", "pin", p.name, "level", l, "position", s.position())
		if p.edge == gpio.BothEdges || (p.edge == gpio.RisingEdge && l == gpio.High) || (p.edge == gpio.FallingEdge && l == gpio.Low) {
			select {
			case p.edges <- struct{}{}:
			default: // an edge is already pending: edges do not accumulate
			}
		}
	}
	s.schedule()
}

// schedule sets the timer for the next event: a switch crossing, an end
// reached, or the end of the operator's reverse pause.
func (s *Gate) schedule() {
	next := int64(-1)
	consider := func(d int64) {
		if d > 0 && (next < 0 || d < next) {
			next = d
		}
	}
	if s.opPending != gate.DirNone {
		consider(max(int64(s.opPendingAt.Sub(s.at)), 1))
	}
	switch dir := s.drive(); {
	case s.jammed:
	case dir == gate.DirOpen:
		for _, b := range [...]int64{s.band + 1, s.span - s.band, s.span} {
			consider(b - s.pos)
		}
	case dir == gate.DirClose:
		for _, b := range [...]int64{s.span - s.band - 1, s.band, 0} {
			consider(s.pos - b)
		}
	}
	if next < 0 {
		s.stopTimer()
		return
	}
	wake := s.at.Add(time.Duration(next))
	if s.timer != nil && wake.Equal(s.wakeAt) {
		return
	}
	s.stopTimer()
	gen := s.gen
	s.wakeAt = wake
	s.timer = s.clk.AfterFunc(s.clk.Until(wake), func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if gen != s.gen {
			return // replaced while it fired
		}
		s.timer = nil
		s.advance(s.clk.Now())
		s.settle()
	})
}

func (s *Gate) stopTimer() {
	s.gen++
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
}

// setRelay energises or releases one output and lets the motor or the
// operator react.
func (s *Gate) setRelay(i output, on bool) {
	if s.relay[i] == on {
		return
	}
	s.relay[i] = on
	s.log.Debug("sim output", "pin", outputNames[i], "on", on, "position", s.position())
	if on {
		s.contacts[i]++
		if (i == outOpen || i == outClose) && s.relay[outOpen] && s.relay[outClose] {
			s.shorts++
			s.log.Warn("sim: both motor outputs energised", "shorts", s.shorts)
		}
		if s.cfg.Pulse {
			s.operatorContact(i)
		}
	}
	s.noteMotor(s.at)
}
