package mqttlink

// The link's configuration: the [mqtt] section as the link takes it, and
// the checks and file reads that turn the section into it.

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Config is the [mqtt] section, with the password already read (see
// ReadPassword) and the gate's name.
type Config struct {
	Broker      string // tcp://, mqtt://, ssl://, tls:// or mqtts:// URL
	ClientID    string // "": DefaultClientID()
	TopicPrefix string // "": tw/rocksaying
	Username    string
	Password    string // never logged

	CAFile, CertFile, KeyFile string

	KeepAlive     time.Duration // 0: 30s
	MaxCommandAge time.Duration // 0: 10s

	Discovery       bool
	DiscoveryPrefix string // "": homeassistant
	GateName        string // the Home Assistant device name; "": gate
}

// The defaults of SPEC.md's [mqtt] section.
const (
	DefaultTopicPrefix     = "tw/rocksaying"
	DefaultDiscoveryPrefix = "homeassistant"
	DefaultKeepAlive       = 30 * time.Second
	DefaultMaxCommandAge   = 10 * time.Second
)

// brokerURL checks a broker URL and returns it as paho wants it, with the
// default port, and whether it uses TLS. Errors never repeat a password
// written into the URL.
func brokerURL(s string) (string, bool, error) {
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the URL, password and all
		}
		return "", false, fmt.Errorf("mqtt broker %q: %w", redact(s), err)
	}
	var scheme, port string
	var secure bool
	switch strings.ToLower(u.Scheme) {
	case "tcp", "mqtt":
		scheme, port = "tcp", "1883"
	case "ssl", "tls", "mqtts":
		scheme, port, secure = "ssl", "8883", true
	default:
		return "", false, fmt.Errorf("mqtt broker %q: want a tcp://, mqtt://, ssl://, tls:// or mqtts:// URL", u.Redacted())
	}
	if u.User != nil {
		return "", false, fmt.Errorf("mqtt broker %q: put the user name in username and the password in password_file, not in the URL", u.Redacted())
	}
	if u.Hostname() == "" {
		return "", false, fmt.Errorf("mqtt broker %q: no host", s)
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.Fragment != "" {
		return "", false, fmt.Errorf("mqtt broker %q: want scheme://host[:port] only", s)
	}
	if u.Port() != "" {
		port = u.Port()
	}
	return scheme + "://" + net.JoinHostPort(u.Hostname(), port), secure, nil
}

// redact hides what may be a password in a URL that did not parse.
func redact(s string) string {
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		start := strings.Index(s, "://") + 3
		if start < 3 || start > i {
			start = 0
		}
		return s[:start] + "xxxxx" + s[i:]
	}
	return s
}

func tlsConfig(cfg Config) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("mqtt ca_file: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("mqtt ca_file %s: no PEM certificate in it", cfg.CAFile)
		}
	}
	if (cfg.CertFile == "") != (cfg.KeyFile == "") {
		return nil, errors.New("mqtt: cert_file and key_file go together: set both or neither")
	}
	if cfg.CertFile != "" {
		c, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("mqtt cert_file %s, key_file %s: %w", cfg.CertFile, cfg.KeyFile, err)
		}
		tc.Certificates = []tls.Certificate{c}
	}
	return tc, nil
}

// DefaultClientID returns "gated-<hostname>", so that two gates on one
// broker do not share a client id (the broker would drop one each time the
// other connects).
func DefaultClientID() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		b := make([]byte, 4)
		rand.Read(b)
		h = hex.EncodeToString(b)
	}
	return "gated-" + h
}

// ReadPassword returns the broker password: the systemd credential
// $CREDENTIALS_DIRECTORY/mqtt-password when it exists (LoadCredential=),
// else the contents of passwordFile, else "". One trailing newline is
// removed.
func ReadPassword(passwordFile string) (string, error) {
	if dir := os.Getenv("CREDENTIALS_DIRECTORY"); dir != "" {
		p := filepath.Join(dir, "mqtt-password")
		b, err := os.ReadFile(p)
		if err == nil {
			return trimNewline(b), nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("mqtt credential %s: %w", p, err)
		}
	}
	if passwordFile == "" {
		return "", nil
	}
	b, err := os.ReadFile(passwordFile)
	if err != nil {
		return "", fmt.Errorf("mqtt password_file: %w", err)
	}
	return trimNewline(b), nil
}

func trimNewline(b []byte) string {
	s := strings.TrimSuffix(string(b), "\n")
	return strings.TrimSuffix(s, "\r")
}
