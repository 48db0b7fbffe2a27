package weblink

import (
	"bytes"
	"embed"
	"encoding/json"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"rocksaying.tw/gated/internal/gate"
	"rocksaying.tw/gated/internal/history"
	"rocksaying.tw/gated/internal/webauth"
)

// The panel: server-rendered templates, a small plain script and a style
// sheet, all embedded so that it works on a Pi without internet. The page
// works without JavaScript (its buttons are forms posting to /command);
// the script only makes it live (EventSource) and spares the reloads.
//
//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// panelEvents is how many events the panel shows.
const panelEvents = 10

type pages struct {
	panel, loginT *template.Template
	static        http.Handler
}

func newPages() (*pages, error) {
	funcs := template.FuncMap{"sentence": refusalSentence, "when": when, "words": words,
		"has": func(m map[string]any, k string) bool { _, ok := m[k]; return ok }}
	p := &pages{}
	var err error
	if p.panel, err = template.New("panel.html").Funcs(funcs).ParseFS(templateFS, "templates/panel.html", "templates/head.html"); err != nil {
		return nil, err
	}
	if p.loginT, err = template.New("login.html").Funcs(funcs).ParseFS(templateFS, "templates/login.html", "templates/head.html"); err != nil {
		return nil, err
	}
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	p.static = http.FileServerFS(sub)
	return p, nil
}

func (p *pages) mount(mux *http.ServeMux) {
	mux.Handle("GET /static/", http.StripPrefix("/static", p.static))
	mux.HandleFunc("GET /manifest.webmanifest", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/manifest+json")
		b, _ := staticFS.ReadFile("static/manifest.webmanifest")
		w.Write(b)
	})
}

// sentences say what each fault, and an obstruction, mean for the person in
// front of the panel: what to do.
var sentences = map[string]string{
	"obstructed":     "Something is in the gate's way. Clear the opening: the gate will not close while it is blocked.",
	"travel_timeout": "The gate did not reach its limit in time and stopped. Look for an obstacle or a jammed motor, then press Open, Close or Stop.",
	"limit_conflict": "Both limit switches are active at once. Check the switches and their wiring.",
	"gpio":           "gated could not drive the gate's outputs. Check the wiring and gated's log (journalctl -u gated).",
	"sensor_test":    "The photo eye failed its self-test. Clean and align it: the gate will not close by itself until it passes.",
}

// panelData is what the panel template shows.
type panelData struct {
	Gate     string
	User     string
	Operator bool
	CSRF     string
	Status   map[string]any // the status document, with whatever fields it has
	StatusJS any            // the same, for the script
	Alert    string         // the obstruction or fault sentence
	Refusal  string         // the outcome of the last form command
	Done     string
	Links    linksDoc
	Events   []history.Event
	Texts    any // sentences and refusals, for the script
}

func (l *Link) panel(w http.ResponseWriter, r *http.Request) {
	id, ok := webauth.FromContext(r.Context())
	if !ok {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	st := l.g.Status()
	doc := map[string]any{}
	raw := st.JSON()
	json.Unmarshal(raw, &doc)
	evs, _ := l.list(panelEvents, 0)
	d := panelData{
		Gate: st.Gate, User: id.User, Operator: id.Operator, CSRF: id.CSRF,
		Status: doc, StatusJS: doc,
		Alert:  alertOf(st),
		Links:  linksDoc{call(l.opt.MQTTConnected), call(l.opt.DBusConnected)},
		Events: evs,
	}
	q := r.URL.Query()
	if reason := q.Get("refused"); reason != "" {
		d.Refusal = refusalSentence(reason)
	} else if q.Get("done") != "" {
		if c, err := gate.ParseCommand(q.Get("command")); err == nil {
			d.Done = "Done: " + string(c) + "."
		}
	}
	refusals := map[string]string{}
	for _, r := range []string{"obstructed", "fault", "busy", "stopped", "unknown", "malformed", "forbidden", "unauthorized", "cross_origin", "csrf", "throttled"} {
		refusals[r] = refusalSentence(r)
	}
	refusals["forbidden"] = "Refused: you may look, but not command the gate."
	refusals["unauthorized"] = "Refused: log in again."
	refusals["csrf"] = "Refused: reload the page and try again."
	refusals["cross_origin"] = "Refused: the request came from another site."
	refusals["throttled"] = "Refused: too many failed logins from this address; wait a minute."
	d.Texts = map[string]any{"alerts": sentences, "refusals": refusals}
	render(w, l.pages.panel, http.StatusOK, d)
}

// alertOf is the sentence the panel shows in its alert box.
func alertOf(st gate.Status) string {
	if st.Fault != gate.NoFault {
		if s, ok := sentences[string(st.Fault)]; ok {
			return s
		}
		return "The gate has a fault (" + string(st.Fault) + "). Check it, then press Stop."
	}
	if st.Obstructed {
		return sentences["obstructed"]
	}
	return ""
}

type loginData struct {
	User, Message string
}

func (p *pages) login(w http.ResponseWriter, code int, user, msg string) {
	render(w, p.loginT, code, loginData{User: user, Message: msg})
}

func render(w http.ResponseWriter, t *template.Template, code int, data any) {
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		http.Error(w, "page: "+strings.TrimSpace(err.Error()), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	w.Write(b.Bytes())
}

// when shows the status's since for people, in the server's time zone
// (the script shows it in the phone's).
func when(v any) string {
	s, _ := v.(string)
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return s
	}
	return t.Local().Format("Jan 2, 15:04")
}

// words turns a cause (auto_close) into words (auto close).
func words(v any) string {
	s, _ := v.(string)
	return strings.ReplaceAll(s, "_", " ")
}
