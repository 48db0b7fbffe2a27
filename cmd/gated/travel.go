package main

// Learned travel times across restarts (SPEC.md "Position"): the gate's
// full runs go to the state file, and come back from it at start-up.

import (
	"log/slog"
	"slices"

	"rocksaying.tw/gated/internal/gate"
	"rocksaying.tw/gated/internal/position"
	"rocksaying.tw/gated/internal/state"
)

// restoreTravel gives the gate the full runs kept in doc. Runs the
// estimator refuses (too many, or outside (0, 1h]) mean a damaged file: a
// WARN, and the gate learns again.
func restoreTravel(gc *gate.Config, doc state.Doc, log *slog.Logger) {
	s := position.Samples{Open: doc.OpenRuns, Close: doc.CloseRuns}
	var e position.Estimator
	if err := e.SetSamples(s); err != nil {
		log.Warn("state file: learned travel times ignored, learning them again", "err", err)
		return
	}
	gc.Samples = s
	if len(s.Open)+len(s.Close) > 0 {
		open, closeT := e.TravelTimes()
		log.Info("learned travel times restored", "open_time", open, "close_time", closeT, "open_runs", len(s.Open), "close_runs", len(s.Close))
	}
}

// saveTravel is the gate's Options.OnLearned: it runs on the gate's owner
// goroutine, so it only hands the runs to the store, which never waits for
// the disk.
func saveTravel(st *state.Store) func(position.Samples) {
	return func(s position.Samples) {
		st.Update(func(d *state.Doc) {
			d.OpenRuns, d.CloseRuns = slices.Clone(s.Open), slices.Clone(s.Close)
		})
	}
}
