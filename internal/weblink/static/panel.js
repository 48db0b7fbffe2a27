// gated's panel: live status over Server-Sent Events, and the buttons as
// fetch calls. Without this script the page still works: its buttons are
// forms and a reload shows the news.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const texts = JSON.parse($("texts").textContent);
  const csrf = document.querySelector('input[name="csrf"]').value;

  function show(el, text) {
    el.textContent = text || "";
    el.hidden = !text;
  }

  function alertOf(st) {
    if (st.fault) {
      return texts.alerts[st.fault] || "The gate has a fault (" + st.fault + "). Check it, then press Stop.";
    }
    return st.obstructed ? texts.alerts.obstructed : "";
  }

  function when(iso) {
    const d = new Date(iso);
    if (isNaN(d)) return iso;
    return d.toLocaleString([], { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
  }

  function orDash(v) { return v === undefined || v === null ? "–" : String(v); }

  function render(st) {
    const state = $("state");
    state.textContent = st.state;
    state.className = "state state-" + st.state;
    const hasPos = typeof st.position === "number";
    $("position-box").hidden = !hasPos;
    if (hasPos) {
      $("position").value = st.position;
      $("position").textContent = st.position + "%";
      $("position-text").textContent = st.position + "%";
    }
    $("warning").hidden = !st.warning;
    show($("alert"), alertOf(st));
    $("alarm").textContent = st.alarm ? "on" : "off";
    $("since").textContent = when(st.since);
    $("since").setAttribute("datetime", st.since);
    $("cause").textContent = String(st.cause || "").replaceAll("_", " ");
    for (const k of ["auto_close", "openings", "obstructions", "faults"]) {
      // Shown when the status has the field: older gated versions do not.
      $("row-" + k).hidden = !(k in st);
      $(k).textContent = orDash(st[k]);
    }
  }

  function linkWord(v) { return v === null ? "off" : v ? "connected" : "disconnected"; }

  function renderLinks(l) {
    $("mqtt").textContent = linkWord(l.mqtt);
    $("dbus").textContent = linkWord(l.dbus);
  }

  function describe(e) {
    const at = when(e.at);
    if (e.kind === "command") {
      return at + " " + e.command + " by " + (e.who || e.source) + " (" + e.source + "): " + (e.ok ? "ok" : "refused, " + e.error);
    }
    return at + " " + e.state + " (" + String(e.cause || "").replaceAll("_", " ") + ")";
  }

  async function loadEvents() {
    try {
      const r = await fetch("/api/events?limit=10", { credentials: "same-origin" });
      if (!r.ok) return;
      const evs = await r.json();
      const ol = $("events");
      ol.replaceChildren();
      for (const e of evs) {
        const li = document.createElement("li");
        li.textContent = describe(e);
        ol.appendChild(li);
      }
      if (evs.length === 0) {
        const li = document.createElement("li");
        li.textContent = "No events yet.";
        ol.appendChild(li);
      }
    } catch (_) { /* the stream shows that gated is away */ }
  }

  let live = false;
  function setLive(on) {
    live = on;
    const el = $("live");
    el.textContent = on ? "connected" : "disconnected: reconnecting…";
    el.className = on ? "" : "live-off";
    document.body.classList.toggle("offline", !on);
  }

  let source = null;
  function connect() {
    source = new EventSource("/api/stream");
    source.addEventListener("open", () => setLive(true));
    source.addEventListener("status", (ev) => {
      setLive(true);
      render(JSON.parse(ev.data));
      loadEvents();
    });
    source.addEventListener("links", (ev) => renderLinks(JSON.parse(ev.data)));
    source.addEventListener("error", () => {
      setLive(false);
      if (source.readyState === EventSource.CLOSED) {
        // The browser gave up (gated answered with an error, e.g. after a
        // restart ended the session): check the session, then start over.
        source.close();
        setTimeout(async () => {
          try {
            const r = await fetch("/api/status", { credentials: "same-origin" });
            if (r.status === 401) { location.href = "/login"; return; }
          } catch (_) { /* still away */ }
          connect();
        }, 2000);
      }
    });
  }

  $("commands").addEventListener("submit", async (ev) => {
    const button = ev.submitter;
    if (!button || !button.value) return;
    ev.preventDefault();
    show($("refusal"), "");
    $("done").textContent = "";
    try {
      const r = await fetch("/api/command", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
        body: JSON.stringify({ command: button.value }),
      });
      let res = {};
      try { res = await r.json(); } catch (_) { /* not a document */ }
      if (r.ok && res.ok) {
        $("done").textContent = "Done: " + button.value + ".";
        // The stream brings the status the command made, in order with
        // every other; the answer may arrive after a newer status, so it
        // is shown only while the stream is down.
        if (res.state && !live) {
          $("state").textContent = res.state;
          $("state").className = "state state-" + res.state;
        }
      } else {
        show($("refusal"), texts.refusals[res.error] || res.message || "Refused (HTTP " + r.status + ").");
      }
    } catch (_) {
      show($("refusal"), "gated did not answer: check the connection.");
    }
  });

  render(JSON.parse($("initial").textContent));
  setLive(false);
  connect();
})();
