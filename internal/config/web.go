package config

import (
	"net"
	"slices"
	"strings"
	"time"

	"rocksaying.tw/gated/internal/webauth"
)

// Web is the [web] section: the web panel and the HTTP API.
type Web struct {
	Listen       string   `toml:"listen"` // host:port; "": off
	UsersFile    string   `toml:"users_file"`
	Operators    []string `toml:"operators"`
	PublicStatus bool     `toml:"public_status"`
	CertFile     string   `toml:"cert_file"`
	KeyFile      string   `toml:"key_file"`

	// Read from users_file when the file is loaded, with a listen address.
	Users *webauth.Users `toml:"-"`
}

// Hist is the [history] section: the event history's retention.
type Hist struct {
	Keep      time.Duration `toml:"keep"`
	MaxEvents int           `toml:"max_events"`
}

// checkWeb checks [web] when it listens, and reads users_file: a file
// with anything but bcrypt entries is refused here, at start, with its
// line, rather than when someone tries to log in.
func checkWeb(c *Config, ps *problems) {
	w := &c.Web
	if w.Listen == "" {
		return
	}
	if _, port, err := net.SplitHostPort(w.Listen); err != nil || port == "" {
		ps.add("web.listen", "%q: want host:port, e.g. \"0.0.0.0:8080\" or \"127.0.0.1:8080\"", w.Listen)
	}
	for _, f := range []struct{ key, path string }{{"web.users_file", w.UsersFile}, {"web.cert_file", w.CertFile}, {"web.key_file", w.KeyFile}} {
		if f.path != "" && !strings.HasPrefix(f.path, "/") {
			ps.add(f.key, "%q: must be an absolute path", f.path)
		}
	}
	if (w.CertFile == "") != (w.KeyFile == "") {
		ps.add("web.cert_file", "cert_file and key_file go together: set both or neither")
	}
	if w.UsersFile == "" {
		if w.Users == nil {
			ps.add("web.listen", "needs web.users_file: an htpasswd file of bcrypt entries (htpasswd -B, or gated -hash-password)")
		}
		return
	}
	users, err := webauth.LoadUsers(w.UsersFile)
	if err != nil {
		ps.add("web.users_file", "%v", err)
		return
	}
	w.Users = users
	for _, op := range w.Operators {
		if !users.Has(op) {
			ps.add("web.operators", "%q is not a user of %s", op, w.UsersFile)
		}
	}
	if i := slices.IndexFunc(w.Operators, func(s string) bool { return strings.TrimSpace(s) == "" }); i >= 0 {
		ps.add("web.operators", "an empty name")
	}
}

func checkHist(c *Config, ps *problems) {
	ps.positive("history.keep", c.Hist.Keep)
	if c.Hist.MaxEvents <= 0 {
		ps.add("history.max_events", "must be a positive number of events, got %d", c.Hist.MaxEvents)
	}
}
