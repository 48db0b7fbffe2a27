package mqttlink

// The connection: dialling the broker, paho's connection events, and the
// session set-up (subscriptions, discovery, "online") after each
// (re)connection.

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
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

// The paho handlers below run on paho's goroutines: they never publish,
// wait on a token or wait for room in our queues; our goroutines do the
// rest.

func (l *Link) onConnect(mqtt.Client) {
	l.failLog.reset()
	l.setupLog.reset()
	l.log.Info("connected", "broker", l.broker)
	select {
	case l.connEv <- struct{}{}:
	default: // one set-up pending is enough
	}
}

func (l *Link) onLost(_ mqtt.Client, err error) {
	l.log.Warn("connection lost, reconnecting", "err", err)
}

func (l *Link) onNotification(_ mqtt.Client, n mqtt.ConnectionNotification) {
	switch n := n.(type) {
	case mqtt.ConnectionNotificationFailed:
		l.failLog.log(l.log, "cannot connect, retrying", "broker", l.broker, "err", n.Reason)
	case mqtt.ConnectionNotificationBrokerFailed:
		l.failLog.log(l.log, "cannot connect, retrying", "broker", l.broker, "err", n.Reason)
	}
}

// setUp runs after each connection: with a clean session the broker forgot
// our subscriptions.
func (l *Link) setUp() error {
	subs := map[string]byte{l.t.command: 1, l.t.positionSet: 1}
	if l.opt.Sim != nil {
		subs[l.t.sim] = 1
	}
	if l.cfg.Discovery {
		l.haSubscriptions(subs)
	}
	tok := l.client.SubscribeMultiple(subs, nil)
	if err := wait(tok); err != nil {
		return fmt.Errorf("subscribe %s: %w", l.t.command, err)
	}
	for topic, code := range tok.(*mqtt.SubscribeToken).Result() {
		if code == 0x80 { // SUBACK failure: typically the broker's ACL
			return fmt.Errorf("subscribe %s: refused by the broker (check its ACL for this user)", topic)
		}
	}
	if l.cfg.Discovery {
		if err := l.publishDiscovery(); err != nil {
			return err
		}
	}
	if err := wait(l.client.Publish(l.t.availability, 1, true, "online")); err != nil {
		return fmt.Errorf("availability: %w", err)
	}
	l.log.Info("online", "command_topic", l.t.command, "status_topic", l.t.status)
	return nil
}

// wait waits for a token, never for ever: paho's Wait can hang.
func wait(t mqtt.Token) error {
	if !t.WaitTimeout(publishTimeout) {
		return fmt.Errorf("no answer from the broker in %s", publishTimeout)
	}
	return t.Error()
}
