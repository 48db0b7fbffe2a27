// Package waitfor lets a test wait for an outcome that another goroutine or
// process brings about (a log line, a connection, a bus name), by polling
// it. It is not for waiting on a timer: tests advance a fake clock for
// those.
package waitfor

import "time"

// Until polls cond every 5 ms until it holds (true) or d has passed
// (false, after one last look).
func Until(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return cond()
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}
