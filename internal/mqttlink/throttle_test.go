package mqttlink

import (
	"strings"
	"testing"

	"github.com/jonboulle/clockwork"
)

func TestThrottle(t *testing.T) {
	clk := clockwork.NewFakeClock()
	log, logs := captureLog()
	th := throttle{clk: clk}
	count := func() int { return strings.Count(logs.String(), "cannot connect") }
	for range 5 {
		th.log(log, "cannot connect", "err", "refused")
	}
	if n := count(); n != 1 {
		t.Fatalf("%d lines for 5 repeats within a minute, want 1", n)
	}
	clk.Advance(throttleEvery)
	th.log(log, "cannot connect", "err", "refused")
	if n := count(); n != 2 || !strings.Contains(logs.String(), "suppressed=4") {
		t.Errorf("after a minute: %d lines, want 2 with suppressed=4:\n%s", n, logs.String())
	}
	th.reset()
	th.log(log, "cannot connect", "err", "refused")
	if n := count(); n != 3 {
		t.Errorf("after reset: %d lines, want 3", n)
	}
}
