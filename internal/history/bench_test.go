package history

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkAdd is the caller's cost of Add: what a command or a status
// change pays for being recorded. steady: the writer keeps up (the timer
// stops while the queue is flushed every 1000 events); overload: the writer
// runs and the producer outpaces the disk, so Add drops the oldest.
func BenchmarkAdd(b *testing.B) {
	e := cmdEvent(1)
	b.Run("steady", func(b *testing.B) {
		s := openStore(b, b.TempDir(), Options{})
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			s.Add(e)
			if i++; i%1000 == 0 {
				b.StopTimer()
				if err := s.Flush(); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		}
		if st := s.Stats(); st.Dropped != 0 {
			b.Fatalf("dropped %d", st.Dropped)
		}
	})
	b.Run("overload", func(b *testing.B) {
		s := openStore(b, b.TempDir(), Options{})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = s.Run(ctx) }()
		b.ReportAllocs()
		for b.Loop() {
			s.Add(e)
		}
		b.StopTimer()
		cancel()
		<-done
		st := s.Stats()
		b.ReportMetric(float64(st.Dropped)/float64(st.Added), "dropped/add")
	})
}

// BenchmarkFlood adds 10 000 events as fast as it can and waits until they
// are stored: the store's cost of a flood of commands, in transactions and
// fdatasyncs (two per bbolt commit).
func BenchmarkFlood(b *testing.B) {
	const n = 10000
	s := openStore(b, b.TempDir(), Options{QueueSize: 2 * n})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Run(ctx) }()
	e := cmdEvent(1)
	var floods int
	for b.Loop() {
		for i := 0; i < n; i++ {
			s.Add(e)
		}
		if err := s.Flush(); err != nil {
			b.Fatal(err)
		}
		floods++
	}
	b.StopTimer()
	cancel()
	<-done
	st := s.Stats()
	if st.Dropped != 0 || st.Written != uint64(floods*n) {
		b.Fatalf("got %+v, want every event written", st)
	}
	b.ReportMetric(float64(st.Commits)/float64(floods), "tx/flood")
	b.ReportMetric(2*float64(st.Commits)/float64(floods), "fdatasync/flood")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(floods*n), "ns/event")
}

// BenchmarkOpenFull is Open's cost on a full store (DefaultMaxEvents): the
// walk that counts the events and finds damage at start.
func BenchmarkOpenFull(b *testing.B) {
	dir := b.TempDir()
	s, err := Open(dir, Options{Log: quiet})
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < DefaultMaxEvents; i++ {
		s.Add(cmdEvent(i))
		if i%DefaultBatchSize == 0 {
			if err := s.Flush(); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, FileName))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		s, err := Open(dir, Options{Log: quiet})
		if err != nil {
			b.Fatal(err)
		}
		if n := s.Stats().Events; n != DefaultMaxEvents {
			b.Fatalf("%d events", n)
		}
		_ = s.Close()
	}
	b.ReportMetric(float64(fi.Size())/(1<<20), "file-MiB")
}
