package webauth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
)

// The names the panel and the HTTP link share with this package.
const (
	CookieName = "gated_session" // the session cookie
	CSRFField  = "csrf"          // the CSRF token's form field
	CSRFHeader = "X-CSRF-Token"  // the CSRF token's header, for the page's fetch calls
	Realm      = "gated"         // the Basic auth realm
)

// Refusal reasons, the "error" of the refusal document.
const (
	ReasonUnauthorized = "unauthorized" // 401: no or wrong credentials
	ReasonForbidden    = "forbidden"    // 403: a viewer asked to command
	ReasonCrossOrigin  = "cross_origin" // 403: a state change from another site
	ReasonCSRF         = "csrf"         // 403: a session's state change without its token
	ReasonThrottled    = "throttled"    // 429: too many failed logins from the address
)

// Errors of LogIn.
var (
	ErrBadCredentials = errors.New("wrong user name or password")
	ErrThrottled      = errors.New("too many failed logins from this address")
)

// ThrottledError is LogIn's error while the address is blocked; it is
// ErrThrottled.
type ThrottledError struct{ RetryAfter time.Duration }

func (e ThrottledError) Error() string {
	return fmt.Sprintf("%v: try again in %v", ErrThrottled, e.RetryAfter.Round(time.Second))
}

// Is makes errors.Is(err, ErrThrottled) true.
func (e ThrottledError) Is(target error) bool { return target == ErrThrottled }

// Role is what a handler needs of its caller.
type Role int

// The roles of SPEC.md.
const (
	// Anyone may call: no credentials needed (/healthz, /api/status with
	// public_status, the panel's page that shows the login form). Wrong
	// credentials are still refused, and right ones are passed on.
	Anyone Role = iota
	// Viewer is any user of users_file: may look.
	Viewer
	// Operator is a user named in operators: may command.
	Operator
)

// Identity is the caller of a request that passed Require.
type Identity struct {
	User     string
	Operator bool
	// Session is true when the caller came with the panel's session
	// cookie rather than Basic auth; CSRF is then the token the page must
	// put in its forms (CSRFField) or requests (CSRFHeader).
	Session bool
	CSRF    string
}

type ctxKey struct{}

// FromContext returns the caller that Require let through; false for a
// caller without credentials on an Anyone handler.
func FromContext(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(ctxKey{}).(Identity)
	return id, ok
}

// Config is what New needs.
type Config struct {
	Users     *Users   // from LoadUsers (users_file)
	Operators []string // operators: users that may command

	SessionTTL  time.Duration // 0: DefaultSessionTTL
	MaxSessions int           // 0: DefaultMaxSessions
	// SecureCookies marks the session cookie Secure even on a plain
	// connection (TLS ended by a proxy in front); under TLS it always is.
	SecureCookies bool

	Clock clockwork.Clock // nil: the real clock
	Log   *slog.Logger    // nil: slog.Default()

	// Deny writes a refusal (status 401, 403 or 429; Require has already
	// set WWW-Authenticate or Retry-After). nil: a JSON document
	// {"ok":false,"error":reason,"message":msg}.
	Deny func(w http.ResponseWriter, r *http.Request, status int, reason, msg string)
}

// Auth checks the callers of the web panel and the HTTP API. Safe for
// concurrent use.
type Auth struct {
	cfg       Config
	users     *Users
	operators map[string]bool
	sessions  *Sessions
	throttle  *Throttle
	ok        okCache
	log       *slog.Logger
}

