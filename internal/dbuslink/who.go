package dbuslink

import (
	"fmt"
	"os/user"
	"strconv"
	"time"

	"github.com/godbus/dbus/v5"
)

// whoWait bounds the wait for the bus to say who called. The bus answers
// in well under a millisecond; a command never waits longer than this for
// its caller's name, and is then recorded without it.
const whoWait = 250 * time.Millisecond

// callerOf turns the bus's answer to GetConnectionUnixUser into the
// caller the history records: "uid 1000 (alice)", "uid 1000" when the uid
// has no user name, "" when the bus did not say.
func callerOf(uidCall *dbus.Call) string {
	t := time.NewTimer(whoWait)
	defer t.Stop()
	select {
	case c := <-uidCall.Done:
		var uid uint32
		if c.Store(&uid) != nil {
			return ""
		}
		return caller(uid, user.LookupId)
	case <-t.C:
		return ""
	}
}

func caller(uid uint32, lookup func(string) (*user.User, error)) string {
	id := strconv.FormatUint(uint64(uid), 10)
	if u, err := lookup(id); err == nil && u.Username != "" {
		return fmt.Sprintf("uid %s (%s)", id, u.Username)
	}
	return "uid " + id
}
