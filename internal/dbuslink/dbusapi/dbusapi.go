// Package dbusapi is gated's face on D-Bus as SPEC.md "D-Bus" names it: the
// bus name, object path, interface, signal and error names that the server
// (dbuslink) and its clients (gatectl, gatebench, tests) share, and Connect,
// which both use to reach a bus. A client imports this package, not the
// server.
package dbusapi

import (
	"context"
	"errors"
	"strings"
	"unicode"

	"github.com/godbus/dbus/v5"
)

// The names of SPEC.md.
const (
	Name   = "tw.rocksaying.Gate"
	Path   = dbus.ObjectPath("/tw/rocksaying/Gate")
	Iface  = "tw.rocksaying.Gate"
	Signal = Iface + ".StatusChanged"
	// ErrorPrefix starts the name of every refusal: ErrorPrefix + "Obstructed".
	ErrorPrefix = Iface + ".Error."
	// SetPosition is the method that goes to a position (u, 0..100), and
	// Position the property (i) that says where the gate is.
	SetPosition = Iface + ".SetPosition"
	Position    = Iface + ".Position"
)

// PositionUnknown is the Position property while the position is unknown.
const PositionUnknown int32 = -1

// ErrorName is the D-Bus error name of a refusal's reason: ErrorPrefix and
// the reason in CamelCase ("obstructed" → tw.rocksaying.Gate.Error.Obstructed,
// "too_large" → …Error.TooLarge).
func ErrorName(reason string) string { return ErrorPrefix + camel(reason) }

// camel makes an error-name element of a reason: letters and digits kept,
// each word capitalised, anything else a word break.
func camel(reason string) string {
	var b strings.Builder
	up := true
	for _, r := range reason {
		if r > unicode.MaxASCII || !(unicode.IsLetter(r) || unicode.IsDigit(r)) {
			up = true
			continue
		}
		if b.Len() == 0 && unicode.IsDigit(r) {
			b.WriteByte('E') // an element may not start with a digit
		}
		if up {
			r = unicode.ToUpper(r)
		}
		b.WriteRune(r)
		up = false
	}
	if b.Len() == 0 {
		return "Failed"
	}
	return b.String()
}

// Connect opens a private connection to bus ("system" or "", "session", or
// an address), authenticated and registered with Hello. It never launches a
// session bus. The connection closes when ctx ends.
func Connect(ctx context.Context, bus string) (*dbus.Conn, error) {
	opts := []dbus.ConnOption{dbus.WithContext(ctx)}
	switch bus {
	case "", "system":
		return dbus.ConnectSystemBus(opts...)
	case "session":
		conn, err := dbus.SessionBusPrivateNoAutoStartup(opts...)
		if err != nil {
			return nil, err
		}
		if err := conn.Auth(nil); err != nil {
			conn.Close()
			return nil, err
		}
		if err := conn.Hello(); err != nil {
			conn.Close()
			return nil, err
		}
		return conn, nil
	case "none":
		return nil, errors.New(`bus "none"`)
	}
	return dbus.Connect(bus, opts...)
}
