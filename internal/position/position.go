// Package position estimates where a gate's leaf is, 0 (closed) to 100
// (open), as SPEC.md "Position" describes: exactly at the limit switches, and
// in between by dead reckoning from how long the motor ran each way, at the
// configured travel times or at the median of the last full runs.
//
// An Estimator is a value with no goroutines and no clock: every method takes
// the time it happens at, so the gate's owner feeds it the events it already
// sees (motor changes, limit switch changes) and tests feed it fake time.
package position

import (
	"errors"
	"math"
	"slices"
	"time"
)

// Dir is the way the motor runs. The values are those of gate.Dir, so the
// gate converts with Dir(d).
type Dir int8

// Motor directions.
const (
	Off Dir = iota
	Opening
	Closing
)

func (d Dir) String() string {
	switch d {
	case Opening:
		return "opening"
	case Closing:
		return "closing"
	}
	return "off"
}

// MaxSamples is how many full runs each way the median is taken over.
const MaxSamples = 5

// MaxTravel bounds a travel time, configured or learned: no gate takes an
// hour end to end, so a longer one is a corrupt state file or a clock jump.
const MaxTravel = time.Hour

// Config is the [gate] keys the estimate depends on.
type Config struct {
	// OpenTime and CloseTime are the full travel times; 0 means learn them
	// from full runs.
	OpenTime, CloseTime time.Duration
}

// Errors of TimeTo. The gate refuses a position command with
// position_unknown on ErrUnknown and on ErrNotLearned.
var (
	ErrUnknown    = errors.New("position unknown")
	ErrNotLearned = errors.New("travel time not known yet: no full run that way")
	ErrRange      = errors.New("position out of range 0..100")
)

// samples is the last MaxSamples full runs one way, oldest first. It is an
// array so that an Estimator copies without sharing.
type samples struct {
	d [MaxSamples]time.Duration
	n int
}

func (s *samples) push(d time.Duration) {
	if s.n == MaxSamples {
		copy(s.d[:], s.d[1:])
		s.n--
	}
	s.d[s.n] = d
	s.n++
}

func (s samples) list() []time.Duration {
	if s.n == 0 {
		return nil
	}
	return slices.Clone(s.d[:s.n])
}

// median is 0 with no sample; with an even number, the mean of the middle two.
func (s samples) median() time.Duration {
	if s.n == 0 {
		return 0
	}
	v := s.list()
	slices.Sort(v)
	if s.n%2 == 1 {
		return v[s.n/2]
	}
	return (v[s.n/2-1] + v[s.n/2]) / 2
}

// run is a motion that may become a full run: the motor started at one limit
// towards the other and nothing has interrupted it yet.
type run struct {
	dir   Dir
	start time.Time
	end   time.Time // when the motor went off, if it did; zero while running
	ok    bool
}

// Estimator estimates the leaf's position. The zero value knows nothing and
// learns; New sets the configured travel times.
//
// Feed it, in time order, every change of the motor (Motor) and of the
// limit switches (Limits), the debounced logical inputs the gate acts on. A
// time earlier than the last one fed is taken as the last one. When a limit
// switch and the motor-off it causes happen together, report the switch
// first (the same instant is fine either way round).
type Estimator struct {
	cfg           Config
	opens, closes samples // full runs each way

	known bool
	p     float64   // the position at `at`, 0 = closed .. 1 = open
	at    time.Time // the time of the last event
	dir   Dir       // the motor since `at`

	openLim, closedLim bool
	run                run
}

// New returns an Estimator that knows nothing yet.
func New(cfg Config) Estimator { return Estimator{cfg: cfg} }

// travel is the time end to end in direction d: configured, or the median of
// the full runs; 0 when unknown.
func (e *Estimator) travel(d Dir) time.Duration {
	switch d {
	case Opening:
		if e.cfg.OpenTime > 0 {
			return e.cfg.OpenTime
		}
		return e.opens.median()
	case Closing:
		if e.cfg.CloseTime > 0 {
			return e.cfg.CloseTime
		}
		return e.closes.median()
	}
	return 0
}

// TravelTimes returns the travel times the estimate uses, configured or
// learned; 0 where neither is known yet.
func (e Estimator) TravelTimes() (open, close time.Duration) {
	return e.travel(Opening), e.travel(Closing)
}

// reckon returns the position at `at` from the last event, without changing
// e; known is false when the motor has been running a way whose travel time
// is unknown.
func (e *Estimator) reckon(at time.Time) (p float64, known bool) {
	if !e.known {
		return 0, false
	}
	if e.dir == Off || !at.After(e.at) {
		return e.p, true
	}
	// Held against the limit it is running into: the switch says where it is.
	if (e.dir == Opening && e.openLim) || (e.dir == Closing && e.closedLim) {
		return e.p, true
	}
	t := e.travel(e.dir)
	if t <= 0 {
		return 0, false
	}
	step := float64(at.Sub(e.at)) / float64(t)
	if e.dir == Closing {
		step = -step
	}
	return min(1, max(0, e.p+step)), true
}

