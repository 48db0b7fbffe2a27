package weblink

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jonboulle/clockwork"
	"rocksaying.tw/gated/internal/gate"
	"rocksaying.tw/gated/internal/history"
	"rocksaying.tw/gated/internal/webauth"
)

// MaxBody is the largest command body read, in bytes, as MQTT's MaxPayload.
const MaxBody = 1024

// ReasonMalformed is the refusal of a body that is not a command document.
const ReasonMalformed gate.Reason = "malformed"

// commandTimeout bounds a command's wait for the gate (then: busy).
const commandTimeout = 5 * time.Second

func (l *Link) routes() http.Handler {
	a := l.opt.Auth
	statusRole := webauth.Viewer
	if l.cfg.PublicStatus {
		statusRole = webauth.Anyone
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", l.healthz)
	mux.Handle("GET /api/status", a.Require(statusRole, http.HandlerFunc(l.status)))
	mux.Handle("POST /api/command", a.Require(webauth.Operator, http.HandlerFunc(l.command)))
	mux.Handle("GET /api/events", a.Require(webauth.Viewer, http.HandlerFunc(l.events)))
	mux.Handle("GET /api/stream", a.Require(webauth.Viewer, http.HandlerFunc(l.stream)))
	mux.Handle("GET /metrics", a.Require(webauth.Viewer, l.metrics.handler()))
	// The panel and its forms, for browsers.
	mux.Handle("GET /{$}", a.Require(webauth.Anyone, http.HandlerFunc(l.panel)))
	mux.Handle("POST /command", a.Require(webauth.Operator, http.HandlerFunc(l.formCommand)))
	mux.HandleFunc("GET /login", l.loginPage)
	mux.HandleFunc("POST /login", l.login)
	mux.Handle("POST /logout", a.Require(webauth.Viewer, http.HandlerFunc(l.logout)))
	l.pages.mount(mux)
	return mux
}

func (l *Link) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if !l.opt.Running() {
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "the gate is not running\n")
		return
	}
	io.WriteString(w, "ok\n")
}

func (l *Link) status(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, l.g.Status().JSON())
}

// result is the answer to a command: MQTT's result document (SPEC.md), with
// the id echoed when the request had one.
type result struct {
	ID      string     `json:"id,omitempty"`
	Command string     `json:"command"`
	OK      bool       `json:"ok"`
	State   gate.State `json:"state,omitempty"`
	Error   string     `json:"error,omitempty"`   // the machine reason
	Message string     `json:"message,omitempty"` // a sentence for people
}

type commandJSON struct {
	Command  *string `json:"command"`
	ID       string  `json:"id"`
	Position *int    `json:"position"` // {"command":"position","position":40}
}

// command is POST /api/command: 200 ok, 409 refused by the gate, 400 not a
// command.
func (l *Link) command(w http.ResponseWriter, r *http.Request) {
	var j commandJSON
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err == nil {
		err = json.Unmarshal(body, &j)
	}
	if err == nil && j.Command == nil {
		err = errors.New(`no "command" string`)
	}
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			err = fmt.Errorf("body over %d bytes", MaxBody)
		}
		l.answer(w, result{ID: j.ID, OK: false, Error: string(ReasonMalformed),
			Message: `want a JSON body {"command":"open"}: ` + err.Error()}, http.StatusBadRequest)
		return
	}
	req, err := request(*j.Command, j.Position)
	if err != nil {
		var re *gate.RefusedError
		errors.As(err, &re)
		l.answer(w, result{ID: j.ID, Command: shorten(*j.Command), Error: string(re.Reason), Message: re.Msg}, http.StatusBadRequest)
		return
	}
	id, _ := webauth.FromContext(r.Context())
	res, code := l.do(r, req, id.User)
	res.ID = j.ID
	l.answer(w, res, code)
}

