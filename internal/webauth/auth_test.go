package webauth

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"rocksaying.tw/gated/internal/syncbuf"
)

// fixture is an HTTP server with handlers behind Require, as the HTTP link
// will mount them: alice (correct horse) is an operator, bob (hunter2) a
// viewer.
type fixture struct {
	t    *testing.T
	srv  *httptest.Server
	clk  *clockwork.FakeClock
	logs *syncbuf.Buffer
	a    *Auth
}

func newFixture(t *testing.T, tls bool, mod ...func(*Config)) *fixture {
	t.Helper()
	users, err := LoadUsers("testdata/web-users")
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, clk: clockwork.NewFakeClock(), logs: &syncbuf.Buffer{}}
	cfg := Config{
		Users: users, Operators: []string{"alice"}, Clock: f.clk,
		Log: slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, m := range mod {
		m(&cfg)
	}
	if f.a, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	whoami := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := FromContext(r.Context())
		fmt.Fprintf(w, "user=%s operator=%v session=%v known=%v", id.User, id.Operator, id.Session, ok)
	})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	mux.Handle("GET /{$}", f.a.Require(Anyone, whoami))
	mux.Handle("GET /api/status", f.a.Require(Viewer, whoami))
	mux.Handle("POST /api/command", f.a.Require(Operator, whoami))
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		id, err := f.a.LogIn(w, r, r.PostFormValue("user"), r.PostFormValue("password"))
		switch {
		case errors.Is(err, ErrCrossOrigin):
			w.WriteHeader(http.StatusForbidden)
		case errors.Is(err, ErrThrottled):
			w.WriteHeader(http.StatusTooManyRequests)
		case errors.Is(err, ErrBadCredentials):
			w.WriteHeader(http.StatusUnauthorized)
		case err != nil:
			t.Errorf("LogIn: unexpected error %v", err)
		default:
			io.WriteString(w, id.CSRF)
		}
	})
	mux.Handle("POST /logout", f.a.Require(Viewer, http.HandlerFunc(f.a.LogOut)))
	if tls {
		f.srv = httptest.NewTLSServer(mux)
	} else {
		f.srv = httptest.NewServer(mux)
	}
	t.Cleanup(f.srv.Close)
	return f
}

// req is one request of a test.
type req struct {
	method, path string
	user, pass   string // Basic auth when user is set
	headers      map[string]string
	cookie       *http.Cookie
	form         url.Values
}

type resp struct {
	status int
	body   string
	header http.Header
	cookie *http.Cookie // the session cookie set, if any
}

