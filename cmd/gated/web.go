package main

// The web panel and HTTP API: the link built from [web], -demo's login,
// and -hash-password.

import (
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/jonboulle/clockwork"

	"rocksaying.tw/gated/internal/config"
	"rocksaying.tw/gated/internal/webauth"
	"rocksaying.tw/gated/internal/weblink"
)

// demoWebAddr is where -demo serves the panel when the file says nothing.
const demoWebAddr = "127.0.0.1:8080"

// demoUser is -demo's operator; its password is made up at each start.
const demoUser = "demo"

// demoWeb turns the panel on for -demo (unless the file configures it) with
// one operator whose random password is printed once on w, so that the
// person who typed gated -demo can log in, and nobody else.
func demoWeb(cfg *config.Config, w io.Writer) error {
	if cfg.Web.Listen != "" {
		return nil
	}
	pw := rand.Text()[:16]
	hash, err := webauth.HashPassword([]byte(pw))
	if err != nil {
		return err
	}
	users, err := webauth.ParseUsers(strings.NewReader(demoUser+":"+hash+"\n"), "(demo users)")
	if err != nil {
		return err
	}
	cfg.Web = config.Web{Listen: demoWebAddr, Users: users, Operators: []string{demoUser}}
	fmt.Fprintf(w, "gated demo: web panel on http://%s/ — user %q, password %q (made up for this run)\n", demoWebAddr, demoUser, pw)
	return nil
}

// buildWeb makes the web link of [web], or nil when it is off.
func buildWeb(cfg config.Config, d *parts, clk clockwork.Clock, log *slog.Logger) (*weblink.Link, error) {
	w := cfg.Web
	if w.Listen == "" {
		return nil, nil
	}
	log = log.With("part", "web")
	auth, err := webauth.New(webauth.Config{Users: w.Users, Operators: w.Operators, Clock: clk, Log: log})
	if err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	opt := weblink.Options{
		Auth: auth, History: &d.history, Running: d.gateRunning.Load, Clock: clk, Log: log,
	}
	if d.link != nil {
		opt.MQTTConnected = d.link.Connected
	}
	if cfg.DBus.Bus != "none" {
		opt.DBusConnected = d.dbusConnected
	}
	return weblink.New(weblink.Config{Listen: w.Listen, CertFile: w.CertFile, KeyFile: w.KeyFile, PublicStatus: w.PublicStatus}, d.gate, opt)
}

// hashPassword is -hash-password: a password on stdin, its bcrypt hash on
// stdout, for a users_file line "name:hash" without apache2-utils.
func hashPassword(stdin io.Reader, stdout io.Writer) error {
	pw, err := webauth.ReadPassword(stdin)
	if err != nil {
		return err
	}
	hash, err := webauth.HashPassword(pw)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, hash)
	return err
}
