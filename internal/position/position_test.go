package position_test

// A little over 450 lines: the estimator's step table, one case a row.

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"rocksaying.tw/gated/internal/position"
)

var epoch = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// op is one step of a scenario: at (from epoch), a motor change or the limit
// switches.
type op struct {
	at     time.Duration
	motor  *position.Dir
	limits *[2]bool // open, closed
}

func motor(at time.Duration, d position.Dir) op { return op{at: at, motor: &d} }
func limits(at time.Duration, open, closed bool) op {
	return op{at: at, limits: &[2]bool{open, closed}}
}

func apply(e *position.Estimator, ops []op) {
	for _, o := range ops {
		switch {
		case o.motor != nil:
			e.Motor(*o.motor, epoch.Add(o.at))
		case o.limits != nil:
			e.Limits(o.limits[0], o.limits[1], epoch.Add(o.at))
		}
	}
}

const (
	s      = time.Second
	ms     = time.Millisecond
	openT  = 12 * s
	closeT = 10 * s
)

var configured = position.Config{OpenTime: openT, CloseTime: closeT}

// want is a position expected at a time; pos -1 means unknown.
type want struct {
	at  time.Duration
	pos int
}

func TestEstimator(t *testing.T) {
	atClosed := limits(0, false, true)
	atOpen := limits(0, true, false)
	tests := []struct {
		name string
		cfg  position.Config
		ops  []op
		want []want
		// travel times learned at the end (0 = none), when checked
		learnOpen, learnClose time.Duration
	}{
		{
			name: "start-up between the limits is unknown",
			cfg:  configured,
			ops:  []op{limits(0, false, false)},
			want: []want{{0, -1}, {time.Hour, -1}},
		},
		{
			name: "start-up at each limit is exact",
			cfg:  configured,
			ops:  []op{atClosed},
			want: []want{{0, 0}, {time.Hour, 0}},
		},
		{
			name: "start-up at the open limit",
			ops:  []op{atOpen},
			want: []want{{0, 100}},
		},
		{
			name: "both limits at once is unknown (limit_conflict)",
			cfg:  configured,
			ops:  []op{atClosed, limits(s, true, true)},
			want: []want{{s, -1}, {2 * s, -1}},
		},
		{
			name: "configured times: open a quarter, stop, reverse",
			cfg:  configured,
			ops: []op{
				atClosed, motor(0, position.Opening), limits(100*ms, false, false),
				motor(3*s, position.Off),
				motor(3500*ms, position.Closing), motor(4500*ms, position.Off),
			},
			want: []want{{1500 * ms, 13}, {3 * s, 25}, {3400 * ms, 25}, {4 * s, 20}, {4500 * ms, 15}, {time.Hour, 15}},
		},
		{
			name: "closing from the open limit counts from the motor start",
			cfg:  configured,
			ops:  []op{atOpen, motor(0, position.Closing), limits(50*ms, false, false), motor(5*s, position.Off)},
			want: []want{{20 * ms, 100}, {2500 * ms, 75}, {5 * s, 50}},
		},
		{
			name: "nothing learned: unknown between the limits, exact at them",
			ops: []op{
				atClosed, motor(0, position.Opening), limits(100*ms, false, false),
				limits(12*s, true, false), motor(12*s, position.Off),
			},
			want:      []want{{0, 0}, {50 * ms, 0}, {6 * s, -1}, {12 * s, 100}},
			learnOpen: 12 * s,
		},
		{
			name: "a first full run teaches its way only",
			ops: []op{
				atClosed, motor(0, position.Opening), limits(100*ms, false, false),
				limits(12*s, true, false), motor(12*s, position.Off),
				motor(20*s, position.Closing), limits(20100*ms, false, false),
			},
			want:      []want{{19 * s, 100}, {21 * s, -1}},
			learnOpen: 12 * s,
		},
		{
			name: "after a full run, reckoning that way",
			ops: []op{
				atClosed, motor(0, position.Opening), limits(100*ms, false, false),
				limits(12*s, true, false), motor(12*s, position.Off),
				motor(20*s, position.Closing), limits(20100*ms, false, false),
				limits(30*s, false, true), motor(30*s, position.Off),
				motor(40*s, position.Opening), limits(40100*ms, false, false), motor(46*s, position.Off),
			},
			want:      []want{{30 * s, 0}, {43 * s, 25}, {46 * s, 50}, {time.Hour, 50}},
			learnOpen: 12 * s, learnClose: 10 * s,
		},
		{
			name: "a run interrupted by a stop is no sample",
			ops: []op{
				atClosed, motor(0, position.Opening), limits(100*ms, false, false),
				motor(5*s, position.Off), motor(6*s, position.Opening),
				limits(13*s, true, false), motor(13*s, position.Off),
			},
			want: []want{{13 * s, 100}},
		},
		{
			name: "obstruction re-open: stop, reverse delay, open",
			cfg:  configured,
			ops: []op{
				atOpen, motor(0, position.Closing), limits(50*ms, false, false),
				motor(4*s, position.Off), motor(4500*ms, position.Opening),
				motor(7500*ms, position.Off),
			},
			want: []want{{4 * s, 60}, {4400 * ms, 60}, {5700 * ms, 70}, {7500 * ms, 85}},
		},
		{
			name: "a re-open to the limit is exact and no sample",
			ops: []op{
				atOpen, motor(0, position.Closing), limits(50*ms, false, false),
				motor(4*s, position.Off), motor(4500*ms, position.Opening),
				limits(9*s, true, false), motor(9*s, position.Off),
			},
			want: []want{{4 * s, -1}, {9 * s, 100}},
		},
		{
			name: "jam: the motor runs past the travel time, no switch: never 100",
			cfg:  configured,
			ops: []op{
				atClosed, motor(0, position.Opening), limits(100*ms, false, false),
				motor(30*s, position.Off), // travel_timeout
			},
			want: []want{{12 * s, 99}, {29 * s, 99}, {time.Hour, 99}},
		},
		{
			name: "jam while closing: never 0 without the switch",
			cfg:  configured,
			ops:  []op{atOpen, motor(0, position.Closing), limits(50*ms, false, false), motor(30*s, position.Off)},
			want: []want{{10 * s, 1}, {time.Hour, 1}},
		},
		{
			name: "pushed off the closed limit by hand: unknown",
			cfg:  configured,
			ops:  []op{atClosed, limits(5*s, false, false)},
			want: []want{{4 * s, 0}, {5 * s, -1}},
		},
		{
			name: "leaving a limit the wrong way: unknown",
			cfg:  configured,
			ops:  []op{atOpen, motor(0, position.Opening), limits(s, false, false)},
			want: []want{{s / 2, 100}, {s, -1}},
		},
		{
			name: "held against the limit it runs into: exact",
			cfg:  configured,
			ops:  []op{atOpen, motor(0, position.Opening)},
			want: []want{{time.Minute, 100}},
		},
		{
			name: "back on a limit makes an unknown position known",
			cfg:  configured,
			ops:  []op{limits(0, false, false), motor(s, position.Closing), limits(4*s, false, true), motor(4*s, position.Off)},
			want: []want{{2 * s, -1}, {4 * s, 0}},
		},
		{
			name: "an estimate under half a percent is 1, not 0",
			cfg:  configured,
			ops:  []op{atClosed, motor(0, position.Opening), limits(10*ms, false, false), motor(40*ms, position.Off)},
			want: []want{{40 * ms, 1}},
		},
		{
			name: "time running backwards changes nothing",
			cfg:  configured,
			ops: []op{
				atClosed, motor(0, position.Opening), limits(100*ms, false, false),
				motor(6*s, position.Off), motor(3*s, position.Opening), motor(3*s, position.Off),
			},
			want: []want{{6 * s, 50}, {7 * s, 50}},
		},
		{
			name: "repeated limit reports do not end a run",
			ops: []op{
				atClosed, motor(0, position.Opening), limits(20*ms, false, true),
				limits(100*ms, false, false), limits(200*ms, false, false),
				limits(12*s, true, false), motor(12*s, position.Off),
			},
			want:      []want{{12 * s, 100}},
			learnOpen: 12 * s,
		},
		{
			name: "motor off reported before the limit at the same instant: still a run",
			ops: []op{
				atClosed, motor(0, position.Opening), limits(100*ms, false, false),
				motor(12*s, position.Off), limits(12*s, true, false),
			},
			want:      []want{{12 * s, 100}},
			learnOpen: 12 * s,
		},
		{
			name: "reaching the limit after the motor stopped is no run",
			ops: []op{
				atClosed, motor(0, position.Opening), limits(100*ms, false, false),
				motor(12*s, position.Off), limits(12100*ms, true, false),
			},
			want: []want{{13 * s, 100}},
		},
		{
			name: "starting between the limits is no run",
			ops: []op{
				limits(0, false, false), motor(0, position.Opening),
				limits(8*s, true, false), motor(8*s, position.Off),
			},
			want: []want{{4 * s, -1}, {8 * s, 100}},
		},
		{
			name: "limit conflict during a run ends it",
			ops: []op{
				atClosed, motor(0, position.Opening), limits(100*ms, false, false),
				limits(5*s, true, true), limits(12*s, true, false), motor(12*s, position.Off),
			},
			want: []want{{6 * s, -1}, {12 * s, 100}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := position.New(tt.cfg)
			ops := tt.ops
			for _, w := range tt.want {
				// Feed what happened up to the time asked about.
				n := 0
				for n < len(ops) && ops[n].at <= w.at {
					n++
				}
				apply(&e, ops[:n])
				ops = ops[n:]
				pos, ok := e.Position(epoch.Add(w.at))
				got := pos
				if !ok {
					got = -1
				}
				if got != w.pos {
					t.Errorf("Position at %v: got %d, want %d", w.at, got, w.pos)
				}
			}
			apply(&e, ops)
			o, c := e.TravelTimes()
			if tt.cfg == (position.Config{}) && (o != tt.learnOpen || c != tt.learnClose) {
				t.Errorf("TravelTimes: got open %v close %v, want open %v close %v", o, c, tt.learnOpen, tt.learnClose)
			}
		})
	}
}

