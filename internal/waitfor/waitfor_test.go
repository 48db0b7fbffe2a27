package waitfor

import (
	"sync/atomic"
	"testing"
	"time"
)

func TestUntil(t *testing.T) {
	var n atomic.Int32
	if !Until(10*time.Second, func() bool { return n.Add(1) == 3 }) {
		t.Errorf("Until gave up on a condition that came true at the third look")
	}
	if Until(20*time.Millisecond, func() bool { return false }) {
		t.Errorf("Until reported a condition that never held")
	}
}
