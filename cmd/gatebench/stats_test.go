package main

import (
	"testing"
	"time"

	"rocksaying.tw/gated/internal/gate"
)

func TestSummarise(t *testing.T) {
	ms := func(n ...int) []time.Duration {
		var d []time.Duration
		for _, x := range n {
			d = append(d, time.Duration(x)*time.Millisecond)
		}
		return d
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = 100 - i // reversed: summarise must sort
	}
	for _, tc := range []struct {
		name          string
		in            []time.Duration
		p50, p99, max time.Duration
	}{
		{"empty", nil, 0, 0, 0},
		{"one", ms(7), 7 * time.Millisecond, 7 * time.Millisecond, 7 * time.Millisecond},
		{"two", ms(9, 1), 1 * time.Millisecond, 9 * time.Millisecond, 9 * time.Millisecond},
		{"hundred", ms(hundred...), 50 * time.Millisecond, 99 * time.Millisecond, 100 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := summarise(tc.in, 3)
			if d.P50 != tc.p50 || d.P99 != tc.p99 || d.Max != tc.max || d.N != len(tc.in) || d.Lost != 3 {
				t.Errorf("got %+v, want n %d lost 3 p50 %s p99 %s max %s", d, len(tc.in), tc.p50, tc.p99, tc.max)
			}
		})
	}
}

func TestParseStatTimes(t *testing.T) {
	for _, tc := range []struct {
		name, stat string
		ut, st     int64
		err        bool
	}{
		{"plain", "1234 (gated) S 1 1234 1234 0 -1 4194560 500 0 0 0 17 4 0 0 20 0 8 0", 17, 4, false},
		{"name with spaces and parens", "99 (a) b (c)) R 1 2 3 4 5 6 7 8 9 10 11 12 0 0", 11, 12, false},
		{"short", "99 (x) R 1 2 3", 0, 0, true},
		{"no name", "99 x R", 0, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ut, st, err := parseStatTimes(tc.stat)
			if (err != nil) != tc.err || ut != tc.ut || st != tc.st {
				t.Errorf("got %d %d %v, want %d %d error %v", ut, st, err, tc.ut, tc.st, tc.err)
			}
		})
	}
}

func TestParseStatus(t *testing.T) {
	kv := parseStatus("Name:\tgated\nVmHWM:\t   10952 kB\nVmRSS:\t   10800 kB\nvoluntary_ctxt_switches:\t42\nnonvoluntary_ctxt_switches:\t3\n")
	for k, want := range map[string]int64{"VmHWM": 10952, "VmRSS": 10800, "voluntary_ctxt_switches": 42, "nonvoluntary_ctxt_switches": 3} {
		if got := kv[k]; got != want {
			t.Errorf("%s: got %d, want %d", k, got, want)
		}
	}
	if _, ok := kv["Name"]; ok {
		t.Errorf("Name: got a number, want none")
	}
}

func TestSane(t *testing.T) {
	for _, tc := range []struct {
		name string
		st   statusFields
		ok   bool
	}{
		{"stopped", statusFields{"stopped", false, ""}, true},
		{"closed", statusFields{"closed", false, ""}, true},
		{"moving after stop", statusFields{"opening", true, ""}, false},
		{"fault without cause", statusFields{"fault", false, ""}, false},
		{"fault with cause", statusFields{"fault", false, "travel_timeout"}, true},
		{"cause without fault", statusFields{"open", false, "gpio"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := sane(tc.st.status()); (err == nil) != tc.ok {
				t.Errorf("sane: got %v, want ok %v", err, tc.ok)
			}
		})
	}
}

type statusFields struct {
	state  string
	moving bool
	fault  string
}

func (f statusFields) status() gate.Status {
	return gate.Status{State: gate.State(f.state), Moving: f.moving, Fault: gate.Fault(f.fault)}
}
