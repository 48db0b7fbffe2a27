package position_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"rocksaying.tw/gated/internal/position"
)

// FuzzEstimator feeds an estimator any sequence of motor changes, limit
// switch reports and time steps (forwards and backwards), and checks what
// holds whatever the gate does: the position is 0..100, exact at a single
// active switch, never 0 or 100 without it; TimeTo's answer is sane; the
// samples survive a round trip.
//
// Each byte is one event: the low two bits pick a motor direction (3 =
// limit switches, the next two bits open and closed), the top four bits a
// time step of 0..15 × 250 ms, backwards when bit 2 is set with a motor
// event.
func FuzzEstimator(f *testing.F) {
	f.Add([]byte{0x0f, 0x11, 0x00, 0x43, 0x81, 0x83}, int64(0), int64(0))
	f.Add([]byte{0x0b, 0x12, 0xf2, 0x03, 0x07, 0x0f, 0x05}, int64(12e9), int64(10e9))
	f.Fuzz(func(t *testing.T, ops []byte, openT, closeT int64) {
		cfg := position.Config{OpenTime: time.Duration(openT), CloseTime: time.Duration(closeT)}
		if cfg.OpenTime < 0 || cfg.OpenTime > position.MaxTravel || cfg.CloseTime < 0 || cfg.CloseTime > position.MaxTravel {
			t.Skip("travel times are checked by the config package")
		}
		e := position.New(cfg)
		now := epoch
		var open, closed bool
		for _, b := range ops {
			d := time.Duration(b>>4) * 250 * time.Millisecond
			if b&3 == 3 {
				now = now.Add(d)
				open, closed = b&4 != 0, b&8 != 0
				e.Limits(open, closed, now)
			} else {
				if b&4 != 0 {
					d = -d
				}
				now = now.Add(d)
				e.Motor(position.Dir(b&3), now)
			}
			pos, ok := e.Position(now)
			switch {
			case !ok:
				if open != closed {
					t.Fatalf("unknown with exactly one limit switch active (open %v closed %v)", open, closed)
				}
			case pos < 0 || pos > 100:
				t.Fatalf("Position %d, want 0..100", pos)
			case open && !closed && pos != 100, closed && !open && pos != 0:
				t.Fatalf("Position %d at a limit switch (open %v closed %v)", pos, open, closed)
			case !open && !closed && (pos < 1 || pos > 99):
				t.Fatalf("Position %d between the switches, want 1..99", pos)
			}
			for _, target := range []int{0, 37, 100} {
				dir, dur, err := e.TimeTo(target, now)
				if err == nil && (dur < 0 || dur > position.MaxTravel || (dir == position.Off) != (dur == 0)) {
					t.Fatalf("TimeTo(%d): %v for %v", target, dir, dur)
				}
				if err != nil && ok && dir != position.Off {
					t.Fatalf("TimeTo(%d): %v with error %v", target, dir, err)
				}
			}
		}
		sm := e.Samples()
		if len(sm.Open) > position.MaxSamples || len(sm.Close) > position.MaxSamples {
			t.Fatalf("Samples: %d open, %d close, want at most %d", len(sm.Open), len(sm.Close), position.MaxSamples)
		}
		b, err := json.Marshal(sm)
		if err != nil {
			t.Fatal(err)
		}
		var back position.Samples
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("Unmarshal(%s): %v", b, err)
		}
		restored := position.New(cfg)
		if err := restored.SetSamples(back); err != nil {
			t.Fatalf("SetSamples(%s): %v", b, err)
		}
		if diff := cmp.Diff(sm, restored.Samples()); diff != "" {
			t.Fatalf("samples round trip (-before +after):\n%s", diff)
		}
	})
}

// FuzzSamples reads the samples as a state file would hold them: any bytes
// are refused or accepted, never a panic, and what is accepted writes back
// as it reads.
func FuzzSamples(f *testing.F) {
	for _, s := range []string{
		`{"open":["12s","12.1s"],"close":["10s"]}`,
		`{"open":[],"close":[]}`,
		`{"open":["-1s"]}`,
		`{"open":["1h0m1s"]}`,
		`{"close":["1s","1s","1s","1s","1s","1s"]}`,
		`{"open":[12]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var sm position.Samples
		if json.Unmarshal(b, &sm) != nil {
			return
		}
		e := position.New(position.Config{})
		if e.SetSamples(sm) != nil {
			if len(e.Samples().Open)+len(e.Samples().Close) != 0 {
				t.Fatal("a refused SetSamples left samples behind")
			}
			return
		}
		out, err := json.Marshal(e.Samples())
		if err != nil {
			t.Fatal(err)
		}
		var again position.Samples
		if err := json.Unmarshal(out, &again); err != nil {
			t.Fatalf("Unmarshal(%s) of our own output: %v", out, err)
		}
		if diff := cmp.Diff(e.Samples(), again); diff != "" {
			t.Fatalf("round trip of %s (-want +got):\n%s", out, diff)
		}
		o, c := e.TravelTimes()
		if o < 0 || o > position.MaxTravel || c < 0 || c > position.MaxTravel {
			t.Fatalf("TravelTimes %v %v from accepted samples %s", o, c, b)
		}
	})
}
