package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/godbus/dbus/v5"

	"rocksaying.tw/gated/internal/dbuslink/dbusapi"
	"rocksaying.tw/gated/internal/history"
)

// defaultEvents is how many events gatectl events prints without N.
const defaultEvents = 20

func parseLimit(s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("want a number of events from 1 to %d", history.MaxListLimit)
	}
	return uint32(min(n, history.MaxListLimit)), nil
}

// events prints the history: the JSON array as gated sends it, or one line
// an event, newest first.
func events(ctx context.Context, c *dbus.Conn, limit uint32, asJSON bool, w io.Writer) error {
	var doc string
	if err := object(c).CallWithContext(ctx, dbusapi.Iface+".GetEvents", 0, limit).Store(&doc); err != nil {
		return err
	}
	if asJSON {
		_, err := fmt.Fprintln(w, doc)
		return err
	}
	var evs []history.Event
	if err := json.Unmarshal([]byte(doc), &evs); err != nil {
		return fmt.Errorf("event history %.40q: %w", doc, err)
	}
	var b strings.Builder
	for _, e := range evs {
		b.WriteString(eventLine(e) + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// eventLine is an event for people: "2026-12-02 10:15:03 open by uid 1000
// (alice) (dbus): ok, opening".
func eventLine(e history.Event) string {
	at := e.At.Local().Format("2006-01-02 15:04:05")
	if e.Kind == history.KindCommand {
		who := e.Who
		if who == "" {
			who = "-"
		}
		out := "ok, " + e.State
		if !e.OK {
			out = "refused: " + e.Error
		}
		return fmt.Sprintf("%s %s by %s (%s): %s", at, e.Command, who, e.Source, out)
	}
	line := fmt.Sprintf("%s %s (%s)", at, e.State, e.Cause)
	if e.Fault != "" {
		line += " fault " + e.Fault
	}
	return line
}
