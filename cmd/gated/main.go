// Command gated is the gate controller daemon: it runs the gate's state
// machine on GPIO pins (or a simulated gate) and serves it on MQTT and D-Bus.
//
// See gated(8) and SPEC.md for the contract.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// stdin is what -hash-password reads; tests replace it.
var stdin io.Reader = os.Stdin

// version is set at build time: -ldflags "-X main.version=1.2.3".
var version = "dev"

// Exit statuses of SPEC.md.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// usageError is a usage or configuration error: exit status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

type flags struct {
	config      string
	configSet   bool
	checkConfig bool
	simulate    bool
	demo        bool
	logLevel    string
	version     bool
	outputsOff  bool
	hashPass    bool
}

func parseFlags(args []string, stderr io.Writer) (flags, error) {
	var f flags
	fs := flag.NewFlagSet("gated", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.config, "config", "/etc/gated/gated.toml", "configuration `FILE`")
	fs.BoolVar(&f.checkConfig, "check-config", false, "check the configuration, print it (secrets masked) and exit")
	fs.BoolVar(&f.simulate, "simulate", false, "replace the GPIO pins with a simulated gate")
	fs.BoolVar(&f.demo, "demo", false, "-simulate with an embedded MQTT broker on 127.0.0.1 and the session bus if there is one")
	fs.StringVar(&f.logLevel, "log-level", "info", "log `LEVEL`: debug, info, warn or error")
	fs.BoolVar(&f.version, "version", false, "print the version and exit")
	fs.BoolVar(&f.outputsOff, "outputs-off", false, "switch every configured output to its inactive level and exit (gated.service's ExecStopPost=)")
	fs.BoolVar(&f.hashPass, "hash-password", false, "read a password on stdin, print its bcrypt hash for web.users_file and exit")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: gated [-config FILE] [-check-config] [-simulate] [-demo] [-hash-password] [-log-level LEVEL] [-outputs-off] [-version]\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return f, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	fs.Visit(func(fl *flag.Flag) { f.configSet = f.configSet || fl.Name == "config" })
	return f, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		return exitUsage
	}
	if f.version {
		fmt.Fprintf(stdout, "gated %s\n", version)
		return exitOK
	}
	if f.hashPass {
		if err := hashPassword(stdin, stdout); err != nil {
			fmt.Fprintf(stderr, "gated: -hash-password: %v\n", err)
			return exitUsage
		}
		return exitOK
	}
	level, err := parseLevel(f.logLevel)
	if err != nil {
		fmt.Fprintf(stderr, "gated: %v\n", err)
		return exitUsage
	}
	log := newLogger(stderr, level)

	if f.outputsOff {
		return outputsOff(f, log)
	}
	cfg, err := loadConfig(f)
	if err != nil {
		fmt.Fprintf(stderr, "gated: %v\n", err)
		return exitUsage
	}
	if f.checkConfig {
		fmt.Fprint(stdout, cfg.String())
		return exitOK
	}
	if err := serve(ctx, cfg, f, log); err != nil {
		log.Error("gated stopped", "err", err)
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(stderr, "gated: %v\n", err)
			return exitUsage
		}
		return exitFailure
	}
	return exitOK
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return l, fmt.Errorf("-log-level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

// newLogger logs text lines; under systemd (JOURNAL_STREAM set) without the
// time, which the journal adds itself.
func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	opt := &slog.HandlerOptions{Level: level}
	if os.Getenv("JOURNAL_STREAM") != "" {
		opt.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}
	}
	return slog.New(slog.NewTextHandler(w, opt))
}
