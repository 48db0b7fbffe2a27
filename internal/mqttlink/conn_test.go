package mqttlink

import (
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"rocksaying.tw/gated/internal/config"
	"rocksaying.tw/gated/internal/gate/gatetest"
	"rocksaying.tw/gated/internal/mqttlink/mqtttest"
)

// countingConn counts read(2)-like calls on the socket under the buffer.
type countingConn struct {
	net.Conn
	reads int
}

func (c *countingConn) Read(p []byte) (int, error) { c.reads++; return c.Conn.Read(p) }

// Three PUBACKs arriving together are read with one call on the socket,
// where paho on a bare socket makes three calls per packet.
func TestBufferedConnReadsPacketsInOneCall(t *testing.T) {
	server, client := net.Pipe()
	defer server.Close()
	cc := &countingConn{Conn: client}
	bc := &bufferedConn{Conn: cc, r: newReader(cc)}
	go server.Write([]byte{0x40, 2, 0, 1, 0x40, 2, 0, 2, 0x40, 2, 0, 3})
	for range 3 { // as paho reads: the type byte, the length, the rest
		for _, n := range []int{1, 1, 2} {
			b := make([]byte, n)
			if _, err := io.ReadFull(bc, b); err != nil {
				t.Fatalf("read: %v", err)
			}
		}
	}
	if cc.reads != 1 {
		t.Errorf("%d reads on the socket for three 4-byte packets, want 1", cc.reads)
	}
}

func TestOpenConn(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	o := mqtt.NewClientOptions()
	o.ConnectTimeout = 5 * time.Second
	c, err := openConn(&url.URL{Scheme: "tcp", Host: ln.Addr().String()}, *o)
	if err != nil {
		t.Fatalf("openConn tcp: %v", err)
	}
	defer c.Close()
	if _, ok := c.(*bufferedConn); !ok {
		t.Errorf("openConn returned %T, want *bufferedConn", c)
	}
	if _, err := openConn(&url.URL{Scheme: "ws", Host: ln.Addr().String()}, *o); err == nil {
		t.Errorf("openConn ws: no error, want one (only tcp and ssl are offered)")
	}
}

func TestTLSWithClientCertificateAndPassword(t *testing.T) {
	const password = "s3cret-Pa55"
	b := mqtttest.Start(t, mqtttest.Options{TLS: true, Users: map[string]string{"gated": password, "watcher": "w"}})
	tg := gatetest.Start(t)
	log, logs := captureLog()

	watcher := mqtttest.Connect(t, b.URL, func(o *mqtt.ClientOptions) { o.SetUsername("watcher").SetPassword("w") })
	prefix := "test/tls"
	avail := watcher.Subscribe(prefix + "/availability")
	results := watcher.Subscribe(prefix + "/result")

	// The TLS settings as internal/config reads them from the files.
	c, err := config.FromString(fmt.Sprintf("[gpio]\ndriver = \"sim\"\n[mqtt]\nbroker = %q\nca_file = %q\ncert_file = %q\nkey_file = %q\n",
		strings.Replace(b.TLSURL, "ssl://", "mqtts://", 1), b.CAFile, b.CertFile, b.KeyFile), "tls.toml")
	if err != nil {
		t.Fatal(err)
	}
	t.Run("wrong password", func(t *testing.T) {
		l, stop := startLink(t, Config{Broker: c.MQTT.URL, TLS: c.MQTT.TLS, ClientID: "gated-tls-bad", TopicPrefix: "test/tls-bad", Username: "gated", Password: "wrong-" + password}, tg, Options{Log: log})
		waitLog(t, logs, "not Authorized")
		if l.Connected() {
			t.Errorf("connected with a wrong password")
		}
		stop()
	})

	l, _ := startLink(t, Config{Broker: c.MQTT.URL, TLS: c.MQTT.TLS, ClientID: "gated-tls", TopicPrefix: prefix, Username: "gated", Password: password}, tg, Options{Log: log})
	next(t, avail, 10*time.Second, "online over TLS", payloadIs("online"))
	if !l.Connected() {
		t.Errorf("Connected() false while online")
	}
	watcher.Publish(prefix+"/command", []byte("alarm"))
	if r := decodeResult(t, next(t, results, 5*time.Second, "result", func(mqtttest.Msg) bool { return true })); !r.OK {
		t.Errorf("alarm over TLS: %+v", r)
	}
	if strings.Contains(logs.String(), password) {
		t.Errorf("the password appears in the log:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "connect") {
		t.Errorf("the log says nothing of connecting:\n%s", logs.String())
	}
}
