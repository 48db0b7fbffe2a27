package demobroker

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"rocksaying.tw/gated/internal/mqttlink/mqtttest"
	"rocksaying.tw/gated/internal/syncbuf"
)

func TestStartServesMQTT(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, stop, err := Start(ctx, "127.0.0.1:0", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(stop)
	if host, port, _ := net.SplitHostPort(addr); host != "127.0.0.1" || port == "0" {
		t.Fatalf("bound address %q, want 127.0.0.1 and a real port", addr)
	}

	// Anyone may connect; retained messages reach late subscribers.
	pub := mqtttest.Connect(t, "tcp://"+addr)
	pub.PublishRetained("demo/state", []byte("closed"))
	sub := mqtttest.Connect(t, "tcp://"+addr)
	select {
	case m := <-sub.Subscribe("demo/#"):
		if m.Topic != "demo/state" || m.Payload != "closed" || !m.Retained {
			t.Errorf("got %+v, want retained closed on demo/state", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no retained message in 5s")
	}

	stop()
	stop() // twice is fine
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Errorf("still listening on %s after stop", addr)
	}
}

func TestStartStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	logs := &syncbuf.Buffer{}
	addr, stop, err := Start(ctx, "127.0.0.1:0", slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer stop()
	cancel()
	// No probe while it stops: a connection that mochi accepts during its
	// Close is a data race of mochi's own (mochi-mqtt/server#541).
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "demo broker stopped") {
		if time.Now().After(deadline) {
			t.Fatalf("not stopped 5s after the context ended:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Errorf("still listening on %s after the context ended", addr)
	}
}

func TestStartRefuses(t *testing.T) {
	taken, stop, err := Start(context.Background(), "127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	// cmd/gated falls back to a broker already on the port: it must be
	// able to tell that case apart.
	if _, stop, err := Start(context.Background(), taken, nil); !errors.Is(err, syscall.EADDRINUSE) {
		if stop != nil {
			stop()
		}
		t.Errorf("Start on a taken port: %v, want EADDRINUSE", err)
	}
	for _, addr := range []string{"0.0.0.0:1883", "192.0.2.1:1883", ":1883", "no-port"} {
		t.Run(addr, func(t *testing.T) {
			if _, stop, err := Start(context.Background(), addr, nil); err == nil {
				stop()
				t.Errorf("Start(%q) succeeded, want an error", addr)
			}
		})
	}
}

func TestStopIsQuiet(t *testing.T) {
	var logs syncbuf.Buffer
	addr, stop, err := Start(context.Background(), "127.0.0.1:0", slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	c := mqtttest.Connect(t, "tcp://"+addr)
	c.Subscribe("x")
	stop()
	if s := logs.String(); strings.Contains(s, "level=WARN") || strings.Contains(s, "level=ERROR") {
		t.Errorf("stopping with a client connected logged warnings:\n%s", s)
	}
}
