// store_test.go holds the tests of the nil store.

package history

import (
	"context"
	"testing"
)

func TestNilStoreIsANoOp(t *testing.T) {
	var s *Store
	s.Add(cmdEvent(1))
	if err := s.Flush(); err != nil {
		t.Errorf("Flush: %v", err)
	}
	evs, err := s.List(10, 0)
	if err != nil || evs == nil || len(evs) != 0 {
		t.Errorf("List: got %v, %v; want an empty slice", evs, err)
	}
	if st := s.Stats(); st != (Stats{}) {
		t.Errorf("Stats: got %+v", st)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Run(ctx); err != nil {
		t.Errorf("Run: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if s.Path() != "" {
		t.Errorf("Path: %q", s.Path())
	}
}