// fullRuns returns the ops of full runs open then close, taking the given
// durations, starting at the closed limit at `from`.
func fullRuns(from time.Duration, opens, closes []time.Duration) (ops []op, end time.Duration) {
	t := from
	ops = append(ops, limits(t, false, true))
	for i := range max(len(opens), len(closes)) {
		if i < len(opens) {
			ops = append(ops, motor(t, position.Opening), limits(t+50*ms, false, false),
				limits(t+opens[i], true, false), motor(t+opens[i], position.Off))
			t += opens[i] + s
		} else {
			ops = append(ops, motor(t, position.Opening), limits(t+50*ms, false, false), motor(t+s, position.Off))
			ops = append(ops, motor(t+2*s, position.Opening), limits(t+10*s, true, false), motor(t+10*s, position.Off))
			t += 11 * s
		}
		if i < len(closes) {
			ops = append(ops, motor(t, position.Closing), limits(t+50*ms, false, false),
				limits(t+closes[i], false, true), motor(t+closes[i], position.Off))
			t += closes[i] + s
		} else {
			ops = append(ops, motor(t, position.Closing), limits(t+50*ms, false, false), motor(t+s, position.Off))
			ops = append(ops, motor(t+2*s, position.Closing), limits(t+10*s, false, true), motor(t+10*s, position.Off))
			t += 11 * s
		}
	}
	return ops, t
}

