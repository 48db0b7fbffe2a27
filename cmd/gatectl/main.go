// Command gatectl commands the gate controller gated over D-Bus and shows
// its status.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/godbus/dbus/v5"

	"rocksaying.tw/gated/internal/dbuslink/dbusapi"
	"rocksaying.tw/gated/internal/gate"
)

// version is set at build time: -ldflags "-X main.version=1.2.3".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const synopsis = `usage: gatectl [--system | --session | --address ADDR] [--json] [--text] COMMAND

Command the gate controller gated over D-Bus (bus name tw.rocksaying.Gate).

Commands:
  status    print the gate's status (the status document with --json)
  open      open the gate
  close     close the gate
  stop      stop the gate where it is
  alarm     sound the siren
  silence   switch the siren off and clear the alarm
  position N
            go to position N, 0 (closed) to 100 (open); 0 and 100 are close
            and open
  watch     print each status document as it arrives, one per line, until
            interrupted (one human line per status with --text)
  events [N]
            print the last N events of the history (default 20), newest
            first: who did what, and each change of state (the JSON array
            with --json)

A command returns once gated has accepted it, not when the motion ends.
On the system bus, open, close, stop, alarm, silence, position and events
are allowed to root and to members of group gate; everyone may use status
and watch. status shows the position (unknown until the gate has reached a
limit, and between the limits until it has run end to end each way) and the
travel times it is estimated from.

Options (one dash or two):
  --system        use the system bus (the default)
  --session       use the session bus, as gated -demo does
  --address ADDR  use the bus at D-Bus address ADDR,
                  e.g. unix:path=/run/dbus/system_bus_socket
  --json          status: print the status document instead of a summary;
                  events: print the JSON array
  --text          watch: print one human line per status instead of JSON
  --version       print the version and exit
  -h, --help      print this help and exit

