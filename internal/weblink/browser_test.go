package weblink_test

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"rocksaying.tw/gated/internal/gate"
	"rocksaying.tw/gated/internal/history"
	"rocksaying.tw/gated/internal/waitfor"
	"rocksaying.tw/gated/internal/weblink"
)

// screenshot is where TestBrowserPanel saves the panel as a phone shows it:
// go test ./internal/weblink -run TestBrowserPanel -screenshot ../../docs/panel.png
var screenshot = flag.String("screenshot", "", "save the panel on a phone-sized viewport to `FILE` (PNG)")

// browser starts a headless Chromium of its own (a fresh profile) for one
// test. Debian's chromium is the browser (make deps installs it): without
// it the test is skipped, except under CI=true, where that is a failure.
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("chromium not found (make deps installs it): %v", err)
		}
		t.Skipf("chromium not found (make deps installs it): %v", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // start the browser
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx
}

func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.TextContent(sel))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

func logIn(t *testing.T, ctx context.Context, url, user, pass string) {
	t.Helper()
	do(t, ctx, "log in",
		chromedp.Navigate(url+"/login"),
		chromedp.WaitVisible("#user"),
		chromedp.SendKeys("#user", user),
		chromedp.SendKeys("#password", pass),
		chromedp.Click(`button[type="submit"]`),
	)
}

