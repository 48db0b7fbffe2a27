package webauth

import (
	"net/http"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
)

func TestThrottleBlocksAfterFiveFailuresInAMinute(t *testing.T) {
	clk := clockwork.NewFakeClock()
	th := &Throttle{Clock: clk}
	for i := 1; i <= 4; i++ {
		if th.Fail("192.0.2.1") {
			t.Fatalf("blocked after %d failures, want 5", i)
		}
		clk.Advance(time.Second)
	}
	if !th.Fail("192.0.2.1") {
		t.Fatal("not blocked after 5 failures")
	}
	if b, left := th.Blocked("192.0.2.1"); !b || left != time.Minute {
		t.Errorf("Blocked = %v, %v; want true, 1m", b, left)
	}
	if b, _ := th.Blocked("192.0.2.2"); b {
		t.Error("another address is blocked too")
	}
	clk.Advance(30 * time.Second)
	th.Fail("192.0.2.1") // while blocked: not counted, the block not extended
	clk.Advance(29 * time.Second)
	if b, left := th.Blocked("192.0.2.1"); !b || left != time.Second {
		t.Errorf("after 59s: Blocked = %v, %v; want true, 1s", b, left)
	}
	clk.Advance(time.Second)
	if b, _ := th.Blocked("192.0.2.1"); b {
		t.Error("still blocked after a minute")
	}
	if th.Fail("192.0.2.1") {
		t.Error("blocked by the first failure after a block")
	}
}

func TestThrottleWindowSlides(t *testing.T) {
	clk := clockwork.NewFakeClock()
	start := clk.Now()
	at := func(sec int) { clk.Advance(start.Add(time.Duration(sec) * time.Second).Sub(clk.Now())) }
	th := &Throttle{Clock: clk}
	for _, sec := range []int{0, 20, 40, 50} {
		at(sec)
		if th.Fail("a") {
			t.Fatalf("blocked at %ds", sec)
		}
	}
	at(61) // the failure at 0s has left the window
	if th.Fail("a") {
		t.Fatal("blocked at 61s with 4 failures in the last minute")
	}
	at(62) // 20, 40, 50, 61, 62: five within a minute
	if !th.Fail("a") {
		t.Fatal("not blocked at 62s with 5 failures in the last minute")
	}
}

func TestThrottleRemembersBoundedAddresses(t *testing.T) {
	th := &Throttle{Clock: clockwork.NewFakeClock(), MaxAddresses: 3, MaxFailures: 2}
	th.Fail("a")
	th.Fail("b")
	th.Fail("c")
	th.Fail("a") // a blocked, and most recently seen
	th.Fail("d") // pushes out b, the least recently seen
	if n := th.Len(); n != 3 {
		t.Errorf("remembers %d addresses, want 3", n)
	}
	if b, _ := th.Blocked("a"); !b {
		t.Error("a, recently seen, was forgotten")
	}
	if th.Fail("b") {
		t.Error("b kept its failure: it should have been forgotten")
	}
}

func TestClientAddr(t *testing.T) {
	tests := []struct{ remote, want string }{
		{"192.0.2.1:1234", "192.0.2.1"},
		{"[2001:db8:1:2:3:4:5:6]:443", "2001:db8:1:2::/64"},
		{"[::ffff:192.0.2.1]:80", "192.0.2.1"},
		{"[fe80::1%eth0]:80", "fe80::/64"},
		{"[::1]:80", "::/64"},
		{"not an address", "not an address"},
	}
	for _, tt := range tests {
		r := &http.Request{RemoteAddr: tt.remote}
		if got := ClientAddr(r); got != tt.want {
			t.Errorf("ClientAddr(%q) = %q, want %q", tt.remote, got, tt.want)
		}
	}
}
