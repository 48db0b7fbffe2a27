// list_test.go holds the tests of List.

package history

import (
	"testing"
)

func TestListLimitCapped(t *testing.T) {
	s := openStore(t, t.TempDir(), Options{})
	for i := 0; i < MaxListLimit+200; i++ {
		s.Add(cmdEvent(i))
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ limit, want int }{{0, DefaultListLimit}, {MaxListLimit + 1, MaxListLimit}, {5000, MaxListLimit}, {7, 7}} {
		evs, err := s.List(tt.limit, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != tt.want {
			t.Errorf("List(%d): got %d events, want %d", tt.limit, len(evs), tt.want)
		}
	}
}
