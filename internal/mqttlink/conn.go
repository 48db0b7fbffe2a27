package mqttlink

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/url"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/net/proxy"
)

// bufferedConn is a connection to the broker that reads through a buffer.
// paho reads each packet's fixed header a byte at a time, so on a bare
// socket every packet, a 4-byte PUBACK included, costs at least three
// read(2) calls; buffered, one call usually reads several packets.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// openConn opens the connection to the broker as paho itself would for
// tcp:// and ssl:// (ALL_PROXY and NO_PROXY honoured, through the proxy
// package paho uses; the TLS server name taken from the host), and buffers
// its reads.
func openConn(u *url.URL, o mqtt.ClientOptions) (net.Conn, error) {
	if u.Scheme != "tcp" && u.Scheme != "ssl" {
		return nil, errors.New("mqtt: unsupported scheme " + u.Scheme)
	}
	// Without a proxy in the environment this is the dialer itself.
	c, err := proxy.FromEnvironmentUsing(&net.Dialer{Timeout: o.ConnectTimeout}).Dial("tcp", u.Host)
	if err != nil {
		return nil, err
	}
	if u.Scheme == "ssl" {
		tc := o.TLSConfig.Clone()
		if tc == nil {
			tc = &tls.Config{}
		}
		if tc.ServerName == "" {
			tc.ServerName = u.Hostname()
		}
		t := tls.Client(c, tc)
		ctx, cancel := context.WithTimeout(context.Background(), o.ConnectTimeout)
		err := t.HandshakeContext(ctx)
		cancel()
		if err != nil {
			c.Close()
			return nil, err
		}
		c = t
	}
	return &bufferedConn{Conn: c, r: newReader(c)}, nil
}

func newReader(c net.Conn) *bufio.Reader { return bufio.NewReaderSize(c, 4096) }