func (f *fixture) do(r req) resp {
	f.t.Helper()
	var body io.Reader
	if r.form != nil {
		body = strings.NewReader(r.form.Encode())
	}
	hr, err := http.NewRequest(r.method, f.srv.URL+r.path, body)
	if err != nil {
		f.t.Fatal(err)
	}
	if r.form != nil {
		hr.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if r.user != "" {
		hr.SetBasicAuth(r.user, r.pass)
	}
	for k, v := range r.headers {
		hr.Header.Set(k, v)
	}
	if r.cookie != nil {
		hr.AddCookie(r.cookie)
	}
	res, err := f.srv.Client().Do(hr)
	if err != nil {
		f.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	out := resp{status: res.StatusCode, body: string(b), header: res.Header}
	for _, c := range res.Cookies() {
		if c.Name == CookieName {
			out.cookie = c
		}
	}
	return out
}

func (f *fixture) login(user, pass string) (*http.Cookie, string) {
	f.t.Helper()
	r := f.do(req{method: "POST", path: "/login", form: url.Values{"user": {user}, "password": {pass}}, headers: map[string]string{"Sec-Fetch-Site": "same-origin"}})
	if r.status != 200 || r.cookie == nil {
		f.t.Fatalf("login %s: %d %q, cookie %v", user, r.status, r.body, r.cookie)
	}
	return r.cookie, r.body
}

func TestRequire(t *testing.T) {
	evil := map[string]string{"Origin": "http://evil.example"}
	tests := []struct {
		name   string
		req    req
		status int
		want   string // in the body
	}{
		{"healthz needs nobody", req{method: "GET", path: "/healthz"}, 200, "ok"},
		{"status without credentials", req{method: "GET", path: "/api/status"}, 401, `"error":"unauthorized"`},
		{"status, viewer", req{method: "GET", path: "/api/status", user: "bob", pass: "hunter2"}, 200, "user=bob operator=false session=false"},
		{"status, operator", req{method: "GET", path: "/api/status", user: "alice", pass: "correct horse"}, 200, "user=alice operator=true"},
		{"status, wrong password", req{method: "GET", path: "/api/status", user: "bob", pass: "hunter3"}, 401, `"error":"unauthorized"`},
		{"status, unknown user", req{method: "GET", path: "/api/status", user: "mallory", pass: "hunter2"}, 401, "unauthorized"},
		{"status, a bearer token", req{method: "GET", path: "/api/status", headers: map[string]string{"Authorization": "Bearer abc"}}, 401, "only Basic"},
		{"status from another site: reading is not a state change", req{method: "GET", path: "/api/status", user: "bob", pass: "hunter2", headers: evil}, 200, "user=bob"},
		{"command without credentials", req{method: "POST", path: "/api/command"}, 401, "unauthorized"},
		{"command, viewer", req{method: "POST", path: "/api/command", user: "bob", pass: "hunter2"}, 403, `"error":"forbidden"`},
		{"command, operator", req{method: "POST", path: "/api/command", user: "alice", pass: "correct horse"}, 200, "user=alice operator=true"},
		{"command, operator, wrong password", req{method: "POST", path: "/api/command", user: "alice", pass: "correct horse "}, 401, "unauthorized"},
		{"command, operator, from another site (Origin)", req{method: "POST", path: "/api/command", user: "alice", pass: "correct horse", headers: evil}, 403, `"error":"cross_origin"`},
		{"command, operator, from another site (Sec-Fetch-Site)", req{method: "POST", path: "/api/command", user: "alice", pass: "correct horse", headers: map[string]string{"Sec-Fetch-Site": "cross-site"}}, 403, "cross_origin"},
		{"command, operator, same origin", req{method: "POST", path: "/api/command", user: "alice", pass: "correct horse", headers: map[string]string{"Sec-Fetch-Site": "same-origin"}}, 200, "user=alice"},
		{"command from another site without credentials", req{method: "POST", path: "/api/command", headers: evil}, 403, "cross_origin"},
		{"the panel without credentials", req{method: "GET", path: "/"}, 200, "known=false"},
		{"the panel, viewer", req{method: "GET", path: "/", user: "bob", pass: "hunter2"}, 200, "user=bob operator=false session=false known=true"},
		{"the panel, wrong password", req{method: "GET", path: "/", user: "bob", pass: "x"}, 401, "unauthorized"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, false)
			r := f.do(tt.req)
			if r.status != tt.status || !strings.Contains(r.body, tt.want) {
				t.Errorf("got %d %q, want %d with %q", r.status, r.body, tt.status, tt.want)
			}
			if got := r.header.Get("WWW-Authenticate"); (r.status == 401) != (got != "") {
				t.Errorf("status %d with WWW-Authenticate %q", r.status, got)
			} else if r.status == 401 && got != `Basic realm="gated", charset="UTF-8"` {
				t.Errorf("WWW-Authenticate %q", got)
			}
			if r.status >= 400 && r.header.Get("Content-Type") != "application/json" {
				t.Errorf("refusal with Content-Type %q", r.header.Get("Content-Type"))
			}
		})
	}
}

