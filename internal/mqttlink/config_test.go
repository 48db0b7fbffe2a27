package mqttlink

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"rocksaying.tw/gated/internal/gate"
	"rocksaying.tw/gated/internal/mqttlink/mqtttest"
)

// nopGate is enough for New, which only checks its configuration.
type nopGate struct{ Gate }

func TestBrokerURL(t *testing.T) {
	tests := []struct {
		in, want   string
		wantSecure bool
	}{
		{"tcp://localhost", "tcp://localhost:1883", false},
		{"tcp://broker.lan:1884", "tcp://broker.lan:1884", false},
		{"mqtt://10.0.0.2", "tcp://10.0.0.2:1883", false},
		{"ssl://broker", "ssl://broker:8883", true},
		{"tls://broker:8884", "ssl://broker:8884", true},
		{"mqtts://broker", "ssl://broker:8883", true},
		{"MQTTS://[::1]", "ssl://[::1]:8883", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, secure, err := brokerURL(tt.in)
			if err != nil || got != tt.want || secure != tt.wantSecure {
				t.Errorf("brokerURL(%q) = %q, %v, %v; want %q, %v, nil", tt.in, got, secure, err, tt.want, tt.wantSecure)
			}
		})
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	dir := t.TempDir()
	pki := mqtttest.WritePKI(t, dir)
	notPEM := filepath.Join(dir, "not.pem")
	os.WriteFile(notPEM, []byte("hello"), 0o600)
	missing := filepath.Join(dir, "missing.pem")
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"http scheme", Config{Broker: "http://broker"}, "want a tcp://"},
		{"no scheme", Config{Broker: "broker:1883"}, "want a tcp://"},
		{"empty", Config{Broker: ""}, "want a tcp://"},
		{"no host", Config{Broker: "tcp://:1883"}, "no host"},
		{"path", Config{Broker: "tcp://broker/x"}, "scheme://host[:port] only"},
		{"user in URL", Config{Broker: "tcp://me:pw@broker"}, "password_file, not in the URL"},
		{"CA with plain TCP", Config{Broker: "tcp://broker", CAFile: pki.CAFile}, "need an ssl://"},
		{"CA missing", Config{Broker: "ssl://broker", CAFile: missing}, "ca_file"},
		{"CA not PEM", Config{Broker: "ssl://broker", CAFile: notPEM}, "no PEM certificate"},
		{"cert without key", Config{Broker: "ssl://broker", CertFile: pki.ClientCertFile}, "set both or neither"},
		{"key missing", Config{Broker: "ssl://broker", CertFile: pki.ClientCertFile, KeyFile: missing}, "key_file"},
		{"wrong key", Config{Broker: "ssl://broker", CertFile: pki.ClientCertFile, KeyFile: pki.ServerKeyFile}, "key_file"},
		{"wildcard prefix", Config{Broker: "tcp://broker", TopicPrefix: "gates/#"}, "topic_prefix"},
		{"trailing slash", Config{Broker: "tcp://broker", TopicPrefix: "gates/"}, "topic_prefix"},
		{"wildcard discovery", Config{Broker: "tcp://broker", DiscoveryPrefix: "+"}, "discovery_prefix"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg, nopGate{}, Options{})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("New: %v, want an error with %q", err, tt.wantErr)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "mqtt") {
				t.Errorf("error %q does not start with the subject mqtt", err)
			}
		})
	}
	t.Run("good TLS", func(t *testing.T) {
		l, err := New(Config{Broker: "mqtts://broker", CAFile: pki.CAFile, CertFile: pki.ClientCertFile, KeyFile: pki.ClientKeyFile}, nopGate{}, Options{})
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		if l.broker != "ssl://broker:8883" || l.tls == nil || len(l.tls.Certificates) != 1 || l.tls.RootCAs == nil {
			t.Errorf("broker %q tls %v: want ssl://broker:8883 with CA and client certificate", l.broker, l.tls)
		}
	})
	t.Run("defaults", func(t *testing.T) {
		l, err := New(Config{Broker: "tcp://broker"}, nopGate{}, Options{})
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		if l.t.command != "tw/rocksaying/command" || l.cfg.ClientID != DefaultClientID() || l.cfg.KeepAlive != DefaultKeepAlive ||
			l.cfg.MaxCommandAge != DefaultMaxCommandAge || l.cfg.DiscoveryPrefix != "homeassistant" {
			t.Errorf("defaults not applied: %+v, topics %+v", l.cfg, l.t)
		}
	})
}

func TestBrokerErrorsHideThePassword(t *testing.T) {
	for _, b := range []string{"tcp://me:hunter2@broker", "http://me:hunter2@broker", "tcp://me:hunter2@broker:x", "tcp://me:hunter2@bro ker", "me:hunter2@broker\x7f"} {
		t.Run(b, func(t *testing.T) {
			_, err := New(Config{Broker: b}, nopGate{}, Options{})
			if err == nil {
				t.Fatalf("New accepted %q", b)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
}

func TestDefaultClientID(t *testing.T) {
	h, _ := os.Hostname()
	if got := DefaultClientID(); got != "gated-"+h {
		t.Errorf("DefaultClientID() = %q, want %q", got, "gated-"+h)
	}
}

func TestReadPassword(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "password")
	os.WriteFile(file, []byte("from-file\n"), 0o600)
	creds := filepath.Join(dir, "creds")
	os.Mkdir(creds, 0o700)
	os.WriteFile(filepath.Join(creds, "mqtt-password"), []byte("from-systemd"), 0o600)
	empty := filepath.Join(dir, "empty")
	os.Mkdir(empty, 0o700)

	tests := []struct {
		name, credDir, file, want string
		wantErr                   bool
	}{
		{"file", "", file, "from-file", false},
		{"credential preferred", creds, file, "from-systemd", false},
		{"credential directory without it", empty, file, "from-file", false},
		{"none", "", "", "", false},
		{"missing file", "", filepath.Join(dir, "nope"), "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("CREDENTIALS_DIRECTORY", tt.credDir)
			got, err := ReadPassword(tt.file)
			if got != tt.want || (err != nil) != tt.wantErr {
				t.Errorf("ReadPassword(%q) = %q, %v; want %q, error %v", tt.file, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

var _ Gate = (*gate.Gate)(nil)
