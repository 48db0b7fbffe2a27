package mqttlink

// The publisher: the one goroutine that publishes, in the order that keeps
// a result behind the status it reports.

import (
	"context"
	"encoding/json"
	"time"
)

// publisher is the only goroutine that publishes: status, state,
// availability, discovery and results. It does not wait for each PUBACK:
// paho writes publications in the order they are handed to it, and an
// acker watches the PUBACKs. That order gives two guarantees:
//   - after any reconnection, the latest status is the one retained: a
//     failed or unanswered status has the latest published again;
//   - a result goes out after the status it reports, so a client that gets
//     "ok, opening" and then reads the status topic never sees the state from
//     before the command. The gate hands a status to its subscribers before
//     it answers the command, so that status is waiting in sub when the
//     result arrives.
//
// During an outage it keeps only the latest status, and drops results: a
// result for a client that is gone is worth nothing.
func (l *Link) publisher(ctx context.Context) {
	sub, cancel := l.g.Subscribe()
	defer cancel()
	failed := make(chan error, 1)
	acks := startAcker(ctx, ackWindow, func(p sent, err error) {
		if p.kind == resultPub {
			l.dropLog.log(l.log, "publishing result failed", "err", err)
			return
		}
		select {
		case failed <- err:
		default: // one republication pending is enough
		}
	})
	defer acks.stop()
	var (
		latest  = l.g.Status()
		dirty   = true
		retry   <-chan time.Time
		pending bool // a connection waits for its set-up
		posSent string
		posOK   bool // posSent is what <prefix>/position retains
		haUp    bool // Home Assistant said online: discovery again
		legacy  []string
	)
	for {
		var res *result
		select {
		case <-ctx.Done():
			return
		case st := <-sub:
			latest, dirty = st, true
		case r := <-l.results:
			res = &r
		case <-l.connEv:
			pending, posOK = true, false
		case <-l.haOnline:
			haUp, dirty, posOK = true, true, false
		case t := <-l.legacy:
			legacy = append(legacy, t)
		case <-retry:
			retry = nil
		case err := <-failed:
			l.setupLog.log(l.log, "publishing status failed, retrying", "err", err)
			dirty, posOK, retry = true, false, time.After(2*time.Second)
			continue
		}
		// Catch up with the gate: the status a result reports is here.
		for caught := false; !caught; {
			select {
			case st := <-sub:
				latest, dirty = st, true
			default:
				caught = true
			}
		}
		if !l.client.IsConnectionOpen() {
			if res != nil {
				l.log.Debug("result dropped: not connected", "id", echo(res.ID))
			}
			continue // onConnect brings us back
		}
		if pending {
			if err := l.setUp(); err != nil {
				l.setupLog.log(l.log, "setting up the session failed, retrying", "err", err)
				retry = time.After(2 * time.Second)
				continue
			}
			pending, dirty = false, true
		}
		if haUp {
			if err := l.publishDiscovery(); err != nil {
				l.setupLog.log(l.log, "home assistant: publishing discovery failed, retrying", "err", err)
				retry = time.After(2 * time.Second)
				continue
			}
			haUp = false
			l.log.Info("home assistant online: discovery and state published again")
		}
		for len(legacy) > 0 {
			if err := l.migrate(legacy[0]); err != nil {
				l.setupLog.log(l.log, "home assistant: migration failed, retrying", "err", err)
				retry = time.After(2 * time.Second)
				break
			}
			legacy = legacy[1:]
		}
		if dirty {
			if !acks.add(ctx, l.client.Publish(l.t.status, 1, true, latest.JSON()), statusPub) ||
				!acks.add(ctx, l.client.Publish(l.t.state, 1, true, string(latest.State)), statusPub) {
				return
			}
			if p := positionPayload(latest); !posOK || p != posSent {
				if !acks.add(ctx, l.client.Publish(l.t.position, 1, true, p), statusPub) {
					return
				}
				posSent, posOK = p, true
			}
			dirty = false
		}
		if res != nil {
			b, _ := json.Marshal(res)
			if !acks.add(ctx, l.client.Publish(l.t.result, 1, false, b), resultPub) {
				return
			}
		}
	}
}
