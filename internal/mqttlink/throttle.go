package mqttlink

// The throttle: errors that would repeat on every reconnection are logged
// once a minute.

import (
	"log/slog"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
)

// throttle logs an error that would repeat on every reconnection attempt
// once, then at most once a minute with the number suppressed meanwhile.
type throttle struct {
	clk        clockwork.Clock
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// throttleEvery is how often a repeating error is logged.
const throttleEvery = time.Minute

func (t *throttle) log(log *slog.Logger, msg string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.clk.Now()
	if !t.last.IsZero() && now.Sub(t.last) < throttleEvery {
		t.suppressed++
		return
	}
	if t.suppressed > 0 {
		args = append(args, "suppressed", t.suppressed)
	}
	t.last, t.suppressed = now, 0
	log.Warn(msg, args...)
}

func (t *throttle) reset() {
	t.mu.Lock()
	t.last, t.suppressed = time.Time{}, 0
	t.mu.Unlock()
}