// TestBrowserPanel: a person logs in, presses Open and sees the gate
// opening without reloading; sees live changes; sees why Close was refused.
func TestBrowserPanel(t *testing.T) {
	ctx := browser(t)
	r := newRig(t, weblink.Config{})
	at := time.Date(2026, 12, 2, 21, 40, 0, 0, time.Local)
	r.h.evs = []history.Event{
		{Seq: 5, At: at.Add(3 * time.Minute), Kind: history.KindStatus, State: "closed", Cause: "auto_close"},
		{Seq: 4, At: at.Add(2 * time.Minute), Kind: history.KindStatus, State: "open", Cause: "input"},
		{Seq: 3, At: at.Add(time.Minute), Kind: history.KindCommand, Command: "open", Source: "mqtt", Who: "ha-phone", OK: true, State: "opening"},
		{Seq: 2, At: at.Add(30 * time.Second), Kind: history.KindCommand, Command: "close", Source: "dbus", Who: "uid 1000 (alice)", Error: "obstructed", State: "open"},
		{Seq: 1, At: at, Kind: history.KindCommand, Command: "open", Source: "web", Who: "alice", OK: true, State: "opening"},
	}
	logIn(t, ctx, r.url, alice, alicePass)
	do(t, ctx, "the panel", chromedp.WaitVisible("#state"), chromedp.Poll[chromedp.Void](`document.getElementById("live").textContent === "connected"`, chromedp.WithPollingTimeout(5*time.Second)))
	if got := text(t, ctx, "#state"); got != "closed" {
		t.Fatalf("state %q, want closed", got)
	}
	// A mark that a reload would wipe.
	do(t, ctx, "mark the page", chromedp.Evaluate[chromedp.Void](`window.notReloaded = true`))

	start := time.Now()
	do(t, ctx, "press Open", chromedp.Click(`button[value="open"]`),
		chromedp.Poll[chromedp.Void](`document.getElementById("state").textContent === "opening" && window.notReloaded === true`, chromedp.WithPollingTimeout(time.Second)))
	t.Logf("opening shown %v after the press", time.Since(start).Round(time.Millisecond))
	if calls := r.g.callsSoFar(); len(calls) != 1 || calls[0] != (call{gate.CmdOpen, gate.CauseWeb, alice}) {
		t.Errorf("the gate was asked %v, want open by alice (web)", calls)
	}

	// A change made elsewhere arrives by itself.
	r.g.set(func(s *gate.Status) { s.State, s.Moving, s.Cause = gate.Open, false, gate.CauseInput })
	do(t, ctx, "the gate opens by itself", chromedp.Poll[chromedp.Void](`document.getElementById("state").textContent === "open" && window.notReloaded === true`, chromedp.WithPollingTimeout(time.Second)))

	// Obstructed: the panel says what to do, and why Close was refused.
	r.g.set(func(s *gate.Status) { s.Obstructed = true })
	r.g.refuse = &gate.RefusedError{Reason: gate.ReasonObstructed, Msg: "the obstruction sensor is active"}
	do(t, ctx, "press Close while obstructed", chromedp.Click(`button[value="close"]`),
		chromedp.Poll[chromedp.Void](`!document.getElementById("refusal").hidden`, chromedp.WithPollingTimeout(time.Second)))
	if got, want := text(t, ctx, "#refusal"), "Refused: something is in the gate's way. Clear the opening, then try again."; got != want {
		t.Errorf("refusal %q, want %q", got, want)
	}
	if got := text(t, ctx, "#alert"); got != "Something is in the gate's way. Clear the opening: the gate will not close while it is blocked." {
		t.Errorf("alert %q", got)
	}

	if *screenshot != "" {
		r.g.refuse = nil
		r.g.set(func(s *gate.Status) {
			s.Obstructed, s.State, s.Cause, s.Since = false, gate.Closed, gate.CauseAutoClose, at.Add(3*time.Minute)
		})
		do(t, ctx, "a fresh panel", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile),
			chromedp.Navigate(r.url+"/"), chromedp.WaitVisible("#state"),
			chromedp.Poll[chromedp.Void](`document.getElementById("live").textContent === "connected"`, chromedp.WithPollingTimeout(5*time.Second)))
		png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(*screenshot, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestBrowserDisconnected: while gated is away the panel says so, and it
// comes back by itself.
func TestBrowserDisconnected(t *testing.T) {
	ctx := browser(t)
	r := newRig(t, weblink.Config{})
	logIn(t, ctx, r.url, alice, alicePass)
	do(t, ctx, "the panel", chromedp.WaitVisible("#state"), chromedp.Poll[chromedp.Void](`document.getElementById("live").textContent === "connected"`, chromedp.WithPollingTimeout(5*time.Second)))
	r.cancel() // gated stops: the stream ends
	do(t, ctx, "disconnected shown", chromedp.Poll[chromedp.Void](`document.getElementById("live").textContent.startsWith("disconnected")`, chromedp.WithPollingTimeout(5*time.Second)))
}

// TestBrowserThrottle: five wrong passwords, and the right one is refused
// for a minute.
func TestBrowserThrottle(t *testing.T) {
	ctx := browser(t)
	r := newRig(t, weblink.Config{})
	for i := 1; i <= 5; i++ {
		logIn(t, ctx, r.url, alice, fmt.Sprintf("guess %d", i))
		do(t, ctx, "refused", chromedp.WaitVisible("#login-error"))
	}
	if got := text(t, ctx, "#login-error"); got != "Too many failed logins from this address: wait a minute, then try again." {
		t.Errorf("after five wrong passwords: %q", got)
	}
	logIn(t, ctx, r.url, alice, alicePass)
	do(t, ctx, "refused", chromedp.WaitVisible("#login-error"))
	if got := text(t, ctx, "#login-error"); got != "Too many failed logins from this address: wait a minute, then try again." {
		t.Errorf("the right password while blocked: %q", got)
	}
}

// TestBrowserCrossOrigin: a page on another origin that posts the panel's
// form (even with a valid CSRF token) does not move the gate.
func TestBrowserCrossOrigin(t *testing.T) {
	ctx := browser(t)
	r := newRig(t, weblink.Config{})
	logIn(t, ctx, r.url, alice, alicePass)
	do(t, ctx, "the panel", chromedp.WaitVisible("#state"))
	csrf, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('input[name="csrf"]').value`))
	if err != nil {
		t.Fatal(err)
	}
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, `<!doctype html><form method="post" action="%s/command"><input type="hidden" name="csrf" value="%s"><button name="command" value="open" id="go">Win a prize</button></form>`, r.url, csrf)
	}))
	defer evil.Close()
	do(t, ctx, "the other site", chromedp.Navigate(evil.URL), chromedp.WaitVisible("#go"), chromedp.Click("#go"))
	var body string
	if !waitfor.Until(10*time.Second, func() bool { // the answer to the form, once it is loaded
		href, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href`))
		if err != nil || !strings.HasPrefix(href, r.url) {
			return false
		}
		body, err = chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.textContent : ""`))
		return err == nil && body != ""
	}) {
		t.Fatalf("the form's answer did not load")
	}
	if calls := r.g.callsSoFar(); len(calls) != 0 {
		t.Errorf("a form from another origin moved the gate: %v (page %q)", calls, body)
	}
	if want := `"error":"cross_origin"`; !strings.Contains(body, want) {
		t.Errorf("page %q, want %s", body, want)
	}
}
