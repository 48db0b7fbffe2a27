package main

// What gated keeps across restarts (internal/state): this file owns the
// store. openState loads it before anything starts; keeper.restored is the
// document the last run left, for any part to read while it is built (the
// gate's counters and two-strike suspension here; learned travel times for
// the position estimate), and keeper.store.Update is how a part pushes a
// change: it copies in memory and never waits for the disk. keeper.start
// runs the writer and the gate's follower; its stop writes the last
// document.

import (
	"context"
	"log/slog"
	"os"
	"sync"

	"rocksaying.tw/gated/internal/gate"
	"rocksaying.tw/gated/internal/state"
)

type keeper struct {
	store    *state.Store
	restored state.Doc // as loaded; defaults when there was no usable file
	log      *slog.Logger
}

// openState loads the state file of dir. A missing or bad file means
// defaults and a WARN, never a refusal to start.
func openState(dir string, create bool, log *slog.Logger) *keeper {
	log = log.With("part", "state")
	if create {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			log.Warn("cannot create the state directory: counters will not be kept", "dir", dir, "err", err)
		}
	}
	k := &keeper{store: state.New(dir, state.Options{Log: log}), log: log}
	doc, found, warn := k.store.Load()
	switch {
	case warn != nil:
		log.Warn("state file not used: starting from defaults", "err", warn)
	case !found:
		log.Info("no state file yet: starting from defaults", "path", k.store.Path())
	default:
		log.Info("state restored", "path", k.store.Path(), "openings", doc.Openings, "obstructions", doc.Obstructions, "faults", doc.Faults, "auto_close_suspended", doc.Suspended)
	}
	k.restored = doc
	return k
}

// gateRestored is what the gate takes over from the last run.
func (k *keeper) gateRestored() gate.Restored {
	if k == nil {
		return gate.Restored{}
	}
	d := k.restored
	return gate.Restored{Counters: gate.Counters{Openings: d.Openings, Obstructions: d.Obstructions, Faults: d.Faults}, Suspended: d.Suspended}
}

// record puts what a status says into the document to keep.
func (k *keeper) record(st gate.Status) {
	k.store.Update(func(d *state.Doc) {
		d.Openings, d.Obstructions, d.Faults = st.Openings, st.Obstructions, st.Faults
		d.Suspended = st.TwoStrikes
		if st.State == gate.Faulted && st.Fault != gate.NoFault {
			d.LastFault, d.LastFaultAt = string(st.Fault), st.Since
		}
	})
}

// start runs the writer and a follower of the gate's statuses: the gate
// never waits for either (Subscribe drops what a slow reader misses; the
// latest status is taken again at stop). stop, called once the gate has
// stopped, records its last status and returns when the file is written.
func (k *keeper) start(g *gate.Gate) (stop func()) {
	sub, cancelSub := g.Subscribe()
	fctx, stopFollow := context.WithCancel(context.Background())
	wctx, stopWrite := context.WithCancel(context.Background())
	var follow, write sync.WaitGroup
	follow.Add(1)
	go func() {
		defer follow.Done()
		for {
			select {
			case st := <-sub:
				if st.Seq > 0 {
					k.record(st)
				}
			case <-fctx.Done():
				return
			}
		}
	}()
	write.Add(1)
	go func() {
		defer write.Done()
		k.store.Run(wctx)
	}()
	return func() {
		stopFollow()
		follow.Wait()
		cancelSub()
		if st := g.Status(); st.Seq > 0 {
			k.record(st)
		}
		stopWrite()
		write.Wait()
	}
}