// New checks cfg: every operator must be a user of users_file.
func New(cfg Config) (*Auth, error) {
	if cfg.Users == nil {
		return nil, errors.New("web: no users_file")
	}
	if cfg.Clock == nil {
		cfg.Clock = clockwork.NewRealClock()
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	a := &Auth{
		cfg: cfg, users: cfg.Users, operators: map[string]bool{},
		sessions: &Sessions{TTL: cfg.SessionTTL, Max: cfg.MaxSessions, Clock: cfg.Clock},
		throttle: &Throttle{Clock: cfg.Clock},
		ok:       okCache{clk: cfg.Clock},
		log:      cfg.Log.With("part", "web"),
	}
	for _, name := range cfg.Operators {
		if !cfg.Users.Has(name) {
			return nil, fmt.Errorf("web operators: %q is not a user of users_file", name)
		}
		a.operators[name] = true
	}
	a.sessions.init()
	// The dummy hash costs a login: make it now rather than in the first
	// login with an unknown name, which would then take twice as long.
	go cfg.Users.dummyHash()
	return a, nil
}

// Require lets a request through to h when its caller may: role Anyone,
// Viewer or Operator. In order:
//   - a state-changing request (not GET, HEAD or OPTIONS) from another
//     site is refused, 403 (CheckOrigin);
//   - a live session cookie identifies the caller; else HTTP Basic
//     credentials, checked against users_file unless the caller's address
//     has failed five times in a minute (429 with Retry-After, for a
//     minute); wrong credentials, 401 with WWW-Authenticate;
//   - no credentials: 401 unless role is Anyone;
//   - a viewer where an operator is needed, 403;
//   - a state change by session cookie needs the session's CSRF token in
//     the X-CSRF-Token header or the csrf form field, else 403.
//
// h finds the caller with FromContext.
func (a *Auth) Require(role Role, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		unsafe := !safeMethod(r.Method)
		if unsafe {
			if err := CheckOrigin(r); err != nil {
				a.log.Info("web request refused", "reason", ReasonCrossOrigin, "method", r.Method, "path", r.URL.Path, "addr", ClientAddr(r), "err", err)
				a.deny(w, r, http.StatusForbidden, ReasonCrossOrigin, "state changes are accepted only from gated's own pages")
				return
			}
		}
		id, ok, answered := a.identify(w, r)
		if answered {
			return
		}
		if !ok {
			if role == Anyone {
				h.ServeHTTP(w, r)
				return
			}
			w.Header().Set("WWW-Authenticate", `Basic realm="`+Realm+`", charset="UTF-8"`)
			a.deny(w, r, http.StatusUnauthorized, ReasonUnauthorized, "log in as a user of users_file")
			return
		}
		if role == Operator && !id.Operator {
			a.log.Info("web request refused", "reason", ReasonForbidden, "user", id.User, "method", r.Method, "path", r.URL.Path)
			a.deny(w, r, http.StatusForbidden, ReasonForbidden, "user "+id.User+" may look but not command: not one of operators")
			return
		}
		if unsafe && id.Session && !a.checkCSRF(w, r, id) {
			a.log.Info("web request refused", "reason", ReasonCSRF, "user", id.User, "method", r.Method, "path", r.URL.Path)
			a.deny(w, r, http.StatusForbidden, ReasonCSRF, "the page is out of date: reload it")
			return
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, id)))
	})
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// identify finds the caller by session cookie or Basic auth. answered is
// true when it has written a refusal.
func (a *Auth) identify(w http.ResponseWriter, r *http.Request) (id Identity, ok, answered bool) {
	if c, err := r.Cookie(CookieName); err == nil {
		// A stale cookie (expired, or from before a restart) is ignored:
		// the panel shows its login form.
		if s, live := a.sessions.Get(c.Value); live && a.users.Has(s.User) {
			return Identity{User: s.User, Operator: a.operators[s.User], Session: true, CSRF: s.CSRF}, true, false
		}
	}
	user, password, basic := r.BasicAuth()
	if !basic {
		if r.Header.Get("Authorization") != "" {
			w.Header().Set("WWW-Authenticate", `Basic realm="`+Realm+`", charset="UTF-8"`)
			a.deny(w, r, http.StatusUnauthorized, ReasonUnauthorized, "only Basic authorization is accepted")
			return Identity{}, false, true
		}
		return Identity{}, false, false
	}
	if err := a.checkPassword(r, user, password); err != nil {
		var te ThrottledError
		if errors.As(err, &te) {
			a.denyThrottled(w, r, te)
		} else {
			w.Header().Set("WWW-Authenticate", `Basic realm="`+Realm+`", charset="UTF-8"`)
			a.deny(w, r, http.StatusUnauthorized, ReasonUnauthorized, "wrong user name or password")
		}
		return Identity{}, false, true
	}
	return Identity{User: user, Operator: a.operators[user]}, true, false
}

// checkPassword checks a password for Basic auth or the login form, with
// the throttle. Only a known user's name is logged: an unknown "name" is
// often a password typed in the wrong field.
func (a *Auth) checkPassword(r *http.Request, user, password string) error {
	addr := ClientAddr(r)
	if blocked, left := a.throttle.Blocked(addr); blocked {
		return ThrottledError{left}
	}
	if a.ok.has(user, password) {
		return nil
	}
	if !a.users.Verify(user, password) {
		name := "(unknown user)"
		if a.users.Has(user) {
			name = user
		}
		if a.throttle.Fail(addr) {
			a.log.Warn("web login failed; address refused for a while: too many failures", "user", name, "addr", addr, "for", a.throttle.Block)
			return ThrottledError{a.throttle.Block}
		}
		a.log.Info("web login failed", "user", name, "addr", addr)
		return ErrBadCredentials
	}
	a.ok.add(user, password)
	return nil
}

