package mqttlink

import (
	"bufio"
	"crypto/tls"
	"errors"
	"net"
	"net/url"
	"os"

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
// tcp:// and ssl:// (ALL_PROXY and friends honoured, the TLS server name
// taken from the host), and buffers its reads.
func openConn(u *url.URL, o mqtt.ClientOptions) (net.Conn, error) {
	d := &net.Dialer{Timeout: o.ConnectTimeout}
	var (
		c   net.Conn
		err error
	)
	switch u.Scheme {
	case "tcp":
		c, err = proxy.FromEnvironmentUsing(d).Dial("tcp", u.Host)
	case "ssl":
		if os.Getenv("all_proxy") == "" && os.Getenv("ALL_PROXY") == "" {
			c, err = tls.DialWithDialer(d, "tcp", u.Host, o.TLSConfig)
			break
		}
		if c, err = proxy.FromEnvironmentUsing(d).Dial("tcp", u.Host); err != nil {
			break
		}
		tc := o.TLSConfig.Clone()
		if tc == nil {
			tc = &tls.Config{}
		}
		if tc.ServerName == "" {
			tc.ServerName = u.Hostname()
		}
		t := tls.Client(c, tc)
		if err = t.Handshake(); err != nil {
			c.Close()
			return nil, err
		}
		c = t
	default:
		return nil, errors.New("mqtt: unsupported scheme " + u.Scheme)
	}
	if err != nil {
		return nil, err
	}
	return &bufferedConn{Conn: c, r: newReader(c)}, nil
}

func newReader(c net.Conn) *bufio.Reader { return bufio.NewReaderSize(c, 4096) }
