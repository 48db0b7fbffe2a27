package config

// What the [mqtt] section needs beyond its keys: the broker URL parsed,
// the default client id, and the password and TLS certificates read from
// their files.

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// parseBroker checks a broker URL as users write it (tcp://, mqtt://,
// ssl://, tls:// or mqtts://, host and optional port, nothing else) and
// returns it as the link dials it, tcp://host:port or ssl://host:port with
// the default port (1883, 8883) filled in, and whether it uses TLS. Its
// errors never repeat a password written into the URL.
func parseBroker(s string) (string, bool, error) {
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the URL, password and all
		}
		return "", false, fmt.Errorf("%q: %w", redact(s), err)
	}
	var scheme, port string
	var secure bool
	switch strings.ToLower(u.Scheme) {
	case "tcp", "mqtt":
		scheme, port = "tcp", "1883"
	case "ssl", "tls", "mqtts":
		scheme, port, secure = "ssl", "8883", true
	default:
		return "", false, fmt.Errorf("scheme %q: want tcp://, mqtt://, ssl://, tls:// or mqtts:// (host:port)", u.Scheme)
	}
	if u.User != nil {
		return "", false, fmt.Errorf("%q: no user or password in the URL: use username and password_file", u.Redacted())
	}
	if u.Hostname() == "" {
		return "", false, fmt.Errorf("no host in %q: want e.g. tcp://localhost:1883", s)
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.Fragment != "" {
		return "", false, fmt.Errorf("%q: want scheme://host[:port] only", s)
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

// tlsConfig reads the CA and the client certificate of an ssl:// broker.
// Problems go to ps, keyed by the file at fault.
func tlsConfig(m MQTT, ps *problems) *tls.Config {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if m.CAFile != "" {
		pem, err := readFile(m.CAFile)
		switch {
		case err != nil:
			ps.add("mqtt.ca_file", "%v", err)
		default:
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(pem) {
				ps.add("mqtt.ca_file", "%s: no PEM certificate in it", m.CAFile)
			}
		}
	}
	if m.CertFile != "" {
		cert, certErr := readFile(m.CertFile)
		if certErr != nil {
			ps.add("mqtt.cert_file", "%v", certErr)
		}
		key, keyErr := readFile(m.KeyFile)
		if keyErr != nil {
			ps.add("mqtt.key_file", "%v", keyErr)
		}
		if certErr == nil && keyErr == nil {
			c, err := tls.X509KeyPair(cert, key)
			if err != nil {
				ps.add("mqtt.cert_file", "%s with key_file %s: %v", m.CertFile, m.KeyFile, err)
			} else {
				tc.Certificates = []tls.Certificate{c}
			}
		}
	}
	return tc
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

// readPassword returns the broker password: the systemd credential
// $CREDENTIALS_DIRECTORY/mqtt-password when it exists (LoadCredential=),
// else the contents of passwordFile, else "". One trailing newline is
// removed.
func readPassword(passwordFile string) (string, error) {
	if dir := os.Getenv("CREDENTIALS_DIRECTORY"); dir != "" {
		p := filepath.Join(dir, "mqtt-password")
		b, err := readFile(p)
		if err == nil {
			return trimNewline(b), nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("credential %s: %w", p, err)
		}
	}
	if passwordFile == "" {
		return "", nil
	}
	b, err := readFile(passwordFile)
	if err != nil {
		return "", err
	}
	return trimNewline(b), nil
}

func trimNewline(b []byte) string {
	s := strings.TrimSuffix(string(b), "\n")
	return strings.TrimSuffix(s, "\r")
}

// maxFile bounds what readFile reads: a password or a PEM bundle is far
// smaller, and a path such as /dev/zero must not fill the memory.
const maxFile = 1 << 20

// readFile reads a file of at most maxFile bytes.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFile+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(b) > maxFile {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxFile)
	}
	return b, nil
}
