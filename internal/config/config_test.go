package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"rocksaying.tw/gated/internal/mqttlink/mqtttest"
)

const pins = `
[gpio]
open_limit = "GPIO17"
closed_limit = "GPIO27"
motor_open = "GPIO23"
motor_close = "GPIO24"
`

func TestEmptyFileNeedsOnlyPins(t *testing.T) {
	c, err := FromString(pins, "t.toml")
	if err != nil {
		t.Fatalf("FromString: %v", err)
	}
	want := Default()
	want.GPIO.OpenLimit, want.GPIO.ClosedLimit, want.GPIO.MotorOpen, want.GPIO.MotorClose = "GPIO17", "GPIO27", "GPIO23", "GPIO24"
	// Set at load time: what the link dials, and as whom.
	want.MQTT.URL, want.MQTT.ClientID = "tcp://localhost:1883", DefaultClientID()
	if d := cmp.Diff(want, c, cmpopts.IgnoreUnexported(Config{})); d != "" {
		t.Errorf("config (-want +got):\n%s", d)
	}
	if _, err := FromString("", "empty.toml"); err == nil || !strings.Contains(err.Error(), "gpio.open_limit") {
		t.Errorf("empty file with driver periph: got %v, want an error naming gpio.open_limit", err)
	}
	if _, err := FromString("[gpio]\ndriver = \"sim\"\n", "sim.toml"); err != nil {
		t.Errorf("sim with no pins: %v", err)
	}
}

func TestShippedConfigs(t *testing.T) {
	if _, err := FromFile("../../configs/demo.toml"); err != nil {
		t.Errorf("demo.toml: %v", err)
	}
	// The packaged file names no pin, so that no relay is driven before the
	// user has said how the board is wired: it is refused for exactly the
	// four required pins, and loads once they are set.
	b, err := os.ReadFile("../../configs/gated.toml")
	if err != nil {
		t.Fatal(err)
	}
	_, err = FromString(string(b), "gated.toml")
	required := []string{"gpio.open_limit", "gpio.closed_limit", "gpio.motor_open", "gpio.motor_close"}
	if err == nil {
		t.Fatal("gated.toml as packaged loads with no pins set")
	}
	if n := strings.Count(err.Error(), "is required"); n != len(required) {
		t.Errorf("gated.toml as packaged: %d problems, want only the %d required pins:\n%v", n, len(required), err)
	}
	s := string(b)
	for i, key := range required {
		name := strings.TrimPrefix(key, "gpio.")
		s = strings.Replace(s, name+` = ""`, fmt.Sprintf("%s = \"GPIO%d\"", name, 17+i), 1)
	}
	if _, err := FromString(s, "gated.toml"); err != nil {
		t.Errorf("gated.toml with its pins set: %v", err)
	}
}