// advance brings the state to `at` (or leaves it where it is if `at` is in
// the past).
func (e *Estimator) advance(at time.Time) {
	if !at.After(e.at) {
		return
	}
	e.p, e.known = e.reckon(at)
	e.at = at
}

// Motor reports that the motor changed to d at `at`: switched on, off, or
// the other way (the gate's reverse delay is an Off in between).
func (e *Estimator) Motor(d Dir, at time.Time) {
	e.advance(at)
	if d == e.dir {
		return
	}
	e.dir = d
	if d == Off {
		if e.run.ok && e.run.end.IsZero() {
			e.run.end = e.at
		}
		return
	}
	// A motion from one limit towards the other may be a full run.
	e.run = run{}
	if (d == Opening && e.closedLim && !e.openLim) || (d == Closing && e.openLim && !e.closedLim) {
		e.run = run{dir: d, start: e.at, ok: true}
	}
}

// Limits reports the limit switches at `at`: open true while the open-limit
// switch is active, closed likewise. learned is true when this completed a
// full run, a new sample: the time to save Samples to the state file.
func (e *Estimator) Limits(open, closed bool, at time.Time) (learned bool) {
	e.advance(at)
	if open == e.openLim && closed == e.closedLim {
		return false
	}
	wasOpen, wasClosed := e.openLim, e.closedLim
	e.openLim, e.closedLim = open, closed
	switch {
	case open && closed: // limit_conflict: neither switch can be believed
		e.known, e.run.ok = false, false
	case open:
		return e.reached(Opening, 1)
	case closed:
		return e.reached(Closing, 0)
	case wasOpen || wasClosed:
		// The leaf left a limit. Driven away from it, the reckoning started
		// when the motor did; otherwise it was pushed by hand, or bounced
		// back as the motor stopped, and nothing says how far it went.
		away := Closing
		if wasClosed {
			away = Opening
		}
		if e.dir != away {
			e.known = false
		}
	}
	return false
}

// reached handles the leaf arriving at the limit of direction d (p is 0 or 1):
// the position is exact, and a full run that way is a sample (learned).
func (e *Estimator) reached(d Dir, p float64) (learned bool) {
	e.p, e.known = p, true
	r := e.run
	e.run.ok = false
	if !r.ok || r.dir != d {
		return false
	}
	// The motor still runs that way, or went off at this very instant.
	if (e.dir == d && r.end.IsZero()) || (e.dir == Off && r.end.Equal(e.at)) {
		if t := e.at.Sub(r.start); t > 0 && t <= MaxTravel {
			if d == Opening {
				e.opens.push(t)
			} else {
				e.closes.push(t)
			}
			return true
		}
	}
	return false
}

// Position returns the estimate at `at` in whole percent, 0 = closed, 100 =
// open: exact while a limit switch is active; otherwise the reckoning,
// rounded and kept within 1..99, since only a switch may say the gate is
// closed or open. ok is false while the position is unknown (then
// SPEC.md's status shows null, D-Bus -1).
func (e Estimator) Position(at time.Time) (pos int, ok bool) {
	p, ok := e.fraction(at)
	if !ok {
		return 0, false
	}
	switch {
	case e.openLim:
		return 100, true
	case e.closedLim:
		return 0, true
	}
	return min(99, max(1, int(math.Round(p*100)))), true
}

// fraction is the position 0..1 at `at`, exact at a limit switch.
func (e *Estimator) fraction(at time.Time) (float64, bool) {
	switch {
	case e.openLim && e.closedLim:
		return 0, false
	case e.openLim:
		return 1, true
	case e.closedLim:
		return 0, true
	}
	return e.reckon(at)
}

// TimeTo says how to bring the leaf to target (0..100) from where the
// estimate puts it at `at`: run the motor d for dur, counted from a motor
// start at `at`. d is Off when the leaf is already there (within half a
// percent). The gate calls it when the motor starts (after any reverse
// delay) and again after anything that changes the motion, and stops the
// motor when dur has passed. For 0 and 100 the gate closes or opens
// instead, to the limit switch.
func (e Estimator) TimeTo(target int, at time.Time) (d Dir, dur time.Duration, err error) {
	if target < 0 || target > 100 {
		return Off, 0, ErrRange
	}
	p, ok := e.fraction(at)
	if !ok {
		return Off, 0, ErrUnknown
	}
	diff := float64(target)/100 - p
	if math.Abs(diff) < 0.005 {
		return Off, 0, nil
	}
	d = Opening
	if diff < 0 {
		d, diff = Closing, -diff
	}
	t := e.travel(d)
	if t <= 0 {
		return Off, 0, ErrNotLearned
	}
	dur = time.Duration(math.Round(diff * float64(t)))
	if dur <= 0 { // a travel time of nanoseconds: nothing to run
		return Off, 0, nil
	}
	return d, dur, nil
}