Exit status: 0 on success; 1 if gated refused the command (the reason is
printed), the bus denied it, or gated or the bus could not be reached;
2 on a usage error.
`

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // refused, denied, no gated, no bus
	exitUsage   = 2
)

// callTimeout bounds every call; gated answers a command within 5 s.
const callTimeout = 10 * time.Second

type options struct {
	system, session bool
	address         string
	json            bool
	text            bool
	version         bool
}

// run is gatectl: it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var o options
	fs := flag.NewFlagSet("gatectl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.BoolVar(&o.system, "system", false, "use the system bus (the default)")
	fs.BoolVar(&o.session, "session", false, "use the session bus, as gated -demo does")
	fs.StringVar(&o.address, "address", "", "use the bus at D-Bus address `ADDR`, e.g. unix:path=/run/dbus/system_bus_socket")
	fs.BoolVar(&o.json, "json", false, "status: print the status document instead of a summary")
	fs.BoolVar(&o.text, "text", false, "watch: print one human line per status instead of JSON")
	fs.BoolVar(&o.version, "version", false, "print the version and exit")
	fs.Usage = func() {} // printed below: -h to stdout, a short line on errors
	const short = "usage: gatectl [--system | --session | --address ADDR] [--json] [--text] status|open|close|stop|alarm|silence|watch|position N|events [N]"
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "gatectl: "+format+"\n", a...)
		fmt.Fprintln(stderr, short)
		return exitUsage
	}
	// Options may come before or after the command: gatectl status --json.
	parse := func(args []string) ([]string, int) {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprint(stdout, synopsis)
				return nil, exitOK
			}
			fmt.Fprintln(stderr, short) // flag has printed the error
			return nil, exitUsage
		}
		return fs.Args(), -1
	}
	rest, code := parse(args)
	if code >= 0 {
		return code
	}
	if o.version {
		fmt.Fprintf(stdout, "gatectl %s\n", version)
		return exitOK
	}
	if len(rest) == 0 {
		return usage("no command")
	}
	cmd := rest[0]
	if rest, code = parse(rest[1:]); code >= 0 {
		return code
	}
	target := -1
	if cmd == "position" {
		if len(rest) == 0 {
			return usage("position needs a number, 0 (closed) to 100 (open)")
		}
		n, err := strconv.ParseUint(rest[0], 10, 32)
		if err != nil || n > 100 {
			return usage("position %q: want a number 0 (closed) to 100 (open)", rest[0])
		}
		target = int(n)
		if rest, code = parse(rest[1:]); code >= 0 {
			return code
		}
	}
	limit := uint32(defaultEvents) // events [N]
	if cmd == "events" && len(rest) > 0 {
		var err error
		if limit, err = parseLimit(rest[0]); err != nil {
			return usage("events %q: %v", rest[0], err)
		}
		if rest, code = parse(rest[1:]); code >= 0 {
			return code
		}
	}
	if len(rest) > 0 {
		return usage("unexpected argument %q after %s", rest[0], cmd)
	}
	n := 0
	for _, b := range []bool{o.system, o.session, o.address != ""} {
		if b {
			n++
		}
	}
	if n > 1 {
		return usage("--system, --session and --address exclude each other")
	}
	bus := "system"
	switch {
	case o.session:
		bus = "session"
	case o.address != "":
		bus = o.address
	}
	var do func(context.Context, *dbus.Conn) error
	switch cmd {
	case "status":
		f := forPeople(summary)
		if o.json {
			f = asJSON
		}
		do = func(ctx context.Context, c *dbus.Conn) error { return status(ctx, c, f, stdout) }
	case "watch":
		f := format(asJSON)
		if o.text {
			f = forPeople(line)
		}
		do = func(ctx context.Context, c *dbus.Conn) error { return watch(ctx, c, f, stdout, stderr) }
	case "position":
		do = func(ctx context.Context, c *dbus.Conn) error { return setPosition(ctx, c, uint32(target)) }
	case "events":
		do = func(ctx context.Context, c *dbus.Conn) error { return events(ctx, c, limit, o.json, stdout) }
	default:
		gc, err := gate.ParseCommand(cmd)
		if err != nil {
			return usage("unknown command %q", cmd)
		}
		method := strings.ToUpper(string(gc[:1])) + string(gc[1:])
		do = func(ctx context.Context, c *dbus.Conn) error { return command(ctx, c, method) }
	}

	conn, err := dbusapi.Connect(ctx, bus)
	if err != nil {
		fmt.Fprintf(stderr, "gatectl: connect to %s bus: %v\n", label(bus), err)
		return exitFailure
	}
	defer conn.Close()
	if err := do(ctx, conn); err != nil {
		fmt.Fprintf(stderr, "gatectl: %s: %s\n", cmd, describe(err))
		return exitFailure
	}
	return exitOK
}

func label(bus string) string {
	if bus == "system" || bus == "session" {
		return bus
	}
	return "the"
}

// describe says what went wrong: a refusal by gated is its own sentence;
// any other D-Bus error keeps its name, which people search for.
func describe(err error) string {
	var de dbus.Error
	if !errors.As(err, &de) {
		return err.Error()
	}
	msg := de.Error()
	switch {
	case strings.HasPrefix(de.Name, dbusapi.ErrorPrefix):
		return fmt.Sprintf("refused: %s (%s)", msg, de.Name)
	case de.Name == "org.freedesktop.DBus.Error.AccessDenied":
		return fmt.Sprintf("access denied (%s): %s; on the system bus only root and members of group gate may command the gate", de.Name, msg)
	case de.Name == "org.freedesktop.DBus.Error.ServiceUnknown" || de.Name == "org.freedesktop.DBus.Error.NameHasNoOwner":
		return fmt.Sprintf("gated is not on this bus (%s): %s", de.Name, msg)
	}
	return fmt.Sprintf("%s: %s", de.Name, msg)
}

func object(c *dbus.Conn) dbus.BusObject { return c.Object(dbusapi.Name, dbusapi.Path) }

func command(ctx context.Context, c *dbus.Conn, method string) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	return object(c).CallWithContext(ctx, dbusapi.Iface+"."+method, 0).Err
}

func setPosition(ctx context.Context, c *dbus.Conn, target uint32) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	return object(c).CallWithContext(ctx, dbusapi.SetPosition, 0, target).Err
}

func getStatus(ctx context.Context, c *dbus.Conn) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	var s string
	err := object(c).CallWithContext(ctx, dbusapi.Iface+".GetStatus", 0).Store(&s)
	return s, err
}

// A format turns a status document into what gatectl prints of it.
type format func(doc string) (string, error)

// asJSON prints the document as it is, a line.
func asJSON(doc string) (string, error) { return doc + "\n", nil }

// forPeople prints the document as f writes the status for people
// (summary, line).
func forPeople(f func(gate.Status) string) format {
	return func(doc string) (string, error) {
		var st gate.Status
		if err := st.UnmarshalJSON([]byte(doc)); err != nil {
			return "", fmt.Errorf("status document %q: %w", doc, err)
		}
		return f(st), nil
	}
}

func printStatus(w io.Writer, f format, doc string) error {
	s, err := f(doc)
	if err != nil {
		return err
	}
	_, err = io.WriteString(w, s)
	return err
}

func status(ctx context.Context, c *dbus.Conn, f format, w io.Writer) error {
	doc, err := getStatus(ctx, c)
	if err != nil {
		return err
	}
	return printStatus(w, f, doc)
}

// summary is the status for people, one field a line.
func summary(st gate.Status) string {
	var b strings.Builder
	moving := ""
	if st.Moving {
		moving = " (moving)"
	}
	fault := string(st.Fault)
	if fault == "" {
		fault = "none"
	}
	fmt.Fprintf(&b, "gate:       %s\n", st.Gate)
	fmt.Fprintf(&b, "state:      %s%s\n", st.State, moving)
	fmt.Fprintf(&b, "alarm:      %s\n", onOff(st.Alarm))
	fmt.Fprintf(&b, "obstructed: %s\n", yesNo(st.Obstructed))
	fmt.Fprintf(&b, "fault:      %s\n", fault)
	fmt.Fprintf(&b, "cause:      %s\n", st.Cause)
	fmt.Fprintf(&b, "since:      %s\n", st.Since.UTC().Format(gate.TimeFormat))
	pos := "unknown"
	if st.PositionKnown {
		pos = fmt.Sprintf("%d %%", st.Position)
	}
	fmt.Fprintf(&b, "position:   %s\n", pos)
	travel := func(d time.Duration) string {
		if d <= 0 {
			return "not known yet: learned from the first full run"
		}
		return d.String()
	}
	fmt.Fprintf(&b, "open time:  %s\n", travel(st.OpenTime))
	fmt.Fprintf(&b, "close time: %s\n", travel(st.CloseTime))
	if st.AutoClose != "" { // a gated that has the field
		fmt.Fprintf(&b, "warning:    %s\n", onOff(st.Warning))
		fmt.Fprintf(&b, "auto_close: %s\n", st.AutoClose)
		fmt.Fprintf(&b, "counters:   %d openings, %d obstructions, %d faults\n", st.Openings, st.Obstructions, st.Faults)
	}
	return b.String()
}

// line is the status for people on one line, for watch.
func line(st gate.Status) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: %s", st.Since.UTC().Format(gate.TimeFormat), st.Gate, st.State)
	if st.Moving {
		b.WriteString(", moving")
	}
	if st.Alarm {
		b.WriteString(", alarm")
	}
	if st.Warning {
		b.WriteString(", warning")
	}
	if st.AutoClose == gate.AutoCloseSuspended {
		b.WriteString(", auto_close suspended")
	}
	if st.Obstructed {
		b.WriteString(", obstructed")
	}
	if st.Fault != "" {
		fmt.Fprintf(&b, ", fault %s", st.Fault)
	}
	fmt.Fprintf(&b, " (cause %s, seq %d)\n", st.Cause, st.Seq)
	return b.String()
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// watch prints the current status and then each StatusChanged until ctx
// ends (then it returns nil) or the bus connection is lost. It keeps
// watching while gated is away: the match follows the name to its next
// owner.
func watch(ctx context.Context, c *dbus.Conn, f format, w, stderr io.Writer) error {
	sigs := make(chan *dbus.Signal, 64)
	c.Signal(sigs)
	mctx, cancel := context.WithTimeout(ctx, callTimeout)
	err := c.AddMatchSignalContext(mctx,
		dbus.WithMatchSender(dbusapi.Name),
		dbus.WithMatchObjectPath(dbusapi.Path),
		dbus.WithMatchInterface(dbusapi.Iface),
		dbus.WithMatchMember("StatusChanged"))
	cancel()
	if err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	last := ""
	show := func(doc string) error {
		if doc == last {
			return nil // the status GetStatus returned may come again as a signal
		}
		last = doc
		return printStatus(w, f, doc)
	}
	// The match is in place first, so no status falls between the two.
	if doc, err := getStatus(ctx, c); err == nil {
		if err := show(doc); err != nil {
			return err
		}
	} else if ctx.Err() == nil {
		var de dbus.Error
		if !errors.As(err, &de) {
			return err
		}
		// gated is not there (yet): wait for it.
		fmt.Fprintf(stderr, "gatectl: watch: %s; waiting\n", describe(err))
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case s, ok := <-sigs:
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return errors.New("the bus connection was closed")
			}
			if s.Name != dbusapi.Signal || len(s.Body) != 1 {
				continue
			}
			doc, ok := s.Body[0].(string)
			if !ok {
				continue
			}
			if err := show(doc); err != nil {
				return err
			}
		}
	}
}