func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     string // substring of the error: file:line: key: message
	}{
		{"unknown key", pins + "colour = \"red\"\n", "t.toml:7: gpio.colour: unknown key"},
		{"unknown section", pins + "[foo]\nbar = 1\n", "t.toml:8: foo.bar: unknown key"},
		{"syntax", "[gate\nname = 1\n", "t.toml:2: expected '.' or ']' to end table name"},
		{"bad duration", pins + "[gate]\ntravel_timeout = \"soon\"\n", "t.toml:8: gate.travel_timeout: invalid duration"},
		{"wrong type", pins + "[gate]\nname = 3\n", "t.toml:8: gate.name"},
		{"zero travel timeout", pins + "[gate]\ntravel_timeout = \"0s\"\n", "t.toml:8: gate.travel_timeout: must be a positive duration"},
		{"negative reverse delay", pins + "[gate]\nreverse_delay = \"-1s\"\n", "gate.reverse_delay: must not be negative"},
		{"auto close without sensor", pins + "[gate]\nauto_close = \"60s\"\n", "t.toml:8: gate.auto_close: needs an obstruction sensor"},
		{"auto close without an output to warn with", pins + "obstruction = \"GPIO22\"\n[gate]\nauto_close = \"60s\"\n", "t.toml:9: gate.auto_close: needs an output to warn with"},
		{"auto close with a short warning", pins + "obstruction = \"GPIO22\"\nsiren = \"GPIO5\"\n[gate]\nauto_close = \"60s\"\nwarn_before_close = \"4s\"\n", "t.toml:11: gate.warn_before_close: must be at least 5s with auto_close"},
		{"self-test without a sensor", pins + "obstruction_test = \"GPIO6\"\n", "t.toml:7: gpio.obstruction_test: needs an obstruction sensor"},
		{"self-test too long", pins + "obstruction = \"GPIO22\"\nobstruction_test = \"GPIO6\"\nobstruction_test_time = \"480ms\"\n", "t.toml:9: gpio.obstruction_test_time: with debounce (30ms) must be at most 500ms"},
		{"self-test time zero", pins + "obstruction_test_time = \"0s\"\n", "t.toml:7: gpio.obstruction_test_time: must be a positive duration"},
		{"warning pin twice", pins + "warning = \"GPIO23\"\n", "t.toml:7: gpio.warning: pin \"GPIO23\" is already used"},
		{"missing pin", "[gpio]\nopen_limit = \"GPIO17\"\n", "gpio.closed_limit: is required"},
		{"pin twice", strings.Replace(pins, `"GPIO24"`, `"GPIO23"`, 1), "t.toml:6: gpio.motor_close: pin \"GPIO23\" is already used by gpio.motor_open"},
		{"driver", "[gpio]\ndriver = \"wiringpi\"\n", "t.toml:2: gpio.driver: must be \"periph\" or \"sim\""},
		{"mode", pins + "output_mode = \"toggle\"\n", "gpio.output_mode"},
		{"stop in hold", pins + "motor_stop = \"GPIO25\"\n", "t.toml:7: gpio.motor_stop: is used only with output_mode = \"pulse\""},
		{"broker scheme", pins + "[mqtt]\nbroker = \"http://x:1883\"\n", "t.toml:8: mqtt.broker: scheme \"http\""},
		{"credentials in url", pins + "[mqtt]\nbroker = \"tcp://u:hunter2@h:1883\"\n", "t.toml:8: mqtt.broker: \"tcp://u:xxxxx@h:1883\": no user or password in the URL"},
		{"broker no host", pins + "[mqtt]\nbroker = \"tcp://\"\n", "mqtt.broker: no host"},
		{"broker port only", pins + "[mqtt]\nbroker = \"tcp://:1883\"\n", "mqtt.broker: no host"},
		{"websocket broker", pins + "[mqtt]\nbroker = \"ws://broker:8080\"\n", "t.toml:8: mqtt.broker: scheme \"ws\": want tcp://"},
		{"secure websocket broker", pins + "[mqtt]\nbroker = \"wss://broker\"\n", "mqtt.broker: scheme \"wss\""},
		{"broker without scheme", pins + "[mqtt]\nbroker = \"broker:1883\"\n", "mqtt.broker: scheme \"broker\""},
		{"broker with a path", pins + "[mqtt]\nbroker = \"tcp://broker/x\"\n", "mqtt.broker: \"tcp://broker/x\": want scheme://host[:port] only"},
		{"broker with a query", pins + "[mqtt]\nbroker = \"tcp://broker?x=1\"\n", "want scheme://host[:port] only"},
		{"bad port", pins + "[mqtt]\nbroker = \"tcp://broker:x\"\n", "mqtt.broker: \"tcp://broker:x\": invalid port"},
		{"trailing slash prefix", pins + "[mqtt]\ntopic_prefix = \"gates/\"\n", "mqtt.topic_prefix"},
		{"leading slash prefix", pins + "[mqtt]\ntopic_prefix = \"/gates\"\n", "mqtt.topic_prefix"},
		{"wildcard discovery", pins + "[mqtt]\ndiscovery_prefix = \"+\"\n", "mqtt.discovery_prefix"},
		{"discovery trailing slash", pins + "[mqtt]\ndiscovery_prefix = \"ha/\"\n", "mqtt.discovery_prefix"},
		{"client id", pins + "[mqtt]\nclient_id = \"a/b\"\n", "t.toml:8: mqtt.client_id"},
		{"max command age", pins + "[mqtt]\nmax_command_age = \"0s\"\n", "mqtt.max_command_age: must be a positive duration"},
		{"missing password file", pins + "[mqtt]\npassword_file = \"/nonexistent/pw\"\n", "t.toml:8: mqtt.password_file: open /nonexistent/pw: no such file"},
		{"CA with plain TCP", pins + "[mqtt]\nca_file = \"/etc/ca.pem\"\n", "t.toml:8: mqtt.ca_file: needs an ssl://, tls:// or mqtts:// broker"},
		{"missing CA", pins + "[mqtt]\nbroker = \"ssl://broker\"\nca_file = \"/nonexistent/ca.pem\"\n", "t.toml:9: mqtt.ca_file: open /nonexistent/ca.pem"},
		{"pulse width", pins + "output_mode = \"pulse\"\npulse_width = \"0s\"\n", "gpio.pulse_width: must be a positive duration"},
		{"pulse longer than travel", pins + "output_mode = \"pulse\"\npulse_width = \"40s\"\n", "gpio.pulse_width: must be shorter than gate.travel_timeout"},
		{"debounce", pins + "debounce = \"2s\"\n", "gpio.debounce"},
		{"empty name", pins + "[gate]\nname = \" \"\n", "t.toml:8: gate.name: must not be empty"},
		{"sim travel time", "[gpio]\ndriver = \"sim\"\n[sim]\ntravel_time = \"0s\"\n", "t.toml:4: sim.travel_time"},
		{"wildcard prefix", pins + "[mqtt]\ntopic_prefix = \"a/#\"\n", "mqtt.topic_prefix"},
		{"keepalive", pins + "[mqtt]\nkeepalive = \"10ms\"\n", "mqtt.keepalive"},
		{"cert without key", pins + "[mqtt]\ncert_file = \"/etc/c.pem\"\n", "mqtt.cert_file: cert_file and key_file go together"},
		{"relative file", pins + "[mqtt]\npassword_file = \"pw\"\n", "mqtt.password_file: \"pw\": must be an absolute path"},
		{"bus", pins + "[dbus]\nbus = \"desktop\"\n", "t.toml:8: dbus.bus"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := FromString(tc.in, "t.toml")
			if err == nil {
				t.Fatalf("FromString(%q): no error, want %q", tc.in, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q\nwant it to contain %q", err, tc.want)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Errorf("error %T is not a *config.Error", err)
			}
		})
	}
}

