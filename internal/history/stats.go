// stats.go holds the Stats counters.

package history

// Stats are the store's counters since Open, for logs and metrics.
type Stats struct {
	Queued  int    // events waiting for the writer
	Events  int    // events in the store
	Added   uint64 // events accepted by Add
	Written uint64 // events committed
	Dropped uint64 // events Add dropped because the queue was full
	Failed  uint64 // events lost because their transaction failed
	Pruned  uint64 // events deleted by retention
	Commits uint64 // transactions committed; bbolt fdatasyncs twice in each
}

// Stats returns the counters.
func (s *Store) Stats() Stats {
	if s == nil {
		return Stats{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st
	st.Queued = len(s.q)
	return st
}