// request is the gate's request for a command word, and for "position"
// its target (SPEC.md "Position"); a *gate.RefusedError when it is neither.
func request(word string, position *int) (gate.Request, error) {
	if strings.EqualFold(strings.TrimSpace(word), string(gate.CmdPosition)) {
		if position == nil {
			return gate.Request{}, &gate.RefusedError{Reason: ReasonMalformed, Msg: `command "position" needs "position": an integer 0 (closed) to 100 (open), as in {"command":"position","position":40}`}
		}
		return gate.Request{Cmd: gate.CmdPosition, Target: *position}, nil
	}
	cmd, err := gate.ParseCommand(word)
	return gate.Request{Cmd: cmd}, err
}

// do asks the gate and says what to answer.
func (l *Link) do(r *http.Request, req gate.Request, user string) (result, int) {
	cmd := req.Cmd
	ctx, cancel := clockwork.WithTimeout(r.Context(), l.clk, commandTimeout)
	defer cancel()
	req.Cause, req.Who = gate.CauseWeb, user
	st, err := l.g.Send(ctx, req)
	if err != nil {
		res := result{Command: string(cmd), Error: "refused", Message: err.Error(), State: st.State}
		var re *gate.RefusedError
		if errors.As(err, &re) {
			res.Error = string(re.Reason)
		}
		l.log.Info("web command refused", "command", cmd, "user", user, "reason", res.Error)
		return res, http.StatusConflict
	}
	l.log.Info("web command", "command", cmd, "user", user, "state", st.State)
	return result{Command: string(cmd), OK: true, State: st.State}, http.StatusOK
}

func shorten(s string) string {
	const shown = 32
	if len(s) > shown {
		return s[:shown] + "…"
	}
	return s
}

func (l *Link) answer(w http.ResponseWriter, res result, code int) {
	b, _ := json.Marshal(res)
	writeJSON(w, code, b)
}

func writeJSON(w http.ResponseWriter, code int, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(b)
	w.Write([]byte("\n"))
}

// events is GET /api/events?limit=N&before=SEQ.
func (l *Link) events(w http.ResponseWriter, r *http.Request) {
	limit, before, err := pageOf(r.URL.Query())
	if err != nil {
		l.answer(w, result{Error: string(ReasonMalformed), Message: err.Error()}, http.StatusBadRequest)
		return
	}
	evs, err := l.list(limit, before)
	if err != nil {
		l.log.Warn("reading the event history failed", "err", err)
		l.answer(w, result{Error: "history", Message: "the event history cannot be read"}, http.StatusServiceUnavailable)
		return
	}
	b, _ := json.Marshal(evs)
	writeJSON(w, http.StatusOK, b)
}

func pageOf(q url.Values) (limit int, before uint64, err error) {
	if s := q.Get("limit"); s != "" {
		if limit, err = strconv.Atoi(s); err != nil || limit < 0 {
			return 0, 0, fmt.Errorf("limit %q: want a number of events", shorten(s))
		}
	}
	if s := q.Get("before"); s != "" {
		if before, err = strconv.ParseUint(s, 10, 64); err != nil {
			return 0, 0, fmt.Errorf("before %q: want an event's seq", shorten(s))
		}
	}
	return limit, before, nil
}

func (l *Link) list(limit int, before uint64) ([]history.Event, error) {
	if l.opt.History == nil {
		return []history.Event{}, nil
	}
	evs, err := l.opt.History.List(limit, before)
	if evs == nil {
		evs = []history.Event{}
	}
	return evs, err
}

