package weblink

import (
	"context"
	"errors"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"rocksaying.tw/gated/internal/gate"
)

// metrics are GET /metrics: in a registry of the link's own, so that
// nothing registered elsewhere in the process leaks into it. Commands are
// counted from the gate's command records, whatever their source; those
// refused before reaching the gate (an MQTT message too old, a body that
// is not a command) are not.
type metrics struct {
	reg         *prometheus.Registry
	transitions *prometheus.CounterVec
	commands    *prometheus.CounterVec
	refusals    *prometheus.CounterVec
}

func newMetrics(l *Link) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gated_transitions_total", Help: "Status changes to each state.",
		}, []string{"state"}),
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gated_commands_total", Help: "Commands answered by the gate, by source (mqtt, dbus, web, …) and result (ok, refused).",
		}, []string{"source", "result"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gated_refusals_total", Help: "Commands refused by the gate, by reason.",
		}, []string{"reason"}),
	}
	connected := func(f func() bool) float64 {
		if f != nil && f() {
			return 1
		}
		return 0
	}
	m.reg.MustRegister(m.transitions, m.commands, m.refusals,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "gated_mqtt_connected", Help: "1 while the MQTT link is connected to the broker.",
		}, func() float64 { return connected(l.opt.MQTTConnected) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "gated_dbus_connected", Help: "1 while the D-Bus link is connected to its bus.",
		}, func() float64 { return connected(l.opt.DBusConnected) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "gated_uptime_seconds", Help: "Seconds since gated started.",
		}, func() float64 { return l.clk.Since(l.started).Seconds() }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "gated_last_change_timestamp_seconds", Help: "Unix time of the last change of state (the status's since).",
		}, func() float64 {
			since := l.g.Status().Since
			if since.IsZero() {
				return 0
			}
			return float64(since.UnixMilli()) / 1e3
		}),
	)
	for _, s := range []gate.State{gate.Closed, gate.Opening, gate.Open, gate.Closing, gate.Stopped, gate.Unknown, gate.Faulted} {
		m.transitions.WithLabelValues(string(s)) // present at 0 from the start
	}
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// watch counts transitions and commands until ctx ends.
func (m *metrics) watch(ctx context.Context, g Gate) {
	sts, cancel := g.Subscribe()
	defer cancel()
	cmds, cancelCmds := g.SubscribeCommands()
	defer cancelCmds()
	last := (<-sts).State
	for {
		select {
		case <-ctx.Done():
			return
		case st := <-sts:
			if st.State != last {
				m.transitions.WithLabelValues(string(st.State)).Inc()
				last = st.State
			}
		case r := <-cmds:
			m.countCommand(r)
		}
	}
}

func (m *metrics) countCommand(r gate.Reply) {
	if r.Err == nil {
		m.commands.WithLabelValues(string(r.Cause), "ok").Inc()
		return
	}
	m.commands.WithLabelValues(string(r.Cause), "refused").Inc()
	reason := "refused"
	var re *gate.RefusedError
	if errors.As(r.Err, &re) {
		reason = string(re.Reason)
	}
	m.refusals.WithLabelValues(reason).Inc()
}