func TestFiveBadPasswordsThen429ForAMinute(t *testing.T) {
	f := newFixture(t, false)
	status := req{method: "GET", path: "/api/status"}
	bad, good := status, status
	bad.user, bad.pass = "alice", "wrong-secret-1"
	good.user, good.pass = "alice", "correct horse"
	for i := 1; i <= 4; i++ {
		if r := f.do(bad); r.status != 401 {
			t.Fatalf("bad password %d: %d, want 401", i, r.status)
		}
	}
	r := f.do(bad)
	if r.status != 429 || r.header.Get("Retry-After") != "60" || !strings.Contains(r.body, `"error":"throttled"`) {
		t.Fatalf("bad password 5: %d %q Retry-After %q; want 429, throttled, 60", r.status, r.body, r.header.Get("Retry-After"))
	}
	if r := f.do(good); r.status != 429 {
		t.Errorf("the right password while blocked: %d, want 429", r.status)
	}
	f.clk.Advance(30 * time.Second)
	if r := f.do(good); r.status != 429 || r.header.Get("Retry-After") != "30" {
		t.Errorf("30s later: %d Retry-After %q, want 429 and 30", r.status, r.header.Get("Retry-After"))
	}
	f.clk.Advance(30 * time.Second)
	if r := f.do(good); r.status != 200 {
		t.Errorf("a minute later, the right password: %d, want 200", r.status)
	}
	if n := strings.Count(f.logs.String(), "too many failures"); n != 1 {
		t.Errorf("%d warnings about the address, want 1:\n%s", n, f.logs)
	}
}

func TestFailedLoginsCountAcrossBasicAndTheForm(t *testing.T) {
	f := newFixture(t, false)
	for i := 0; i < 3; i++ {
		f.do(req{method: "GET", path: "/api/status", user: "bob", pass: "nope"})
	}
	form := req{method: "POST", path: "/login", form: url.Values{"user": {"bob"}, "password": {"nope"}}}
	if r := f.do(form); r.status != 401 || r.cookie != nil {
		t.Fatalf("4th failure (form): %d, cookie %v; want 401, none", r.status, r.cookie)
	}
	r := f.do(form)
	if r.status != 429 || r.header.Get("Retry-After") != "60" {
		t.Fatalf("5th failure (form): %d Retry-After %q, want 429, 60", r.status, r.header.Get("Retry-After"))
	}
	form.form.Set("password", "hunter2")
	if r := f.do(form); r.status != 429 || r.cookie != nil {
		t.Errorf("right password while blocked: %d, cookie %v; want 429, none", r.status, r.cookie)
	}
}

// A logged-in panel keeps working while its address is blocked: only
// password checks are throttled.
func TestSessionWorksWhileAddressIsBlocked(t *testing.T) {
	f := newFixture(t, false)
	c, _ := f.login("alice", "correct horse")
	for i := 0; i < 5; i++ {
		f.do(req{method: "GET", path: "/api/status", user: "alice", pass: "guess"})
	}
	if r := f.do(req{method: "GET", path: "/api/status", cookie: c}); r.status != 200 {
		t.Errorf("session while the address is blocked: %d, want 200", r.status)
	}
}

