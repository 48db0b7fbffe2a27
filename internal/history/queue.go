// queue.go holds the non-blocking queue: Add.

package history

// Add queues e for the writer and returns at once; it never blocks on the
// disk. Seq is assigned when e is written; a zero At becomes the store's
// clock's now. When QueueSize events already wait, the oldest is dropped
// (and counted in Stats.Dropped). After Close, Add does nothing.
func (s *Store) Add(e Event) {
	if s == nil {
		return
	}
	if e.At.IsZero() {
		e.At = s.clk.Now()
	}
	e.Seq = 0
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return
	}
	if len(s.q) >= s.opt.QueueSize {
		s.q[0] = Event{}
		s.q = s.q[1:]
		s.st.Dropped++
	}
	s.q = append(s.q, e)
	s.st.Added++
	n := len(s.q)
	s.mu.Unlock()
	// The writer needs to hear of the first event (to write it or start
	// its timer) and of a full batch; waking it for the others is waste.
	if n == 1 || n >= s.opt.BatchSize {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}
