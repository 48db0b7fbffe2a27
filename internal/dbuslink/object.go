package dbuslink

// The object on the bus: the methods godbus exports, each a command handed
// to the gate, the audit line it leaves, and the D-Bus error of a refusal.

import (
	"context"
	"errors"

	"github.com/godbus/dbus/v5"

	"rocksaying.tw/gated/internal/dbuslink/dbusapi"
	"rocksaying.tw/gated/internal/gate"
)

// object is what godbus exports on dbusapi.Path as Iface: every exported method
// whose last result is *dbus.Error becomes a D-Bus method.
type object struct {
	s    *Service
	conn *dbus.Conn
}

// Open asks the gate to open.
func (o *object) Open(sender dbus.Sender) *dbus.Error { return o.do(gate.CmdOpen, sender) }

// Close asks the gate to close.
func (o *object) Close(sender dbus.Sender) *dbus.Error { return o.do(gate.CmdClose, sender) }

// Stop asks the gate to stop.
func (o *object) Stop(sender dbus.Sender) *dbus.Error { return o.do(gate.CmdStop, sender) }

// Alarm sounds the siren.
func (o *object) Alarm(sender dbus.Sender) *dbus.Error { return o.do(gate.CmdAlarm, sender) }

// Silence stops the siren.
func (o *object) Silence(sender dbus.Sender) *dbus.Error { return o.do(gate.CmdSilence, sender) }

// GetStatus returns the status document.
func (o *object) GetStatus() (string, *dbus.Error) {
	return string(o.s.g.Status().JSON()), nil
}

// SetPosition asks the gate to go to a position, 0 (closed) to 100 (open).
func (o *object) SetPosition(target uint32, sender dbus.Sender) *dbus.Error {
	// On a 32-bit int a huge uint32 would turn negative: anything over 100
	// is out of range alike.
	t := int(min(target, 1000))
	return o.run(gate.Request{Cmd: gate.CmdPosition, Target: t}, sender)
}

// positionProp is the Position property: the position, or -1 while it is
// unknown.
func positionProp(st gate.Status) int32 {
	if !st.PositionKnown {
		return dbusapi.PositionUnknown
	}
	return int32(st.Position)
}

func (o *object) do(cmd gate.Command, sender dbus.Sender) *dbus.Error {
	return o.run(gate.Request{Cmd: cmd}, sender)
}

func (o *object) run(req gate.Request, sender dbus.Sender) *dbus.Error {
	// Ask the bus who the caller is before replying: once it has the reply
	// the caller may be gone, and the bus forgets it.
	uid := o.conn.BusObject().GoWithContext(o.s.life, "org.freedesktop.DBus.GetConnectionUnixUser", 0, make(chan *dbus.Call, 1), string(sender))
	who := callerOf(uid) // who.go
	ctx, cancel := context.WithTimeout(o.s.life, commandTimeout)
	defer cancel()
	req.Cause, req.Who = gate.CauseDBus, who
	st, err := o.s.g.Send(ctx, req)
	go o.audit(req.Cmd, string(sender), who, err)
	// Reply after the PropertiesChanged and StatusChanged of the status the
	// command made: the bus delivers one sender's messages in order, so a
	// caller that reads State on the reply sees that status or a newer one.
	// Bounded: a bus that stopped reading must not hold the reply for long.
	sctx, scancel := context.WithTimeout(o.s.life, shownWait)
	o.s.shown.wait(sctx, st.Seq)
	scancel()
	if err != nil {
		return Error(err)
	}
	return nil
}

// audit logs who asked for what: the caller's uid and user name.
func (o *object) audit(cmd gate.Command, sender, who string, cmdErr error) {
	attrs := []any{"command", cmd, "sender", sender}
	if who != "" {
		attrs = append(attrs, "caller", who)
	}
	if cmdErr != nil {
		o.s.log.Info("command refused", append(attrs, "err", cmdErr)...)
		return
	}
	o.s.log.Info("command", attrs...)
}

// Error turns an error of the gate into the D-Bus error sent to the caller:
// a *gate.RefusedError becomes the reason's dbusapi.ErrorName
// ("obstructed" → tw.rocksaying.Gate.Error.Obstructed) with the refusal's
// sentence as its message; anything else is org.freedesktop.DBus.Error.Failed.
func Error(err error) *dbus.Error {
	var re *gate.RefusedError
	if errors.As(err, &re) {
		return dbus.NewError(dbusapi.ErrorName(string(re.Reason)), []any{re.Msg})
	}
	return dbus.MakeFailedError(err)
}
