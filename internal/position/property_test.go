package position_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"rocksaying.tw/gated/internal/position"
)

// The property test drives a simulated leaf through a random walk of
// commands, in fake time, with a small controller in front of it that acts
// as the gate does (limit switches stop the motor, a reversal waits
// reverse_delay, an obstruction while closing re-opens, a position command
// runs the motor for what TimeTo says), and checks that the estimate, fed
// only what the gate sees, stays within ±5 % of the leaf's true position
// whenever it claims to know it.

const (
	step         = 10 * time.Millisecond
	debounce     = 30 * time.Millisecond
	reverseDelay = 500 * time.Millisecond
	band         = 0.005 // a limit switch is active this close to its end, as in internal/sim
	tolerance    = 5     // percent
	gotoTol      = 3     // percent: a position command ends this close to its target
)

// leaf is the true gate: where the leaf really is, moved by the motor at its
// own speed, which varies a little from run to run, as a real gate's does
// with wind and temperature.
type leaf struct {
	x             float64 // 0 = closed .. 1 = open
	openT, closeT time.Duration
	speed         float64 // this run's factor
}

func (l *leaf) move(d position.Dir, dt time.Duration) {
	switch d {
	case position.Opening:
		l.x = min(1, l.x+l.speed*float64(dt)/float64(l.openT))
	case position.Closing:
		l.x = max(0, l.x-l.speed*float64(dt)/float64(l.closeT))
	}
}

// walker is the gate in front of the leaf and the estimator.
type walker struct {
	t   *testing.T
	rng *rand.Rand
	now time.Time
	l   leaf
	e   position.Estimator

	motor position.Dir
	// the switches: raw contacts, when they last changed, and what the
	// gate has been told after debouncing
	rawOpen, rawClosed bool
	rawSince           time.Time
	open, closed       bool

	pending   position.Dir // a start waiting for reverseDelay
	startAt   time.Time
	target    int       // a position command under way (-1: none)
	stopAt    time.Time // when the motor stops for it
	gotoClean bool      // nothing has interrupted it

	checked, known, gotos, gotoChecked int
	worst                              float64
}

func newWalker(t *testing.T, seed uint64, cfg position.Config, start float64) *walker {
	w := &walker{
		t:      t,
		rng:    rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		now:    epoch,
		l:      leaf{x: start, openT: 12 * time.Second, closeT: 10 * time.Second, speed: 1},
		e:      position.New(cfg),
		target: -1,
	}
	w.rawOpen, w.rawClosed = w.contacts()
	w.open, w.closed, w.rawSince = w.rawOpen, w.rawClosed, w.now
	w.e.Limits(w.open, w.closed, w.now)
	return w
}

func (w *walker) contacts() (open, closed bool) { return w.l.x >= 1-band, w.l.x <= band }

func (w *walker) setMotor(d position.Dir) {
	if d == w.motor {
		return
	}
	w.motor = d
	if d != position.Off {
		w.l.speed = 1 + (w.rng.Float64()*2-1)*0.01
	}
	w.e.Motor(d, w.now)
}

// stop switches the motor off and forgets any start or position command.
func (w *walker) stop() {
	w.setMotor(position.Off)
	w.pending, w.target = position.Off, -1
}

// drive starts the motor towards d, reversing through reverseDelay.
func (w *walker) drive(d position.Dir) {
	w.pending = position.Off
	switch {
	case w.motor == d:
	case w.motor != position.Off:
		w.setMotor(position.Off)
		w.pending, w.startAt = d, w.now.Add(reverseDelay)
	case (d == position.Opening && w.open) || (d == position.Closing && w.closed):
		// already there: the gate does not run into its limit
	default:
		w.setMotor(d)
	}
}

// gotoPos is a position command: 0 and 100 are close and open.
func (w *walker) gotoPos(target int) {
	switch target {
	case 0:
		w.target = -1
		w.drive(position.Closing)
		return
	case 100:
		w.target = -1
		w.drive(position.Opening)
		return
	}
	d, _, err := w.e.TimeTo(target, w.now)
	if err != nil {
		return // refused: position_unknown
	}
	w.gotos++
	w.target, w.gotoClean = target, true
	if d == position.Off {
		w.stop()
		return
	}
	if w.motor != position.Off && w.motor != d {
		w.setMotor(position.Off)
		w.pending, w.startAt = d, w.now.Add(reverseDelay)
		return
	}
	w.startGoto()
}

// startGoto starts (or keeps) the motor for the position command, timed
// from now.
func (w *walker) startGoto() {
	d, dur, err := w.e.TimeTo(w.target, w.now)
	if err != nil || d == position.Off {
		w.stop()
		return
	}
	w.setMotor(d)
	w.stopAt = w.now.Add(dur)
}

