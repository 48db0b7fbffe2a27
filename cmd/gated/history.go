package main

// The event history: where it is kept, and the recorder that turns the
// gate's statuses and command records into events.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"

	"rocksaying.tw/gated/internal/config"
	"rocksaying.tw/gated/internal/gate"
	"rocksaying.tw/gated/internal/history"
	"rocksaying.tw/gated/internal/state"
)

// stateDir is where gated keeps what it remembers: $STATE_DIRECTORY, else
// /var/lib/gated; under -demo without $STATE_DIRECTORY, a directory the
// user can write ($XDG_STATE_HOME/gated, ~/.local/state/gated, or one in
// the temporary directory), so that the demo runs as a normal user.
func stateDir(demo bool) string {
	if !demo || os.Getenv("STATE_DIRECTORY") != "" {
		return state.Dir()
	}
	if d := os.Getenv("XDG_STATE_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "gated")
	}
	if home, err := os.UserHomeDir(); err == nil && filepath.IsAbs(home) {
		return filepath.Join(home, ".local", "state", "gated")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("gated-%d", os.Getuid()))
}

// openHistory opens the store in dir. A store that cannot be opened is a
// WARN and no history, never a refused start: the gate matters more.
func openHistory(cfg config.Config, dir string, log *slog.Logger) *history.Store {
	s, err := history.Open(dir, history.Options{Keep: cfg.Hist.Keep, MaxEvents: cfg.Hist.MaxEvents, Log: log.With("part", "history")})
	if errors.Is(err, history.ErrCorrupt) {
		// Open moved the damaged file aside; a second Open starts afresh.
		log.Warn("event history was damaged: kept aside, starting a new one", "err", err)
		s, err = history.Open(dir, history.Options{Keep: cfg.Hist.Keep, MaxEvents: cfg.Hist.MaxEvents, Log: log.With("part", "history")})
	}
	if err != nil {
		log.Warn("event history unavailable: running without it", "dir", dir, "err", err)
		return nil
	}
	log.Info("event history", "file", s.Path(), "events", s.Stats().Events)
	return s
}

// historyRef is the store once run has opened it, for the parts built
// before (the web link); nil until then, and when it did not open.
type historyRef struct{ p atomic.Pointer[history.Store] }

func (h *historyRef) List(limit int, before uint64) ([]history.Event, error) {
	return h.p.Load().List(limit, before) // a nil store lists nothing
}

// record adds every status change and every command of g to s until ctx
// ends. It reads what the gate hands its subscribers, so it never holds up
// the gate; a recorder that falls far behind loses the oldest records, not
// the gate's time.
func record(ctx context.Context, g *gate.Gate, s *history.Store) {
	sts, cancel := g.Subscribe()
	defer cancel()
	cmds, cancelCmds := g.SubscribeCommands()
	defer cancelCmds()
	var last gate.Status
	for {
		select {
		case <-ctx.Done():
			return
		case st := <-sts:
			if st.Seq == 0 || st.Seq == last.Seq || !worthRecording(st, last) {
				continue // not yet started, seen, or only the position moved on
			}
			last = st
			s.Add(statusEvent(st))
		case r := <-cmds:
			s.Add(commandEvent(r))
		}
	}
}

func statusEvent(st gate.Status) history.Event {
	e := history.Event{Kind: history.KindStatus, State: string(st.State), Cause: string(st.Cause), Fault: string(st.Fault)}
	if st.PositionKnown {
		p := st.Position
		e.Position = &p
	}
	return e
}

// worthRecording reports whether st says more than last did: a change of
// state, cause, fault, alarm, obstruction, warning or auto_close. A moving
// gate publishes its position every second; those statuses would bury who
// did what, and the position where it stopped comes with the state it
// stopped in.
func worthRecording(st, last gate.Status) bool {
	return last.Seq == 0 || st.State != last.State || st.Cause != last.Cause || st.Fault != last.Fault ||
		st.Alarm != last.Alarm || st.Obstructed != last.Obstructed || st.Warning != last.Warning || st.AutoClose != last.AutoClose
}

func commandEvent(r gate.Reply) history.Event {
	e := history.Event{Kind: history.KindCommand, Command: string(r.Cmd), Source: string(r.Cause), Who: r.Who, OK: r.Err == nil, State: string(r.Status.State)}
	if r.Cmd == gate.CmdPosition {
		t := r.Target
		e.Position = &t // where it was sent
	}
	if r.Err != nil {
		e.Error = "refused"
		var re *gate.RefusedError
		if errors.As(r.Err, &re) {
			e.Error = string(re.Reason)
		}
	}
	return e
}