func TestMedianOfLastFive(t *testing.T) {
	tests := []struct {
		name   string
		opens  []time.Duration
		closes []time.Duration
		want   [2]time.Duration
	}{
		{"one run", []time.Duration{12 * s}, []time.Duration{10 * s}, [2]time.Duration{12 * s, 10 * s}},
		{"odd: the middle one", []time.Duration{13 * s, 11 * s, 12 * s}, []time.Duration{9 * s, 30 * s, 10 * s}, [2]time.Duration{12 * s, 10 * s}},
		{"even: the mean of the middle two", []time.Duration{10 * s, 11 * s, 13 * s, 40 * s}, []time.Duration{10 * s, 11 * s}, [2]time.Duration{12 * s, 10500 * ms}},
		{
			"only the last five count",
			[]time.Duration{50 * s, 50 * s, 50 * s, 12 * s, 12 * s, 12 * s, 11 * s, 13 * s},
			[]time.Duration{1 * s, 1 * s, 10 * s, 10 * s, 10 * s, 9 * s, 30 * s},
			[2]time.Duration{12 * s, 10 * s},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := position.New(position.Config{})
			ops, _ := fullRuns(0, tt.opens, tt.closes)
			apply(&e, ops)
			if o, c := e.TravelTimes(); o != tt.want[0] || c != tt.want[1] {
				t.Errorf("TravelTimes: got open %v close %v, want open %v close %v", o, c, tt.want[0], tt.want[1])
			}
			sm := e.Samples()
			if len(sm.Open) != min(len(tt.opens), position.MaxSamples) || len(sm.Close) != min(len(tt.closes), position.MaxSamples) {
				t.Errorf("Samples: got %d open, %d close, want the last %d of %d and %d", len(sm.Open), len(sm.Close), position.MaxSamples, len(tt.opens), len(tt.closes))
			}
			if n := len(tt.opens); n > 0 && sm.Open[len(sm.Open)-1] != tt.opens[n-1] {
				t.Errorf("Samples: newest open run %v, want %v (oldest first)", sm.Open[len(sm.Open)-1], tt.opens[n-1])
			}
		})
	}
}