func TestValid(t *testing.T) {
	for _, tc := range []struct{ name, in string }{
		{"no mqtt", pins + "[mqtt]\nbroker = \"\"\n"},
		{"no mqtt, so no mqtt rules", pins + "[mqtt]\nbroker = \"\"\ntopic_prefix = \"#\"\nca_file = \"ca.pem\"\n"},
		{"tls with the system's CAs", pins + "[mqtt]\nbroker = \"mqtts://broker.lan\"\n"},
		{"discovery off, its prefix unused", pins + "[mqtt]\ndiscovery = false\ndiscovery_prefix = \"\"\n"},
		{"address bus", pins + "[dbus]\nbus = \"unix:path=/run/dbus/system_bus_socket\"\n"},
		{"pulse", pins + "output_mode = \"pulse\"\nmotor_stop = \"GPIO25\"\n"},
		{"auto close with sensor", pins + "obstruction = \"GPIO22\"\nsiren = \"GPIO5\"\n[gate]\nauto_close = \"2m\"\n"},
		{"auto close warning with the warning pin", pins + "obstruction = \"GPIO22\"\nwarning = \"GPIO5\"\n[gate]\nauto_close = \"2m\"\nwarn_before_close = \"7s\"\n"},
		{"a short warning without auto_close", pins + "[gate]\nwarn_before_close = \"1s\"\nwarn_on_remote_close = true\n"},
		{"photo-eye self-test", pins + "obstruction = \"GPIO22\"\nobstruction_test = \"GPIO6\"\nobstruction_test_time = \"200ms\"\n"},
		{"simulated auto close warns with the simulated siren", "[gpio]\ndriver = \"sim\"\nobstruction_test = \"sim\"\n[gate]\nauto_close = \"1m\"\n"},
		{"quoted keys", "[gpio]\n\"driver\" = \"sim\"\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := FromString(tc.in, "t.toml"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestStringRoundTrips(t *testing.T) {
	c, err := FromString(pins+"[gate]\ntravel_timeout = \"45s\"\n", "t.toml")
	if err != nil {
		t.Fatal(err)
	}
	s := c.String()
	back, err := FromString(s, "printed")
	if err != nil {
		t.Fatalf("printed config does not load: %v\n%s", err, s)
	}
	if back.Gate.TravelTimeout != 45*time.Second {
		t.Errorf("round trip travel_timeout = %s, want 45s", back.Gate.TravelTimeout)
	}
}

func TestMaskURL(t *testing.T) {
	if got := MaskURL("tcp://u:hunter2@broker:1883"); strings.Contains(got, "hunter2") {
		t.Errorf("MaskURL shows the password: %q", got)
	}
	if got, want := MaskURL("tcp://broker:1883"), "tcp://broker:1883"; got != want {
		t.Errorf("MaskURL(%q) = %q", want, got)
	}
}

func TestKeyError(t *testing.T) {
	c, err := FromString(pins, "t.toml")
	if err != nil {
		t.Fatal(err)
	}
	got := c.KeyError("gpio.motor_open", "no pin named %q", "GPIO23").Error()
	if want := `t.toml:5: gpio.motor_open: no pin named "GPIO23"`; got != want {
		t.Errorf("KeyError = %q, want %q", got, want)
	}
}

func TestFromFileMissing(t *testing.T) {
	_, err := FromFile(filepath.Join(t.TempDir(), "nope.toml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("got %v, want a not-exist error", err)
	}
}

func FuzzFromString(f *testing.F) {
	f.Add(pins)
	f.Add("[gate]\nauto_close = \"1s\"\n")
	f.Add("[[gate]]\n")
	f.Add(pins + "[mqtt]\nbroker = \"mqtts://u@broker:8883/x\"\nclient_id = \"\"\n")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := FromString(s, "fuzz.toml")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.toml") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		// What loads must print and load again the same.
		back, err := FromString(c.String(), "printed")
		if err != nil {
			t.Fatalf("printed config does not load: %v\n%s", err, c.String())
		}
		c.MQTT.Broker = MaskURL(c.MQTT.Broker)
		if d := cmp.Diff(c, back, cmpopts.IgnoreUnexported(Config{}), cmpopts.IgnoreFields(MQTT{}, "TLS")); d != "" {
			t.Fatalf("round trip (-loaded +printed):\n%s", d)
		}
	})
}

func TestParseBroker(t *testing.T) {
	for _, tc := range []struct {
		in, want   string
		wantSecure bool
	}{
		{"tcp://localhost", "tcp://localhost:1883", false},
		{"tcp://broker.lan:1884", "tcp://broker.lan:1884", false},
		{"tcp://broker.lan:1884/", "tcp://broker.lan:1884", false},
		{"mqtt://10.0.0.2", "tcp://10.0.0.2:1883", false},
		{"ssl://broker", "ssl://broker:8883", true},
		{"tls://broker:8884", "ssl://broker:8884", true},
		{"mqtts://broker", "ssl://broker:8883", true},
		{"MQTTS://[::1]", "ssl://[::1]:8883", true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, secure, err := parseBroker(tc.in)
			if err != nil || got != tc.want || secure != tc.wantSecure {
				t.Errorf("parseBroker(%q) = %q, %v, %v; want %q, %v, nil", tc.in, got, secure, err, tc.want, tc.wantSecure)
			}
		})
	}
}

