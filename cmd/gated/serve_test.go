package main

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"rocksaying.tw/gated/internal/syncbuf"
)

// -demo's broker: one log line for its start, and the link pointed at it.
func TestDemoBroker(t *testing.T) {
	var logs syncbuf.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	cfg, err := loadConfig(flags{demo: true})
	if err != nil {
		t.Fatal(err)
	}
	stop, err := startDemoBroker(context.Background(), &cfg, "127.0.0.1:0", log)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if n := strings.Count(logs.String(), "listening"); n != 1 {
		t.Errorf("the broker's start logged %d times, want once:\n%s", n, logs.String())
	}
	if m := cfg.MQTT; m.URL != m.Broker || !strings.HasPrefix(m.URL, "tcp://127.0.0.1:") || strings.HasSuffix(m.URL, ":0") || m.TLS != nil {
		t.Errorf("broker %q, URL %q, TLS %v: want the demo broker's tcp://127.0.0.1:port, no TLS", m.Broker, m.URL, m.TLS)
	}
}
