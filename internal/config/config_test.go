package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
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
		{"missing pin", "[gpio]\nopen_limit = \"GPIO17\"\n", "gpio.closed_limit: is required"},
		{"pin twice", strings.Replace(pins, `"GPIO24"`, `"GPIO23"`, 1), "t.toml:6: gpio.motor_close: pin \"GPIO23\" is already used by gpio.motor_open"},
		{"driver", "[gpio]\ndriver = \"wiringpi\"\n", "t.toml:2: gpio.driver: must be \"periph\" or \"sim\""},
		{"mode", pins + "output_mode = \"toggle\"\n", "gpio.output_mode"},
		{"stop in hold", pins + "motor_stop = \"GPIO25\"\n", "t.toml:7: gpio.motor_stop: is used only with output_mode = \"pulse\""},
		{"broker scheme", pins + "[mqtt]\nbroker = \"http://x:1883\"\n", "t.toml:8: mqtt.broker: scheme \"http\""},
		{"credentials in url", pins + "[mqtt]\nbroker = \"tcp://u:hunter2@h:1883\"\n", "t.toml:8: mqtt.broker: \"tcp://u:xxxxx@h:1883\": no user or password in the URL"},
		{"broker no host", pins + "[mqtt]\nbroker = \"tcp://\"\n", "mqtt.broker: no host"},
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
		{"tls", pins + "[mqtt]\nbroker = \"mqtts://broker.lan\"\nca_file = \"/etc/ca.pem\"\n"},
		{"address bus", pins + "[dbus]\nbus = \"unix:path=/run/dbus/system_bus_socket\"\n"},
		{"pulse", pins + "output_mode = \"pulse\"\nmotor_stop = \"GPIO25\"\n"},
		{"auto close with sensor", pins + "obstruction = \"GPIO22\"\n[gate]\nauto_close = \"2m\"\n"},
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
		if d := cmp.Diff(c, back, cmpopts.IgnoreUnexported(Config{})); d != "" {
			t.Fatalf("round trip (-loaded +printed):\n%s", d)
		}
	})
}