func TestBrokerErrorsHideThePassword(t *testing.T) {
	for _, b := range []string{"tcp://me:hunter2@broker", "http://me:hunter2@broker", "tcp://me:hunter2@broker:x", "tcp://me:hunter2@bro ker", "me:hunter2@broker\x7f"} {
		t.Run(b, func(t *testing.T) {
			_, err := FromString(pins+"[mqtt]\nbroker = "+strconv.Quote(b)+"\n", "t.toml")
			if err == nil {
				t.Fatalf("broker %q accepted", b)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
}

// The files the [mqtt] section names are read at load time, so that
// -check-config refuses what the daemon could not use.
func TestMQTTFiles(t *testing.T) {
	dir := t.TempDir()
	pki := mqtttest.WritePKI(t, dir)
	notPEM := filepath.Join(dir, "not.pem")
	password := filepath.Join(dir, "password")
	for f, b := range map[string]string{notPEM: "hello", password: "s3cret\n"} {
		if err := os.WriteFile(f, []byte(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	mqtt := func(lines ...string) string { return pins + "[mqtt]\n" + strings.Join(lines, "\n") + "\n" }
	q := strconv.Quote
	tlsBroker := `broker = "mqtts://broker"`
	for _, tc := range []struct {
		name, in, want string // want: "" for no error, else a substring
	}{
		{"good TLS", mqtt(tlsBroker, "ca_file = "+q(pki.CAFile), "cert_file = "+q(pki.ClientCertFile), "key_file = "+q(pki.ClientKeyFile)), ""},
		{"password", mqtt("username = \"gated\"", "password_file = "+q(password)), ""},
		{"CA not PEM", mqtt(tlsBroker, "ca_file = "+q(notPEM)), "t.toml:9: mqtt.ca_file: " + notPEM + ": no PEM certificate in it"},
		{"key missing", mqtt(tlsBroker, "cert_file = "+q(pki.ClientCertFile), "key_file = "+q(filepath.Join(dir, "missing.key"))), "t.toml:10: mqtt.key_file: open "},
		{"wrong key", mqtt(tlsBroker, "cert_file = "+q(pki.ClientCertFile), "key_file = "+q(pki.ServerKeyFile)), "t.toml:9: mqtt.cert_file: " + pki.ClientCertFile + " with key_file"},
		{"key without cert", mqtt(tlsBroker, "key_file = "+q(pki.ClientKeyFile)), "mqtt.cert_file: cert_file and key_file go together"},
		{"client certificate with plain TCP", mqtt("cert_file = "+q(pki.ClientCertFile), "key_file = "+q(pki.ClientKeyFile)), "t.toml:8: mqtt.cert_file: needs an ssl://"},
		{"password file is a directory", mqtt("password_file = " + q(dir)), "t.toml:8: mqtt.password_file: " + dir + ": read"},
		{"password file too large", mqtt("password_file = \"/dev/zero\""), "mqtt.password_file: /dev/zero: larger than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := FromString(tc.in, "t.toml")
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v (config %+v), want an error with %q", err, c.MQTT, tc.want)
			}
		})
	}

	t.Run("what the link gets", func(t *testing.T) {
		c, err := FromString(mqtt(`broker = "tls://broker:8884"`, "client_id = \"pi\"", "password_file = "+q(password),
			"ca_file = "+q(pki.CAFile), "cert_file = "+q(pki.ClientCertFile), "key_file = "+q(pki.ClientKeyFile)), "t.toml")
		if err != nil {
			t.Fatal(err)
		}
		m := c.MQTT
		if m.URL != "ssl://broker:8884" || m.ClientID != "pi" || m.Password != "s3cret" || m.TLS == nil || m.TLS.RootCAs == nil || len(m.TLS.Certificates) != 1 {
			t.Errorf("got URL %q client id %q password %q TLS %+v; want ssl://broker:8884, pi, s3cret and a TLS config with CA and client certificate", m.URL, m.ClientID, m.Password, m.TLS)
		}
		if s := c.String(); strings.Contains(s, "s3cret") {
			t.Errorf("the printed configuration shows the password:\n%s", s)
		}
	})
}

func TestPassword(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "password")
	creds := filepath.Join(dir, "creds")
	empty := filepath.Join(dir, "empty")
	for _, d := range []string{creds, empty} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for f, b := range map[string]string{file: "from-file\n", filepath.Join(creds, "mqtt-password"): "from-systemd"} {
		if err := os.WriteFile(f, []byte(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name, credDir, file, want string
		wantErr                   bool
	}{
		{"file", "", file, "from-file", false},
		{"credential preferred", creds, file, "from-systemd", false},
		{"credential directory without it", empty, file, "from-file", false},
		{"none", "", "", "", false},
		{"missing file", "", filepath.Join(dir, "nope"), "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("CREDENTIALS_DIRECTORY", tc.credDir)
			c, err := FromString(pins+"[mqtt]\npassword_file = "+strconv.Quote(tc.file)+"\n", "t.toml")
			if c.MQTT.Password != tc.want || (err != nil) != tc.wantErr {
				t.Errorf("password_file %q: got %q, %v; want %q, error %v", tc.file, c.MQTT.Password, err, tc.want, tc.wantErr)
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
