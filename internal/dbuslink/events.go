package dbuslink

import (
	"encoding/json"

	"github.com/godbus/dbus/v5"

	"rocksaying.tw/gated/internal/history"
)

// History is what GetEvents reads (*history.Store).
type History interface {
	List(limit int, before uint64) ([]history.Event, error)
}

// GetEvents returns the event history, newest first, as a JSON array:
// limit events at most (0: history.DefaultListLimit; at most
// history.MaxListLimit). The bus policy lets only root and group gate call
// it: the history says who opened the gate.
func (o *object) GetEvents(limit uint32) (string, *dbus.Error) {
	evs := []history.Event{}
	if h := o.s.opt.History; h != nil {
		got, err := h.List(int(min(limit, history.MaxListLimit)), 0)
		if err != nil {
			return "", dbus.MakeFailedError(err)
		}
		if got != nil {
			evs = got
		}
	}
	b, err := json.Marshal(evs)
	if err != nil {
		return "", dbus.MakeFailedError(err)
	}
	return string(b), nil
}