// tick lets one step of time pass: the leaf moves, the switches debounce,
// the gate reacts, and the estimate is checked.
func (w *walker) tick() {
	w.l.move(w.motor, step)
	w.now = w.now.Add(step)

	if o, c := w.contacts(); o != w.rawOpen || c != w.rawClosed {
		w.rawOpen, w.rawClosed, w.rawSince = o, c, w.now
	}
	if (w.rawOpen != w.open || w.rawClosed != w.closed) && w.now.Sub(w.rawSince) >= debounce {
		w.open, w.closed = w.rawOpen, w.rawClosed
		hit := (w.open && w.motor == position.Opening) || (w.closed && w.motor == position.Closing)
		// The gate reports the switch, then stops the motor; the estimator
		// takes the other order at the same instant as well.
		if hit && w.rng.IntN(3) == 0 {
			w.stop()
			w.e.Limits(w.open, w.closed, w.now)
		} else {
			w.e.Limits(w.open, w.closed, w.now)
			if hit {
				w.stop()
			}
		}
	}
	if w.pending != position.Off && !w.now.Before(w.startAt) {
		d := w.pending
		w.pending = position.Off
		if w.target >= 0 {
			w.startGoto()
		} else {
			w.drive(d)
		}
	}
	if w.target >= 0 && w.motor != position.Off && w.pending == position.Off && !w.now.Before(w.stopAt) {
		target, clean := w.target, w.gotoClean
		w.stop()
		if clean {
			w.gotoChecked++
			if got := 100 * w.l.x; math.Abs(got-float64(target)) > gotoTol {
				w.t.Errorf("at %v: a position command for %d ended at %.1f %%, want within ±%d", w.now.Sub(epoch), target, got, gotoTol)
			}
		}
	}
	w.check()
}

func (w *walker) check() {
	w.checked++
	pos, ok := w.e.Position(w.now)
	if !ok {
		return
	}
	w.known++
	truth := 100 * w.l.x
	off := math.Abs(float64(pos) - truth)
	w.worst = max(w.worst, off)
	if off > tolerance {
		w.t.Fatalf("at %v: estimate %d %%, true position %.2f %% (motor %v, switches open %v closed %v, travel times %v)",
			w.now.Sub(epoch), pos, truth, w.motor, w.open, w.closed, fmt.Sprint(w.e.TravelTimes()))
	}
}

func (w *walker) wait(d time.Duration) {
	for end := w.now.Add(d); w.now.Before(end); {
		w.tick()
	}
}

// command is one random command, as users and automations send them.
func (w *walker) command() string {
	switch r := w.rng.IntN(100); {
	case r < 20:
		w.target = -1
		w.drive(position.Opening)
		return "open"
	case r < 40:
		w.target = -1
		w.drive(position.Closing)
		return "close"
	case r < 55:
		w.stop()
		return "stop"
	case r < 80:
		target := w.rng.IntN(101)
		w.gotoPos(target)
		return fmt.Sprint("position ", target)
	default:
		// An obstruction: while closing, the gate stops and re-opens.
		if w.motor == position.Closing || w.pending == position.Closing {
			w.target = -1
			w.drive(position.Opening)
		}
		if w.target >= 0 {
			w.gotoClean = false
		}
		return "obstruct"
	}
}

func TestRandomWalkStaysWithinFivePercent(t *testing.T) {
	const commands = 500
	tests := []struct {
		name  string
		cfg   position.Config
		start float64
	}{
		{"learning from nothing, starting midway", position.Config{}, 0.37},
		{"learning from nothing, starting closed", position.Config{}, 0},
		{"configured travel times", position.Config{OpenTime: 12 * time.Second, CloseTime: 10 * time.Second}, 0.8},
	}
	for _, tt := range tests {
		for seed := uint64(1); seed <= 3; seed++ {
			t.Run(fmt.Sprintf("%s/seed %d", tt.name, seed), func(t *testing.T) {
				w := newWalker(t, seed, tt.cfg, tt.start)
				for range commands {
					w.command()
					// Mostly short waits, so motions get interrupted; some
					// long enough to reach a limit.
					long := 15 * time.Second
					if w.rng.IntN(2) == 0 {
						long = 5 * time.Second
					}
					w.wait(time.Duration(w.rng.Int64N(int64(long))) + step)
				}
				o, c := w.e.TravelTimes()
				t.Logf("%d checks, %d with a known position, worst error %.2f %%; %d position commands, %d checked; travel times %v / %v",
					w.checked, w.known, w.worst, w.gotos, w.gotoChecked, o, c)
				// The walk must have exercised what it claims to test.
				if o == 0 || c == 0 {
					t.Errorf("travel times after the walk: open %v close %v, want both learned", o, c)
				}
				if w.known < w.checked/2 {
					t.Errorf("known in %d of %d checks, want at least half", w.known, w.checked)
				}
				if w.gotoChecked < 20 {
					t.Errorf("%d position commands ran to their end undisturbed, want at least 20", w.gotoChecked)
				}
			})
		}
	}
}