// checkCSRF looks for the session's token in the header, else in a form
// body (read at most 64 KiB of it; the handler still finds the form in
// r.PostForm).
func (a *Auth) checkCSRF(w http.ResponseWriter, r *http.Request, id Identity) bool {
	tok := r.Header.Get(CSRFHeader)
	if tok == "" {
		ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if ct == "application/x-www-form-urlencoded" || ct == "multipart/form-data" {
			r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
			tok = r.PostFormValue(CSRFField)
		}
	}
	return Session{CSRF: id.CSRF}.CheckCSRF(tok)
}

// LogIn checks the login form's user and password (with the origin check
// and the throttle) and, when they are right, starts a session: it sets
// the session cookie on w (HttpOnly, SameSite=Strict, Path=/, Secure under
// TLS) and returns the caller, whose CSRF the next page needs. A session
// cookie the request already had is ended first, so that no id chosen
// before the login survives it.
//
// Errors: one wrapping ErrCrossOrigin (answer 403), ErrBadCredentials (401),
// ThrottledError (429; LogIn has set Retry-After on w).
func (a *Auth) LogIn(w http.ResponseWriter, r *http.Request, user, password string) (Identity, error) {
	if err := CheckOrigin(r); err != nil {
		return Identity{}, err
	}
	if err := a.checkPassword(r, user, password); err != nil {
		var te ThrottledError
		if errors.As(err, &te) {
			w.Header().Set("Retry-After", retryAfter(te.RetryAfter))
		}
		return Identity{}, err
	}
	if c, err := r.Cookie(CookieName); err == nil {
		a.sessions.Delete(c.Value)
	}
	sid, s := a.sessions.New(user)
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: sid, Path: "/",
		Expires: s.Expires, MaxAge: int(a.sessions.TTL / time.Second),
		HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: r.TLS != nil || a.cfg.SecureCookies,
	})
	a.log.Info("web login", "user", user, "addr", ClientAddr(r))
	return Identity{User: user, Operator: a.operators[user], Session: true, CSRF: s.CSRF}, nil
}

// LogOut ends the request's session and clears its cookie. Mount it behind
// Require(Viewer, …) as a POST, so that the origin and CSRF checks apply.
func (a *Auth) LogOut(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(CookieName); err == nil {
		a.sessions.Delete(c.Value)
	}
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: r.TLS != nil || a.cfg.SecureCookies,
	})
}

func (a *Auth) denyThrottled(w http.ResponseWriter, r *http.Request, te ThrottledError) {
	w.Header().Set("Retry-After", retryAfter(te.RetryAfter))
	a.deny(w, r, http.StatusTooManyRequests, ReasonThrottled, "too many failed logins from this address: try again in "+retryAfter(te.RetryAfter)+" s")
}

func retryAfter(d time.Duration) string {
	return strconv.Itoa(int(math.Ceil(d.Seconds())))
}

func (a *Auth) deny(w http.ResponseWriter, r *http.Request, status int, reason, msg string) {
	if a.cfg.Deny != nil {
		a.cfg.Deny(w, r, status, reason, msg)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		OK      bool   `json:"ok"`
		Error   string `json:"error"`
		Message string `json:"message"`
	}{false, reason, msg})
}

// okCache remembers right Basic credentials for a few minutes, so that a
// script calling the API every few seconds does not cost a bcrypt check
// (a second of CPU on a Pi Zero) each time. It holds HMACs under a key of
// its own, never passwords; only right credentials enter it, so a wrong
// password always takes bcrypt's time.
type okCache struct {
	clk clockwork.Clock

	mu  sync.Mutex
	key []byte
	m   map[[32]byte]time.Time
}

const (
	okCacheTTL = 5 * time.Minute
	okCacheMax = 256
)

func (c *okCache) sum(user, password string) [32]byte {
	if c.key == nil {
		c.key = make([]byte, 32)
		_, _ = rand.Read(c.key)
		c.m = map[[32]byte]time.Time{}
	}
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte(user))
	m.Write([]byte{0})
	m.Write([]byte(password))
	var s [32]byte
	copy(s[:], m.Sum(nil))
	return s
}

func (c *okCache) has(user, password string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := c.sum(user, password)
	until, ok := c.m[k]
	if ok && !c.clk.Now().Before(until) {
		delete(c.m, k)
		return false
	}
	return ok
}

func (c *okCache) add(user, password string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := c.sum(user, password)
	now := c.clk.Now()
	if len(c.m) >= okCacheMax {
		for k, until := range c.m {
			if !now.Before(until) {
				delete(c.m, k)
			}
		}
		if len(c.m) >= okCacheMax {
			clear(c.m)
		}
	}
	c.m[k] = now.Add(okCacheTTL)
}