func TestSessionFlow(t *testing.T) {
	f := newFixture(t, false)
	c, csrf := f.login("alice", "correct horse")
	if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Secure {
		t.Errorf("cookie %+v: want HttpOnly, SameSite=Strict, Path=/, not Secure on plain HTTP", c)
	}
	if c.MaxAge != int(DefaultSessionTTL/time.Second) {
		t.Errorf("cookie Max-Age %d, want %d", c.MaxAge, int(DefaultSessionTTL/time.Second))
	}
	cmd := func(headers map[string]string, form url.Values) resp {
		return f.do(req{method: "POST", path: "/api/command", cookie: c, headers: headers, form: form})
	}
	steps := []struct {
		name   string
		r      resp
		status int
		want   string
	}{
		{"status with the cookie", f.do(req{method: "GET", path: "/api/status", cookie: c}), 200, "user=alice operator=true session=true"},
		{"command without a CSRF token", cmd(nil, nil), 403, `"error":"csrf"`},
		{"command with a wrong token", cmd(map[string]string{CSRFHeader: csrf + "x"}, nil), 403, "csrf"},
		{"command with the token in the header", cmd(map[string]string{CSRFHeader: csrf}, nil), 200, "user=alice"},
		{"command with the token in the form", cmd(nil, url.Values{CSRFField: {csrf}, "command": {"open"}}), 200, "user=alice"},
		{"command with the token, from another site", cmd(map[string]string{CSRFHeader: csrf, "Origin": "http://evil.example"}, nil), 403, "cross_origin"},
		{"command with a token in a JSON body only", f.do(req{method: "POST", path: "/api/command", cookie: c, headers: map[string]string{"Content-Type": "application/json"}}), 403, "csrf"},
	}
	for _, s := range steps {
		if s.r.status != s.status || !strings.Contains(s.r.body, s.want) {
			t.Errorf("%s: got %d %q, want %d with %q", s.name, s.r.status, s.r.body, s.status, s.want)
		}
	}

	// A viewer's session may look, not command.
	bc, bcsrf := f.login("bob", "hunter2")
	if r := f.do(req{method: "POST", path: "/api/command", cookie: bc, headers: map[string]string{CSRFHeader: bcsrf}}); r.status != 403 || !strings.Contains(r.body, "forbidden") {
		t.Errorf("viewer's session commands: %d %q, want 403 forbidden", r.status, r.body)
	}
	if r := f.do(req{method: "POST", path: "/api/command", cookie: c, headers: map[string]string{CSRFHeader: bcsrf}}); r.status != 403 {
		t.Errorf("alice's session with bob's token: %d, want 403", r.status)
	}

	// Log out: the cookie is cleared and no longer works.
	r := f.do(req{method: "POST", path: "/logout", cookie: c, headers: map[string]string{CSRFHeader: csrf}})
	if r.status != 200 || r.cookie == nil || r.cookie.MaxAge >= 0 {
		t.Errorf("logout: %d, cookie %+v; want 200 and a cookie cleared", r.status, r.cookie)
	}
	if r := f.do(req{method: "GET", path: "/api/status", cookie: c}); r.status != 401 {
		t.Errorf("status after logout: %d, want 401", r.status)
	}
}

func TestSessionExpires(t *testing.T) {
	f := newFixture(t, false, func(c *Config) { c.SessionTTL = time.Hour })
	c, _ := f.login("bob", "hunter2")
	f.clk.Advance(time.Hour - time.Second)
	if r := f.do(req{method: "GET", path: "/api/status", cookie: c}); r.status != 200 {
		t.Errorf("before the TTL: %d, want 200", r.status)
	}
	f.clk.Advance(time.Second)
	if r := f.do(req{method: "GET", path: "/api/status", cookie: c}); r.status != 401 {
		t.Errorf("after the TTL: %d, want 401", r.status)
	}
}

func TestLoginRefusals(t *testing.T) {
	f := newFixture(t, false)
	old, _ := f.login("bob", "hunter2")
	tests := []struct {
		name   string
		req    req
		status int
	}{
		{"wrong password", req{method: "POST", path: "/login", form: url.Values{"user": {"bob"}, "password": {"x"}}}, 401},
		{"from another site", req{method: "POST", path: "/login", form: url.Values{"user": {"bob"}, "password": {"hunter2"}}, headers: map[string]string{"Sec-Fetch-Site": "cross-site"}}, 403},
	}
	for _, tt := range tests {
		if r := f.do(tt.req); r.status != tt.status || r.cookie != nil {
			t.Errorf("%s: %d, cookie %v; want %d and no cookie", tt.name, r.status, r.cookie, tt.status)
		}
	}
	// A new login replaces the session the request came with.
	r := f.do(req{method: "POST", path: "/login", cookie: old, form: url.Values{"user": {"bob"}, "password": {"hunter2"}}})
	if r.status != 200 || r.cookie == nil || r.cookie.Value == old.Value {
		t.Fatalf("second login: %d, cookie %v; want 200 and a new id", r.status, r.cookie)
	}
	if r := f.do(req{method: "GET", path: "/api/status", cookie: old}); r.status != 401 {
		t.Errorf("the session from before the login: %d, want 401", r.status)
	}
}

