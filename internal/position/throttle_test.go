package position_test

import (
	"testing"
	"time"

	"rocksaying.tw/gated/internal/position"
)

func TestThrottle(t *testing.T) {
	type call struct {
		at     time.Duration
		pos    int
		known  bool
		moving bool
		want   bool
	}
	tests := []struct {
		name  string
		calls []call
	}{
		{"the first reading goes out", []call{{0, 0, true, false, true}}},
		{"an unknown first reading goes out", []call{{0, 0, false, false, true}}},
		{"unchanged while idle: once", []call{{0, 0, true, false, true}, {s, 0, true, false, false}, {time.Hour, 0, true, false, false}}},
		{"a change while idle goes out at once", []call{{0, 0, true, false, true}, {10 * ms, 1, true, false, true}, {20 * ms, 0, false, false, true}}},
		{
			"while moving: at most once a second",
			[]call{
				{0, 0, true, true, true},
				{100 * ms, 1, true, true, false},
				{999 * ms, 8, true, true, false},
				{s, 9, true, true, true},
				{1500 * ms, 13, true, true, false},
				{2 * s, 17, true, true, true},
			},
		},
		{
			"always at a stop, even within the second",
			[]call{{0, 0, true, true, true}, {300 * ms, 3, true, false, true}},
		},
		{
			"always at a stop, even unchanged",
			[]call{{0, 40, true, true, true}, {200 * ms, 40, true, false, true}, {300 * ms, 40, true, false, false}},
		},
		{
			"moving but unchanged (held at a limit): nothing",
			[]call{{0, 100, true, true, true}, {2 * s, 100, true, true, false}, {4 * s, 100, true, true, false}},
		},
		{
			"unknown stays unknown whatever pos says",
			[]call{{0, 0, false, true, true}, {2 * s, 57, false, true, false}},
		},
		{
			"becoming unknown while moving waits for the second too",
			[]call{{0, 50, true, true, true}, {100 * ms, 0, false, true, false}, {s, 0, false, true, true}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var th position.Throttle
			for i, c := range tt.calls {
				if got := th.Publish(c.pos, c.known, c.moving, epoch.Add(c.at)); got != c.want {
					t.Errorf("call %d: Publish(%d, known %v, moving %v) at %v: got %v, want %v", i, c.pos, c.known, c.moving, c.at, got, c.want)
				}
			}
		})
	}
}

func TestThrottleNextAndReset(t *testing.T) {
	var th position.Throttle
	th.Publish(0, true, true, epoch)
	if th.Publish(5, true, true, epoch.Add(200*ms)) {
		t.Fatal("Publish within the second: got true, want false")
	}
	if got, want := th.Next(), epoch.Add(position.Interval); !got.Equal(want) {
		t.Errorf("Next: got %v, want %v", got, want)
	}
	if !th.Publish(5, true, true, th.Next()) {
		t.Error("Publish at Next: got false, want true")
	}
	th.Reset()
	if !th.Publish(5, true, true, th.Next().Add(-time.Millisecond)) {
		t.Error("Publish after Reset: got false, want true (e.g. Home Assistant came online)")
	}
}
