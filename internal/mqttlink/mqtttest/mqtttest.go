// Package mqtttest starts a real mosquitto for tests: on free ports of
// 127.0.0.1, with set_tcp_nodelay (Debian's default adds a 40 ms tail to
// every QoS 1 exchange), optionally with a TLS listener whose certificates
// the test generates, and with password authentication. The broker is
// killed by t.Cleanup.
//
// Under CI=true a missing mosquitto fails the test; elsewhere it skips it.
package mqtttest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"rocksaying.tw/gated/internal/syncbuf"
)

// Options shape the broker.
type Options struct {
	// TLS adds a TLS listener (URL in Broker.TLSURL) that requires a client
	// certificate signed by the test CA.
	TLS bool
	// Users, when set, turns anonymous access off: every listener then
	// needs one of these user names and passwords.
	Users map[string]string
	// UnlimitedQueues lifts mosquitto's max_queued_messages (1000 QoS 1
	// messages per client beyond those in flight, the rest dropped), for
	// tests that flood a client on purpose.
	UnlimitedQueues bool
}

// Broker is a running mosquitto.
type Broker struct {
	URL    string // tcp://127.0.0.1:port
	Addr   string // 127.0.0.1:port
	TLSURL string // ssl://127.0.0.1:port when Options.TLS

	// With Options.TLS: PEM files of the CA that signed the broker's and the
	// client's certificates, and the client's certificate and key.
	CAFile, CertFile, KeyFile string

	t       testing.TB
	dir     string
	conf    string
	tlsAddr string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	out    *syncbuf.Buffer
}

// mosquittoPaths are where Binary looks: Debian puts it in /usr/sbin, which
// is not on every user's PATH.
var mosquittoPaths = []string{"mosquitto", "/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"}

// Binary returns the path of mosquitto, or fails (CI=true) or skips the
// test when there is none.
func Binary(t testing.TB) string {
	t.Helper()
	return need(t, mosquittoPaths...)
}

// need returns the first of paths that exec.LookPath finds. When there is
// none it fails the test under CI=true and skips it elsewhere.
func need(t testing.TB, paths ...string) string {
	t.Helper()
	for _, p := range paths {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s not found: install the mosquitto package (CI=true, so this fails rather than skips)", filepath.Base(paths[0]))
	}
	t.Skipf("%s not found: install the mosquitto package to run this test", filepath.Base(paths[0]))
	return ""
}

