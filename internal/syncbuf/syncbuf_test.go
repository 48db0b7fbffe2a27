package syncbuf

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

func TestConcurrentWriteAndRead(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 100; i++ {
			fmt.Fprintf(&b, "line %d\n", i)
		}
	}()
	for i := 0; i < 100; i++ {
		_ = b.String() // under -race, a data race here fails the test
	}
	wg.Wait()
	if got := strings.Count(b.String(), "\n"); got != 100 {
		t.Errorf("got %d lines, want 100", got)
	}
}
