package mqttlink

import (
	"io"
	"net"
	"net/url"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
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