func TestConfiguredTimesWinOverLearned(t *testing.T) {
	e := position.New(position.Config{OpenTime: 20 * s})
	ops, _ := fullRuns(0, []time.Duration{12 * s}, []time.Duration{10 * s})
	apply(&e, ops)
	if o, c := e.TravelTimes(); o != 20*s || c != 10*s {
		t.Errorf("TravelTimes: got open %v close %v, want the configured 20s and the learned 10s", o, c)
	}
	if got := e.Samples().Open; len(got) != 1 || got[0] != 12*s {
		t.Errorf("Samples().Open: got %v, want [12s]: learning goes on for gatectl status", got)
	}
}

func TestTimeTo(t *testing.T) {
	atClosed := []op{limits(0, false, true)}
	midway := []op{limits(0, false, true), motor(0, position.Opening), limits(50*ms, false, false), motor(6*s, position.Off)} // 50 %
	tests := []struct {
		name    string
		cfg     position.Config
		ops     []op
		at      time.Duration
		target  int
		dir     position.Dir
		dur     time.Duration
		wantErr error
	}{
		{"open to 40 from closed", configured, atClosed, s, 40, position.Opening, 4800 * ms, nil},
		{"close to 20 from 50", configured, midway, 7 * s, 20, position.Closing, 3 * s, nil},
		{"open to 75 from 50", configured, midway, 7 * s, 75, position.Opening, 3 * s, nil},
		{"already there", configured, midway, 7 * s, 50, position.Off, 0, nil},
		{"to the open limit: the limit ends it", configured, midway, 7 * s, 100, position.Opening, 6 * s, nil},
		{"while moving, counted from now", configured, []op{limits(0, false, true), motor(0, position.Opening), limits(50*ms, false, false)}, 3 * s, 40, position.Opening, 1800 * ms, nil},
		{"unknown position", configured, []op{limits(0, false, false)}, s, 40, position.Off, 0, position.ErrUnknown},
		{"known, but that way not learned", position.Config{}, atClosed, s, 40, position.Off, 0, position.ErrNotLearned},
		{"below 0", configured, atClosed, s, -1, position.Off, 0, position.ErrRange},
		{"above 100", configured, atClosed, s, 101, position.Off, 0, position.ErrRange},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := position.New(tt.cfg)
			apply(&e, tt.ops)
			dir, dur, err := e.TimeTo(tt.target, epoch.Add(tt.at))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("TimeTo(%d): got error %v, want %v", tt.target, err, tt.wantErr)
			}
			if dir != tt.dir || dur != tt.dur {
				t.Errorf("TimeTo(%d): got %v for %v, want %v for %v", tt.target, dir, dur, tt.dir, tt.dur)
			}
		})
	}
}

// TestTimeToReachesTarget runs the motor as TimeTo says and checks the
// estimate lands on the target.
func TestTimeToReachesTarget(t *testing.T) {
	for _, target := range []int{1, 10, 33, 40, 50, 67, 99} {
		t.Run(fmt.Sprint(target), func(t *testing.T) {
			e := position.New(configured)
			apply(&e, []op{limits(0, true, false)})
			now := epoch.Add(s)
			dir, dur, err := e.TimeTo(target, now)
			if err != nil || dir != position.Closing {
				t.Fatalf("TimeTo(%d) from open: got %v, %v, want closing", target, dir, err)
			}
			e.Motor(dir, now)
			e.Limits(false, false, now.Add(50*ms))
			e.Motor(position.Off, now.Add(dur))
			if got, ok := e.Position(now.Add(dur)); !ok || got != target {
				t.Errorf("after TimeTo(%d): Position %d (known %v), want %d", target, got, ok, target)
			}
		})
	}
}

func TestLimitsSaysWhenLearned(t *testing.T) {
	e := position.New(position.Config{})
	for i, c := range []struct {
		o    op
		want bool
	}{
		{limits(0, false, true), false},
		{motor(0, position.Opening), false},
		{limits(100*ms, false, false), false},
		{limits(12*s, true, false), true}, // a full run
		{motor(12*s, position.Off), false},
		{limits(12*s, true, false), false}, // the same switches again
		{motor(20*s, position.Closing), false},
		{limits(20100*ms, false, false), false},
		{motor(25*s, position.Off), false},
		{motor(26*s, position.Closing), false},
		{limits(31*s, false, true), false}, // interrupted: no sample
	} {
		var got bool
		if c.o.limits != nil {
			got = e.Limits(c.o.limits[0], c.o.limits[1], epoch.Add(c.o.at))
		} else {
			e.Motor(*c.o.motor, epoch.Add(c.o.at))
		}
		if got != c.want {
			t.Errorf("step %d at %v: Limits learned %v, want %v", i, c.o.at, got, c.want)
		}
	}
}