func TestCookieSecure(t *testing.T) {
	t.Run("under TLS", func(t *testing.T) {
		f := newFixture(t, true)
		if c, _ := f.login("bob", "hunter2"); !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode {
			t.Errorf("cookie %+v: want Secure, HttpOnly, SameSite=Strict", c)
		}
	})
	t.Run("SecureCookies behind a TLS proxy", func(t *testing.T) {
		f := newFixture(t, false, func(c *Config) { c.SecureCookies = true })
		if c, _ := f.login("bob", "hunter2"); !c.Secure {
			t.Errorf("cookie %+v: want Secure", c)
		}
	})
}

func TestNoSecretInLogs(t *testing.T) {
	f := newFixture(t, false)
	f.login("alice", "correct horse")
	f.do(req{method: "GET", path: "/api/status", user: "alice", pass: "wrong-secret-1"})
	f.do(req{method: "GET", path: "/api/status", user: "hunter2-typed-as-name", pass: "x"})
	for i := 0; i < 4; i++ {
		f.do(req{method: "POST", path: "/login", form: url.Values{"user": {"bob"}, "password": {"wrong-secret-2"}}})
	}
	logs := f.logs.String()
	if !strings.Contains(logs, "web login failed") || !strings.Contains(logs, "too many failures") || !strings.Contains(logs, "user=alice") {
		t.Fatalf("the failures were not logged:\n%s", logs)
	}
	for _, secret := range []string{"correct horse", "wrong-secret-1", "wrong-secret-2", "hunter2", "$2y$", aliceHash[7:20], bobHash[7:20]} {
		if strings.Contains(logs, secret) {
			t.Errorf("the logs hold %q:\n%s", secret, logs)
		}
	}
	if !strings.Contains(logs, `user="(unknown user)"`) {
		t.Errorf("an unknown name should be logged as (unknown user):\n%s", logs)
	}
}

// Right Basic credentials are remembered for a few minutes (a script
// polling the API costs no bcrypt per call); the memory never bypasses
// the throttle and holds no wrong password.
func TestRightCredentialsRemembered(t *testing.T) {
	f := newFixture(t, false)
	get := req{method: "GET", path: "/api/status", user: "bob", pass: "hunter2"}
	if f.a.ok.has("bob", "hunter2") {
		t.Fatal("remembered before any request")
	}
	f.do(get)
	if !f.a.ok.has("bob", "hunter2") {
		t.Error("right credentials not remembered")
	}
	f.do(req{method: "GET", path: "/api/status", user: "bob", pass: "nope"})
	if f.a.ok.has("bob", "nope") {
		t.Error("a wrong password was remembered")
	}
	for i := 0; i < 5; i++ {
		f.do(req{method: "GET", path: "/api/status", user: "bob", pass: "nope"})
	}
	if r := f.do(get); r.status != 429 {
		t.Errorf("remembered credentials while blocked: %d, want 429", r.status)
	}
	f.clk.Advance(okCacheTTL)
	if f.a.ok.has("bob", "hunter2") {
		t.Error("still remembered after okCacheTTL")
	}
}

func TestNewChecksOperators(t *testing.T) {
	users, err := LoadUsers("testdata/web-users")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{Users: users, Operators: []string{"alice", "carol"}}); err == nil || !strings.Contains(err.Error(), `"carol" is not a user`) {
		t.Errorf("an operator not in users_file: got %v", err)
	}
	if _, err := New(Config{}); err == nil {
		t.Error("no users: got no error")
	}
	if _, err := New(Config{Users: users}); err != nil {
		t.Errorf("no operators (everyone may only look): %v", err)
	}
}

func TestDenyIsTheCallers(t *testing.T) {
	f := newFixture(t, false, func(c *Config) {
		c.Deny = func(w http.ResponseWriter, r *http.Request, status int, reason, msg string) {
			w.WriteHeader(status)
			fmt.Fprintf(w, "custom %s", reason)
		}
	})
	if r := f.do(req{method: "POST", path: "/api/command", user: "bob", pass: "hunter2"}); r.status != 403 || r.body != "custom forbidden" {
		t.Errorf("got %d %q, want 403 from Config.Deny", r.status, r.body)
	}
}