// stream is GET /api/stream: the current status at once, then every new
// one, as Server-Sent Events (event: status), plus the links' connection
// state (event: links) and a comment every StreamHeartbeat. It ends when
// the client goes or the server stops.
func (l *Link) stream(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	// The stream outlives WriteTimeout: each write gets its own deadline.
	rc.SetWriteDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no") // nginx: pass events on at once
	w.WriteHeader(http.StatusOK)
	sts, cancel := l.g.Subscribe()
	defer cancel()
	beat := l.clk.NewTicker(StreamHeartbeat)
	defer beat.Stop()
	send := func(chunks ...string) bool {
		rc.SetWriteDeadline(l.clk.Now().Add(WriteTimeout))
		for _, c := range chunks {
			if _, err := io.WriteString(w, c); err != nil {
				return false
			}
		}
		return rc.Flush() == nil
	}
	links := func() string { return "event: links\ndata: " + string(l.linksJSON()) + "\n\n" }
	if !send("retry: 2000\n\n", links()) {
		return
	}
	for {
		select {
		case <-r.Context().Done():
			return
		case st := <-sts:
			if !send("event: status\ndata: "+string(st.JSON())+"\n\n", links()) {
				return
			}
		case <-beat.Chan():
			if !send(": keep-alive\n\n", links()) {
				return
			}
		}
	}
}

type linksDoc struct {
	MQTT *bool `json:"mqtt"` // null: not configured
	DBus *bool `json:"dbus"`
}

func call(f func() bool) *bool {
	if f == nil {
		return nil
	}
	v := f()
	return &v
}

func (l *Link) linksJSON() []byte {
	b, _ := json.Marshal(linksDoc{call(l.opt.MQTTConnected), call(l.opt.DBusConnected)})
	return b
}

// formCommand is the panel's command form (POST /command), for a browser
// without JavaScript: it answers with a redirect back to the panel, which
// shows the outcome.
func (l *Link) formCommand(w http.ResponseWriter, r *http.Request) {
	id, _ := webauth.FromContext(r.Context())
	var res result
	word := r.PostFormValue("command")
	var target *int
	if v := r.PostFormValue("position"); v != "" {
		if n, err := strconv.Atoi(v); err == nil {
			target = &n
		}
	}
	if req, err := request(word, target); err != nil {
		var re *gate.RefusedError
		errors.As(err, &re)
		res = result{Command: shorten(word), Error: string(re.Reason), Message: re.Msg}
	} else {
		res, _ = l.do(r, req, id.User)
	}
	q := url.Values{"command": {res.Command}}
	if res.OK {
		q.Set("done", "1")
	} else {
		q.Set("refused", res.Error)
	}
	http.Redirect(w, r, "/?"+q.Encode(), http.StatusSeeOther)
}

func (l *Link) login(w http.ResponseWriter, r *http.Request) {
	user := r.PostFormValue("user")
	_, err := l.opt.Auth.LogIn(w, r, user, r.PostFormValue("password"))
	code, msg := http.StatusOK, ""
	switch {
	case err == nil:
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	case errors.Is(err, webauth.ErrCrossOrigin):
		code, msg = http.StatusForbidden, "Refused: this form was sent from another site."
	case errors.Is(err, webauth.ErrThrottled):
		code, msg = http.StatusTooManyRequests, "Too many failed logins from this address: wait a minute, then try again."
	default:
		code, msg = http.StatusUnauthorized, "Wrong user name or password."
	}
	l.log.Info("web login refused", "user", shorten(user), "addr", webauth.ClientAddr(r), "err", err)
	l.pages.login(w, code, user, msg)
}

func (l *Link) loginPage(w http.ResponseWriter, r *http.Request) {
	l.pages.login(w, http.StatusOK, "", "")
}

func (l *Link) logout(w http.ResponseWriter, r *http.Request) {
	l.opt.Auth.LogOut(w, r)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// refusalSentence says what to do about a refusal, for the panel.
func refusalSentence(reason string) string {
	switch gate.Reason(reason) {
	case gate.ReasonObstructed:
		return "Refused: something is in the gate's way. Clear the opening, then try again."
	case gate.ReasonFault:
		return "Refused: both limit switches are active at once. Check the switches and their wiring."
	case gate.ReasonBusy:
		return "Refused: the gate did not answer in time. Try again."
	case gate.ReasonStopped:
		return "Refused: gated is stopping or restarting. Try again in a moment."
	case gate.ReasonUnknown, ReasonMalformed:
		return "Refused: not a command."
	case "":
		return ""
	}
	return "Refused: " + strings.ReplaceAll(reason, "_", " ") + "."
}