// Start starts a mosquitto and waits until it accepts connections.
func Start(t testing.TB, opt Options) *Broker {
	t.Helper()
	bin := Binary(t)
	b := &Broker{t: t, dir: t.TempDir()}
	b.Addr = "127.0.0.1:" + strconv.Itoa(FreePort(t))
	b.URL = "tcp://" + b.Addr

	var conf strings.Builder
	fmt.Fprintf(&conf, "persistence false\nset_tcp_nodelay true\nlog_dest stderr\nlog_type error\nlog_type warning\n")
	if os.Geteuid() == 0 {
		// mosquitto started as root drops to user mosquitto, which cannot
		// read the test's private temporary directory.
		conf.WriteString("user root\n")
	} else if u, err := user.Current(); err == nil {
		fmt.Fprintf(&conf, "user %s\n", u.Username)
	}
	conf.WriteString("per_listener_settings false\n")
	if opt.UnlimitedQueues {
		conf.WriteString("max_queued_messages 0\n")
	}
	if len(opt.Users) > 0 {
		pw := filepath.Join(b.dir, "passwd")
		names := make([]string, 0, len(opt.Users))
		for n := range opt.Users {
			names = append(names, n)
		}
		sort.Strings(names)
		for i, n := range names {
			args := []string{"-b", pw, n, opt.Users[n]}
			if i == 0 {
				args = append([]string{"-c"}, args...)
			}
			if out, err := exec.Command(mosquittoPasswd(t), args...).CombinedOutput(); err != nil {
				t.Fatalf("mosquitto_passwd: %v: %s", err, out)
			}
		}
		fmt.Fprintf(&conf, "allow_anonymous false\npassword_file %s\n", pw)
	} else {
		conf.WriteString("allow_anonymous true\n")
	}
	fmt.Fprintf(&conf, "listener %s 127.0.0.1\n", port(b.Addr))
	if opt.TLS {
		b.tlsAddr = "127.0.0.1:" + strconv.Itoa(FreePort(t))
		b.TLSURL = "ssl://" + b.tlsAddr
		pki := WritePKI(t, b.dir)
		b.CAFile, b.CertFile, b.KeyFile = pki.CAFile, pki.ClientCertFile, pki.ClientKeyFile
		fmt.Fprintf(&conf, "listener %s 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\nrequire_certificate true\ntls_version tlsv1.2\n",
			port(b.tlsAddr), pki.CAFile, pki.ServerCertFile, pki.ServerKeyFile)
	}
	b.conf = filepath.Join(b.dir, "mosquitto.conf")
	if err := os.WriteFile(b.conf, []byte(conf.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	b.start(bin)
	t.Cleanup(func() {
		b.Kill()
		if t.Failed() {
			t.Logf("mosquitto output:\n%s", b.out.String())
		}
	})
	return b
}

func mosquittoPasswd(t testing.TB) string {
	t.Helper()
	return need(t, "mosquitto_passwd", "/usr/bin/mosquitto_passwd")
}

func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

func (b *Broker) start(bin string) {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.out == nil {
		b.out = &syncbuf.Buffer{}
	}
	cmd := exec.Command(bin, "-c", b.conf)
	cmd.Stdout, cmd.Stderr = b.out, b.out
	if err := cmd.Start(); err != nil {
		b.t.Fatalf("mosquitto: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	b.cmd, b.exited = cmd, exited
	deadline := time.Now().Add(5 * time.Second)
	for _, addr := range []string{b.Addr, b.tlsAddr} {
		for addr != "" {
			c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-exited:
				b.t.Fatalf("mosquitto exited at start-up:\n%s", b.out.String())
			default:
			}
			if time.Now().After(deadline) {
				b.t.Fatalf("mosquitto not listening on %s after 5s:\n%s", addr, b.out.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// Kill stops the broker with SIGKILL, as a crash would, and waits for it
// to exit. Retained messages are lost (persistence is off).
func (b *Broker) Kill() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil {
		return
	}
	b.cmd.Process.Kill()
	<-b.exited
	b.cmd = nil
}

// Restart starts the broker again on the same ports, after Kill.
func (b *Broker) Restart() {
	b.t.Helper()
	b.Kill()
	b.start(Binary(b.t))
}

// FreePort returns a TCP port of 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// PKI names the PEM files WritePKI wrote.
type PKI struct {
	CAFile                        string
	ServerCertFile, ServerKeyFile string // for 127.0.0.1 and localhost
	ClientCertFile, ClientKeyFile string
}

// WritePKI generates a CA, a server certificate for 127.0.0.1 and localhost
// and a client certificate, all ECDSA P-256 valid for a day, into dir.
func WritePKI(t testing.TB, dir string) PKI {
	t.Helper()
	now := time.Now()
	serial := int64(1)
	newCert := func(tmpl *x509.Certificate, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey, []byte) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		serial++
		tmpl.SerialNumber = big.NewInt(serial)
		tmpl.NotBefore, tmpl.NotAfter = now.Add(-time.Hour), now.Add(24*time.Hour)
		if parent == nil {
			parent, parentKey = tmpl, key
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c, key, der
	}
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	writeKey := func(name string, k *ecdsa.PrivateKey) string {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return write(name, "PRIVATE KEY", der)
	}
	ca, caKey, caDER := newCert(&x509.Certificate{
		Subject:               pkix.Name{CommonName: "mqtttest CA"},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}, nil, nil)
	_, srvKey, srvDER := newCert(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:    []string{"localhost"},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, ca, caKey)
	_, cliKey, cliDER := newCert(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "gated-test"},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, ca, caKey)
	return PKI{
		CAFile:         write("ca.pem", "CERTIFICATE", caDER),
		ServerCertFile: write("server.pem", "CERTIFICATE", srvDER),
		ServerKeyFile:  writeKey("server.key", srvKey),
		ClientCertFile: write("client.pem", "CERTIFICATE", cliDER),
		ClientKeyFile:  writeKey("client.key", cliKey),
	}
}

// Msg is a message a Client received.
type Msg struct {
	Topic    string
	Payload  string
	Retained bool
}

// Client is a plain paho client for tests: it subscribes and publishes on
// behalf of a user, failing the test when the broker does not answer.
type Client struct {
	t testing.TB
	c mqtt.Client
}

// Connect connects a client to url with a unique client id. opts may
// adjust the options (credentials, TLS). It disconnects in t.Cleanup.
func Connect(t testing.TB, url string, opts ...func(*mqtt.ClientOptions)) *Client {
	t.Helper()
	o := mqtt.NewClientOptions().AddBroker(url).
		SetClientID(fmt.Sprintf("mqtttest-%d-%d", os.Getpid(), clientSeq.Add(1))).
		SetCleanSession(true).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second).
		SetOrderMatters(true)
	for _, f := range opts {
		f(o)
	}
	c := mqtt.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("mqtttest connect %s: %v", url, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return &Client{t: t, c: c}
}

var clientSeq atomic.Int64

// Subscribe subscribes to topic (QoS 1) and returns the messages. The
// channel holds 16384 messages; more fail the test.
func (c *Client) Subscribe(topic string) <-chan Msg {
	c.t.Helper()
	ch := make(chan Msg, 16384)
	tok := c.c.Subscribe(topic, 1, func(_ mqtt.Client, m mqtt.Message) {
		select {
		case ch <- Msg{m.Topic(), string(m.Payload()), m.Retained()}:
		default:
			c.t.Errorf("mqtttest: subscriber to %s fell behind", topic)
		}
	})
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		c.t.Fatalf("mqtttest subscribe %s: %v", topic, tok.Error())
	}
	return ch
}

// Publish publishes at QoS 1 and waits for the broker's acknowledgement.
func (c *Client) Publish(topic string, payload []byte) {
	c.t.Helper()
	c.publish(topic, payload, false)
}

// PublishRetained is Publish with the retain flag set.
func (c *Client) PublishRetained(topic string, payload []byte) {
	c.t.Helper()
	c.publish(topic, payload, true)
}

func (c *Client) publish(topic string, payload []byte, retained bool) {
	c.t.Helper()
	tok := c.c.Publish(topic, 1, retained, payload)
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		c.t.Fatalf("mqtttest publish %s: %v", topic, tok.Error())
	}
}

// PublishAsync publishes at QoS 1 and returns the token, for floods.
func (c *Client) PublishAsync(topic string, payload []byte) mqtt.Token {
	return c.c.Publish(topic, 1, false, payload)
}

// Paho returns the underlying client.
func (c *Client) Paho() mqtt.Client { return c.c }
