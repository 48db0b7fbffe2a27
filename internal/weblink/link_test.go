package weblink_test

// Long on purpose: the table of every route × every auth rule (401, 403, 429, cross-origin,
// CSRF) is one table, so that a route added without its rules shows as a missing row.

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jonboulle/clockwork"
	"rocksaying.tw/gated/internal/gate"
	"rocksaying.tw/gated/internal/history"
	"rocksaying.tw/gated/internal/waitfor"
	"rocksaying.tw/gated/internal/webauth"
	"rocksaying.tw/gated/internal/weblink"
)

// The users of ../webauth/testdata/web-users: alice is an operator, bob a
// viewer.
const (
	alice, alicePass = "alice", "correct horse"
	bob, bobPass     = "bob", "hunter2"
)

type rig struct {
	t       *testing.T
	g       *fakeGate
	h       *fakeHistory
	clk     *clockwork.FakeClock
	url     string
	running atomic.Bool
	cancel  context.CancelFunc
	done    chan error
	client  *http.Client
}

func newRig(t *testing.T, cfg weblink.Config) *rig {
	t.Helper()
	users, err := webauth.LoadUsers("../webauth/testdata/web-users")
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, g: newFakeGate(), h: &fakeHistory{}, clk: clockwork.NewFakeClock(), done: make(chan error, 1)}
	r.running.Store(true)
	log := slog.New(slog.DiscardHandler)
	auth, err := webauth.New(webauth.Config{Users: users, Operators: []string{alice}, Clock: r.clk, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	mqttUp := true
	l, err := weblink.New(cfg, r.g, weblink.Options{
		Auth: auth, History: r.h, Running: r.running.Load, Clock: r.clk, Log: log,
		MQTTConnected: func() bool { return mqttUp },
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.url = "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- l.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-r.done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	r.client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return r
}

type req struct {
	method, path string
	user, pass   string
	body         string
	form         url.Values
	headers      map[string]string
	cookie       *http.Cookie
}

type resp struct {
	status int
	body   string
	header http.Header
	cookie *http.Cookie
}

func (r *rig) do(q req) resp {
	r.t.Helper()
	var body io.Reader
	if q.form != nil {
		body = strings.NewReader(q.form.Encode())
	} else if q.body != "" {
		body = strings.NewReader(q.body)
	}
	if q.method == "" {
		q.method = "GET"
	}
	hr, err := http.NewRequest(q.method, r.url+q.path, body)
	if err != nil {
		r.t.Fatal(err)
	}
	if q.form != nil {
		hr.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if q.user != "" {
		hr.SetBasicAuth(q.user, q.pass)
	}
	for k, v := range q.headers {
		hr.Header.Set(k, v)
	}
	if q.cookie != nil {
		hr.AddCookie(q.cookie)
	}
	res, err := r.client.Do(hr)
	if err != nil {
		r.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	out := resp{status: res.StatusCode, body: string(b), header: res.Header}
	for _, c := range res.Cookies() {
		if c.Name == webauth.CookieName {
			out.cookie = c
		}
	}
	return out
}

var sameOrigin = map[string]string{"Sec-Fetch-Site": "same-origin"}

// login logs in with the form and returns the session cookie and the
// panel's CSRF token.
func (r *rig) login(user, pass string) (*http.Cookie, string) {
	r.t.Helper()
	res := r.do(req{method: "POST", path: "/login", form: url.Values{"user": {user}, "password": {pass}}, headers: sameOrigin})
	if res.status != http.StatusSeeOther || res.cookie == nil {
		r.t.Fatalf("login %s: %d %q", user, res.status, res.body)
	}
	panel := r.do(req{path: "/", cookie: res.cookie})
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(panel.body)
	if panel.status != 200 || m == nil {
		r.t.Fatalf("panel after login: %d, no csrf token in %q", panel.status, panel.body)
	}
	return res.cookie, m[1]
}

func TestAPI(t *testing.T) {
	r := newRig(t, weblink.Config{})
	tests := []struct {
		name   string
		req    req
		status int
		want   string // in the body
	}{
		{"healthz needs nobody", req{path: "/healthz"}, 200, "ok"},
		{"status without credentials", req{path: "/api/status"}, 401, `"error":"unauthorized"`},
		{"status, viewer", req{path: "/api/status", user: bob, pass: bobPass}, 200, `"state":"closed"`},
		{"status, wrong password", req{path: "/api/status", user: bob, pass: "nope"}, 401, "unauthorized"},
		{"command without credentials", req{method: "POST", path: "/api/command", body: `{"command":"open"}`}, 401, "unauthorized"},
		{"command, viewer", req{method: "POST", path: "/api/command", body: `{"command":"open"}`, user: bob, pass: bobPass}, 403, `"error":"forbidden"`},
		{"command, operator, from another site", req{method: "POST", path: "/api/command", body: `{"command":"open"}`, user: alice, pass: alicePass, headers: map[string]string{"Sec-Fetch-Site": "cross-site"}}, 403, "cross_origin"},
		{"command, operator, from another Origin", req{method: "POST", path: "/api/command", body: `{"command":"open"}`, user: alice, pass: alicePass, headers: map[string]string{"Origin": "http://evil.example"}}, 403, "cross_origin"},
		{"command by GET", req{path: "/api/command", user: alice, pass: alicePass}, 405, ""},
		{"command, malformed", req{method: "POST", path: "/api/command", body: `open`, user: alice, pass: alicePass}, 400, `"error":"malformed"`},
		{"command, no command", req{method: "POST", path: "/api/command", body: `{"id":"x"}`, user: alice, pass: alicePass}, 400, `"error":"malformed"`},
		{"command, too large", req{method: "POST", path: "/api/command", body: `{"command":"open","id":"` + strings.Repeat("x", 2000) + `"}`, user: alice, pass: alicePass}, 400, "over 1024 bytes"},
		{"command, unknown", req{method: "POST", path: "/api/command", body: `{"command":"jump"}`, user: alice, pass: alicePass}, 400, `"error":"unknown"`},
		{"events without credentials", req{path: "/api/events"}, 401, "unauthorized"},
		{"events, bad limit", req{path: "/api/events?limit=x", user: bob, pass: bobPass}, 400, "limit"},
		{"events, bad before", req{path: "/api/events?before=-1", user: bob, pass: bobPass}, 400, "before"},
		{"metrics without credentials", req{path: "/metrics"}, 401, "unauthorized"},
		{"stream without credentials", req{path: "/api/stream"}, 401, "unauthorized"},
		{"panel without credentials: the login form", req{path: "/"}, 303, ""},
		{"login form", req{path: "/login"}, 200, `action="/login"`},
		{"static script", req{path: "/static/panel.js"}, 200, "EventSource"},
		{"manifest", req{path: "/manifest.webmanifest"}, 200, `"start_url": "/"`},
		{"no such page", req{path: "/nope", user: bob, pass: bobPass}, 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := r.do(tt.req)
			if res.status != tt.status || !strings.Contains(res.body, tt.want) {
				t.Errorf("got %d %q, want %d and %q", res.status, res.body, tt.status, tt.want)
			}
			for k, v := range map[string]string{"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"} {
				if got := res.header.Get(k); got != v {
					t.Errorf("%s: got %q, want %q", k, got, v)
				}
			}
			if csp := res.header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe-inline") {
				t.Errorf("Content-Security-Policy %q: want script-src 'self', frame-ancestors 'none' and nothing inline", csp)
			}
		})
	}
	if calls := r.g.callsSoFar(); len(calls) != 0 {
		t.Errorf("refused requests reached the gate: %v", calls)
	}
}

func TestCommand(t *testing.T) {
	r := newRig(t, weblink.Config{})
	res := r.do(req{method: "POST", path: "/api/command", body: `{"command":"open","id":"script-1"}`, user: alice, pass: alicePass})
	if want := `{"id":"script-1","command":"open","ok":true,"state":"opening"}`; res.status != 200 || strings.TrimSpace(res.body) != want {
		t.Errorf("open: got %d %s, want 200 %s", res.status, res.body, want)
	}
	if ct := res.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if diff := cmp.Diff([]call{{gate.CmdOpen, gate.CauseWeb, alice}}, r.g.callsSoFar(), cmp.AllowUnexported(call{})); diff != "" {
		t.Errorf("the gate was asked (-want +got):\n%s", diff)
	}
	r.g.refuse = &gate.RefusedError{Reason: gate.ReasonObstructed, Msg: "the gate is obstructed"}
	res = r.do(req{method: "POST", path: "/api/command", body: `{"command":"CLOSE"}`, user: alice, pass: alicePass})
	var doc map[string]any
	json.Unmarshal([]byte(res.body), &doc)
	want := map[string]any{"command": "close", "ok": false, "error": "obstructed", "message": "the gate is obstructed", "state": "opening"}
	if diff := cmp.Diff(want, doc); res.status != http.StatusConflict || diff != "" {
		t.Errorf("refused close: got %d, want 409; document (-want +got):\n%s", res.status, diff)
	}
}

// TestPositionCommand: SPEC.md's /api/command takes a position too.
func TestPositionCommand(t *testing.T) {
	r := newRig(t, weblink.Config{})
	res := r.do(req{method: "POST", path: "/api/command", body: `{"command":"position","position":40}`, user: alice, pass: alicePass})
	if res.status != 200 || !strings.Contains(res.body, `"command":"position","ok":true`) {
		t.Errorf("position 40: got %d %s, want 200 ok", res.status, res.body)
	}
	res = r.do(req{method: "POST", path: "/api/command", body: `{"command":"position"}`, user: alice, pass: alicePass})
	if res.status != 400 || !strings.Contains(res.body, `"error":"malformed"`) {
		t.Errorf("position without a target: got %d %s, want 400 malformed", res.status, res.body)
	}
	r.g.mu.Lock()
	defer r.g.mu.Unlock()
	if len(r.g.calls) != 1 || r.g.calls[0].cmd != gate.CmdPosition || r.g.targets[0] != 40 {
		t.Errorf("the gate was asked %v with targets %v, want one position 40", r.g.calls, r.g.targets)
	}
}

func TestThrottle(t *testing.T) {
	r := newRig(t, weblink.Config{})
	for i := 1; i <= webauth.DefaultMaxFailures; i++ {
		want := 401
		if i == webauth.DefaultMaxFailures {
			want = 429 // the fifth failure starts the block
		}
		if res := r.do(req{method: "POST", path: "/api/command", body: `{"command":"open"}`, user: alice, pass: "guess"}); res.status != want {
			t.Fatalf("bad password %d: got %d, want %d", i, res.status, want)
		}
	}
	res := r.do(req{method: "POST", path: "/api/command", body: `{"command":"open"}`, user: alice, pass: alicePass})
	if res.status != http.StatusTooManyRequests || res.header.Get("Retry-After") == "" {
		t.Errorf("right password after five bad ones: got %d (Retry-After %q), want 429 with Retry-After", res.status, res.header.Get("Retry-After"))
	}
	res = r.do(req{method: "POST", path: "/login", form: url.Values{"user": {alice}, "password": {alicePass}}, headers: sameOrigin})
	if res.status != http.StatusTooManyRequests || !strings.Contains(res.body, "Too many failed logins") {
		t.Errorf("login form after five bad passwords: got %d %q, want 429 and the sentence", res.status, res.body)
	}
	if calls := r.g.callsSoFar(); len(calls) != 0 {
		t.Errorf("a throttled request reached the gate: %v", calls)
	}
	r.clk.Advance(webauth.DefaultBlock + time.Second)
	if res := r.do(req{path: "/api/status", user: alice, pass: alicePass}); res.status != 200 {
		t.Errorf("a minute later: got %d, want 200", res.status)
	}
}

func TestPublicStatus(t *testing.T) {
	for _, public := range []bool{false, true} {
		r := newRig(t, weblink.Config{PublicStatus: public})
		want := 401
		if public {
			want = 200
		}
		if res := r.do(req{path: "/api/status"}); res.status != want {
			t.Errorf("public_status %v: GET /api/status without credentials: got %d, want %d", public, res.status, want)
		}
		if res := r.do(req{path: "/api/events"}); res.status != 401 {
			t.Errorf("public_status %v: GET /api/events without credentials: got %d, want 401", public, res.status)
		}
	}
}

// TestForms: the panel without JavaScript, a session cookie and the CSRF
// token.
func TestForms(t *testing.T) {
	r := newRig(t, weblink.Config{})
	if res := r.do(req{method: "POST", path: "/login", form: url.Values{"user": {alice}, "password": {"nope"}}, headers: sameOrigin}); res.status != 401 || !strings.Contains(res.body, "Wrong user name or password") || res.cookie != nil {
		t.Errorf("login with a wrong password: got %d %q", res.status, res.body)
	}
	if res := r.do(req{method: "POST", path: "/login", form: url.Values{"user": {alice}, "password": {alicePass}}, headers: map[string]string{"Origin": "http://evil.example"}}); res.status != 403 || res.cookie != nil {
		t.Errorf("login from another site: got %d, want 403 and no cookie", res.status)
	}
	cookie, csrf := r.login(alice, alicePass)
	form := func(cmd, token string, hd map[string]string) resp {
		return r.do(req{method: "POST", path: "/command", form: url.Values{"command": {cmd}, "csrf": {token}}, cookie: cookie, headers: hd})
	}
	if res := form("open", "", sameOrigin); res.status != 403 || !strings.Contains(res.body, `"error":"csrf"`) {
		t.Errorf("form without the CSRF token: got %d %q, want 403 csrf", res.status, res.body)
	}
	if res := form("open", csrf, map[string]string{"Sec-Fetch-Site": "cross-site"}); res.status != 403 {
		t.Errorf("form from another site: got %d, want 403", res.status)
	}
	if calls := r.g.callsSoFar(); len(calls) != 0 {
		t.Fatalf("refused forms reached the gate: %v", calls)
	}
	res := form("open", csrf, sameOrigin)
	if loc := res.header.Get("Location"); res.status != http.StatusSeeOther || loc != "/?command=open&done=1" {
		t.Errorf("open: got %d to %q, want 303 to /?command=open&done=1", res.status, loc)
	}
	if calls := r.g.callsSoFar(); len(calls) != 1 || calls[0].who != alice || calls[0].cause != gate.CauseWeb {
		t.Errorf("the gate was asked %v, want open by alice (web)", calls)
	}
	r.g.refuse = &gate.RefusedError{Reason: gate.ReasonObstructed, Msg: "obstructed"}
	res = form("close", csrf, sameOrigin)
	if loc := res.header.Get("Location"); loc != "/?command=close&refused=obstructed" {
		t.Fatalf("refused close: redirect to %q", loc)
	}
	panel := r.do(req{path: "/?command=close&refused=obstructed", cookie: cookie})
	if !strings.Contains(panel.body, "something is in the gate") {
		t.Errorf("panel after a refusal: no refusal sentence in %q", panel.body)
	}
	// The JavaScript path: the session and the token in a header.
	r.g.refuse = nil
	res = r.do(req{method: "POST", path: "/api/command", body: `{"command":"stop"}`, cookie: cookie, headers: map[string]string{"Sec-Fetch-Site": "same-origin", webauth.CSRFHeader: csrf}})
	if res.status != 200 {
		t.Errorf("fetch with the session and the token: got %d %q", res.status, res.body)
	}
	// A viewer's panel has its buttons disabled, and the form refuses.
	bc, bcsrf := r.login(bob, bobPass)
	if p := r.do(req{path: "/", cookie: bc}); !strings.Contains(p.body, "You may look, but not command") {
		t.Errorf("viewer's panel does not say so")
	}
	if res := r.do(req{method: "POST", path: "/command", form: url.Values{"command": {"open"}, "csrf": {bcsrf}}, cookie: bc, headers: sameOrigin}); res.status != 403 {
		t.Errorf("viewer's form: got %d, want 403", res.status)
	}
	// Log out: the cookie no longer works.
	if res := r.do(req{method: "POST", path: "/logout", form: url.Values{"csrf": {csrf}}, cookie: cookie, headers: sameOrigin}); res.status != http.StatusSeeOther {
		t.Errorf("logout: got %d", res.status)
	}
	if res := r.do(req{path: "/api/status", cookie: cookie}); res.status != 401 {
		t.Errorf("status after logout: got %d, want 401", res.status)
	}
}

// TestPanelHasNoInlineScript: the CSP forbids inline script, so the page
// must have none (it would silently not run).
func TestPanelHasNoInlineScript(t *testing.T) {
	r := newRig(t, weblink.Config{})
	r.g.set(func(s *gate.Status) { s.Obstructed = true })
	cookie, _ := r.login(alice, alicePass)
	p := r.do(req{path: "/", cookie: cookie})
	for _, m := range regexp.MustCompile(`<script[^>]*>`).FindAllString(p.body, -1) {
		if !strings.Contains(m, `src="/static/`) && !strings.Contains(m, `type="application/json"`) {
			t.Errorf("inline script %s", m)
		}
	}
	if regexp.MustCompile(`\son[a-z]+=`).MatchString(p.body) || strings.Contains(p.body, "style=") {
		t.Errorf("inline handler or style in the panel")
	}
	if !strings.Contains(p.body, "Something is in the gate&#39;s way") {
		t.Errorf("obstructed gate: the panel does not say what to do")
	}
}

func TestEvents(t *testing.T) {
	r := newRig(t, weblink.Config{})
	r.h.evs = []history.Event{{Seq: 2, At: time.Date(2026, 12, 2, 10, 15, 3, 512e6, time.UTC), Kind: history.KindCommand, Command: "open", Source: "web", Who: alice, OK: true, State: "opening"}}
	res := r.do(req{path: "/api/events?limit=5&before=9", user: bob, pass: bobPass})
	want := `[{"seq":2,"at":"2026-12-02T10:15:03.512Z","kind":"command","command":"open","source":"web","who":"alice","ok":true,"error":"","state":"opening"}]`
	if res.status != 200 || strings.TrimSpace(res.body) != want {
		t.Errorf("got %d %s, want %s", res.status, res.body, want)
	}
	if r.h.limit != 5 || r.h.before != 9 {
		t.Errorf("List(%d, %d), want List(5, 9)", r.h.limit, r.h.before)
	}
	r.h.evs = nil
	if res := r.do(req{path: "/api/events", user: bob, pass: bobPass}); strings.TrimSpace(res.body) != "[]" {
		t.Errorf("no events: got %q, want []", res.body)
	}
}

func TestHealthz(t *testing.T) {
	r := newRig(t, weblink.Config{})
	r.running.Store(false)
	if res := r.do(req{path: "/healthz"}); res.status != 503 {
		t.Errorf("gate not running: got %d, want 503", res.status)
	}
}

func TestMetrics(t *testing.T) {
	r := newRig(t, weblink.Config{})
	r.do(req{method: "POST", path: "/api/command", body: `{"command":"open"}`, user: alice, pass: alicePass})
	r.g.refuse = &gate.RefusedError{Reason: gate.ReasonObstructed, Msg: "obstructed"}
	r.do(req{method: "POST", path: "/api/command", body: `{"command":"close"}`, user: alice, pass: alicePass})
	want := []string{
		`gated_commands_total{result="ok",source="web"} 1`,
		`gated_commands_total{result="refused",source="web"} 1`,
		`gated_refusals_total{reason="obstructed"} 1`,
		`gated_transitions_total{state="opening"} 1`,
		`gated_mqtt_connected 1`,
		`gated_dbus_connected 0`,
		`gated_last_change_timestamp_seconds 1.796206503512e+09`,
		`gated_uptime_seconds 0`,
	}
	var body string
	// The counters follow the gate's records on a goroutine of their own.
	waitfor.Until(10*time.Second, func() bool {
		body = r.do(req{path: "/metrics", user: bob, pass: bobPass}).body
		return strings.Contains(body, want[1]) && strings.Contains(body, want[3])
	})
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("metrics lack %s in\n%s", w, grepGated(body))
		}
	}
}

func TestStream(t *testing.T) {
	r := newRig(t, weblink.Config{})
	hr, _ := http.NewRequest("GET", r.url+"/api/stream", nil)
	hr.SetBasicAuth(bob, bobPass)
	res, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); res.StatusCode != 200 || ct != "text/event-stream" {
		t.Fatalf("got %d %s", res.StatusCode, ct)
	}
	rd := bufio.NewReader(res.Body)
	next := func() (event, data string) {
		t.Helper()
		for {
			line, err := rd.ReadString('\n')
			if err != nil {
				t.Fatalf("stream: %v", err)
			}
			line = strings.TrimRight(line, "\n")
			switch {
			case line == "" && (event != "" || data != ""):
				return event, data
			case strings.HasPrefix(line, "event: "):
				event = line[len("event: "):]
			case strings.HasPrefix(line, "data: "):
				data = line[len("data: "):]
			case strings.HasPrefix(line, ": "):
				return "comment", line
			}
		}
	}
	status := func() gate.Status {
		t.Helper()
		for {
			ev, data := next()
			if ev == "status" {
				var st gate.Status
				if err := json.Unmarshal([]byte(data), &st); err != nil {
					t.Fatal(err)
				}
				return st
			}
		}
	}
	if ev, data := next(); ev != "links" || data != `{"mqtt":true,"dbus":null}` {
		t.Errorf("first event %s %s, want the links", ev, data)
	}
	if st := status(); st.State != gate.Closed || st.Seq != 1 {
		t.Errorf("on connect: got %s seq %d, want the current status", st.State, st.Seq)
	}
	r.g.set(func(s *gate.Status) { s.State = gate.Opening })
	if st := status(); st.State != gate.Opening || st.Seq != 2 {
		t.Errorf("after a change: got %s seq %d, want opening seq 2", st.State, st.Seq)
	}
	r.clk.BlockUntilContext(context.Background(), 1) // the stream's heartbeat ticker
	r.clk.Advance(weblink.StreamHeartbeat)
	for {
		if ev, _ := next(); ev == "comment" {
			break
		}
	}
	// The stream ends with the server.
	r.cancel()
	if _, err := io.ReadAll(rd); err != nil {
		t.Errorf("stream end: %v", err)
	}
}

func grepGated(body string) string {
	var out []string
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, "gated_") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
