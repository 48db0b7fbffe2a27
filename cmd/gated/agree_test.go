package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/jonboulle/clockwork"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
)

// startUp is the daemon's start-up up to the point where something would
// run: the flags, the configuration, the pins and every part built. It is
// serve's path with fake pins for driver "periph" (which pins this machine
// has is not the file's business) and without -demo's broker (which only
// replaces the broker URL with a good one).
func startUp(args ...string) error {
	f, err := parseFlags(args, io.Discard)
	if err != nil {
		return err
	}
	cfg, err := loadConfig(f)
	if err != nil {
		return err
	}
	clk := clockwork.NewFakeClock()
	var hw hardware
	if cfg.GPIO.Driver == "periph" {
		hw, err = lookupPins(cfg, func(name string) gpio.PinIO { return &gpiotest.Pin{N: name} })
	} else {
		hw, err = openPins(cfg, clk, slog.New(slog.DiscardHandler))
	}
	if err != nil {
		return err
	}
	_, err = build(cfg, hw, clk, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	return err
}

// e2eConfig is the configuration test/e2e/run.sh installs in its container.
func e2eConfig(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../test/e2e/run.sh")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?s)gated-e2e\.toml" <<'EOF'\n(.*?)\nEOF\n`).FindSubmatch(b)
	if m == nil {
		t.Fatal("test/e2e/run.sh: no gated-e2e.toml here-document")
	}
	return string(m[1])
}

// -check-config and the daemon accept and refuse the same files: every
// example configuration of the repository, and a file for each rule of
// internal/config that a part would otherwise enforce (or trip over) on
// its own. A refusal is exit 2 naming the file, the line and the key.
func TestCheckConfigAgreesWithTheDaemon(t *testing.T) {
	// CREDENTIALS_DIRECTORY would take the password's place.
	t.Setenv("CREDENTIALS_DIRECTORY", "")
	const pins = "[gpio]\nopen_limit = \"GPIO17\"\nclosed_limit = \"GPIO27\"\nmotor_open = \"GPIO23\"\nmotor_close = \"GPIO24\"\n"
	const sim = "[gpio]\ndriver = \"sim\"\n"
	packaged, err := os.ReadFile("../../configs/gated.toml")
	if err != nil {
		t.Fatal(err)
	}
	withPins := string(packaged)
	for name, pin := range map[string]string{"open_limit": "GPIO17", "closed_limit": "GPIO27", "motor_open": "GPIO23", "motor_close": "GPIO24"} {
		withPins = strings.Replace(withPins, name+` = ""`, name+` = "`+pin+`"`, 1)
	}

	type file struct {
		name  string
		flags []string // before -config
		text  string   // "" with a path: that file as it is
		path  string
		want  string // "" accepted; else what stderr says after "file:"
	}
	// [web]: users files of bcrypt entries, and one with an MD5 entry on line 2.
	users, md5 := filepath.Join(t.TempDir(), "users"), filepath.Join(t.TempDir(), "md5")
	const hash = "$2y$04$.nqscZjsCWn65lDKTu7Vq.UTcb1afOb0Q59pCnTHYrm0f2vg2P/sy"
	if os.WriteFile(users, []byte("alice:"+hash+"\n"), 0o600) != nil || os.WriteFile(md5, []byte("alice:"+hash+"\ncarol:$apr1$abc$0123456789abcdefghijkl\n"), 0o600) != nil {
		t.Fatal("cannot write the users files")
	}
	web := sim + "[web]\nlisten = \"127.0.0.1:0\"\n"
	files := []file{
		{name: "demo defaults", flags: []string{"-demo"}},
		{name: "web on", text: web + "users_file = \"" + users + "\"\noperators = [\"alice\"]\n"},
		{name: "web users file with an MD5 entry", text: web + "users_file = \"" + md5 + "\"\n", want: ":5: web.users_file: " + md5 + ":2: "},
		{name: "web operator who is not a user", text: web + "users_file = \"" + users + "\"\noperators = [\"bob\"]\n", want: ":6: web.operators: \"bob\" is not a user"},
		{name: "web without users", text: web, want: ":4: web.listen: needs web.users_file"},
		{name: "e2e", text: e2eConfig(t)},
		{name: "packaged, pins set", text: withPins},
		{name: "packaged, pins set, simulated", flags: []string{"-simulate"}, text: withPins},
		{name: "packaged, -simulate", flags: []string{"-simulate"}, path: "../../configs/gated.toml", want: `gpio.open_limit: is required with driver = "periph"`},
		{name: "demo.toml, -demo", flags: []string{"-demo"}, path: "../../configs/demo.toml"},
	}
	examples, err := filepath.Glob("../../configs/*.toml")
	if err != nil || len(examples) < 2 {
		t.Fatalf("configs/*.toml: %v, %v", examples, err)
	}
	for _, p := range examples {
		f := file{name: filepath.Base(p), path: p}
		if f.name == "gated.toml" {
			// Packaged with no pin set, so no relay is driven before the
			// user has said how the board is wired.
			f.want = `gpio.open_limit: is required with driver = "periph"`
		}
		files = append(files, f)
	}

	// Refused: one rule each. The line is the offending key's.
	for _, r := range []struct{ name, text, want string }{
		{"unknown key", sim + "colour = \"red\"\n", ":3: gpio.colour: unknown key"},
		{"syntax", "[gate\nname = 1\n", ":2: expected '.' or ']'"},
		{"periph without pins", "", "gpio.open_limit: is required"},
		{"unknown driver", "[gpio]\ndriver = \"wiringpi\"\n", ":2: gpio.driver"},
		{"auto close without an obstruction sensor", pins + "[gate]\nauto_close = \"1m\"\n", ":7: gate.auto_close: needs an obstruction sensor"},
		{"output mode", pins + "output_mode = \"toggle\"\n", ":6: gpio.output_mode: must be \"hold\" or \"pulse\""},
		{"pulse width", pins + "output_mode = \"pulse\"\npulse_width = \"0s\"\n", ":7: gpio.pulse_width: must be a positive duration"},
		{"travel timeout", sim + "[gate]\ntravel_timeout = \"0s\"\n", ":4: gate.travel_timeout: must be a positive duration"},
		{"pin twice", pins + "siren = \"GPIO23\"\n", ":6: gpio.siren: pin \"GPIO23\" is already used"},
		{"websocket broker", sim + "[mqtt]\nbroker = \"ws://localhost:8080\"\n", ":4: mqtt.broker: scheme \"ws\""},
		{"broker without host", sim + "[mqtt]\nbroker = \"tcp://:1883\"\n", ":4: mqtt.broker: no host"},
		{"broker with a path", sim + "[mqtt]\nbroker = \"tcp://localhost/gates\"\n", ":4: mqtt.broker: \"tcp://localhost/gates\": want scheme://host[:port] only"},
		{"password in the broker URL", sim + "[mqtt]\nbroker = \"tcp://u:pw@localhost\"\n", ":4: mqtt.broker: \"tcp://u:xxxxx@localhost\": no user or password"},
		{"topic prefix", sim + "[mqtt]\ntopic_prefix = \"gates/\"\n", ":4: mqtt.topic_prefix"},
		{"discovery prefix", sim + "[mqtt]\ndiscovery_prefix = \"ha/#\"\n", ":4: mqtt.discovery_prefix"},
		{"TLS files with a plain broker", sim + "[mqtt]\nca_file = \"/etc/ssl/certs/ca-certificates.crt\"\n", ":4: mqtt.ca_file: needs an ssl://"},
		{"missing CA", sim + "[mqtt]\nbroker = \"mqtts://localhost\"\nca_file = \"/nonexistent/ca.pem\"\n", ":5: mqtt.ca_file: open /nonexistent/ca.pem"},
		{"missing password file", sim + "[mqtt]\npassword_file = \"/nonexistent/password\"\n", ":4: mqtt.password_file: open /nonexistent/password"},
		{"relative password file", sim + "[mqtt]\npassword_file = \"password\"\n", ":4: mqtt.password_file: \"password\": must be an absolute path"},
		{"keepalive", sim + "[mqtt]\nkeepalive = \"0s\"\n", ":4: mqtt.keepalive"},
		{"bus", sim + "[dbus]\nbus = \"desktop\"\n", ":4: dbus.bus"},
		{"kind", sim + "[gate]\nkind = \"door\"\n", ":4: gate.kind: must be \"gate\" or \"garage\""},
		{"open time", sim + "[gate]\nopen_time = \"-1s\"\n", ":4: gate.open_time"},
		{"close time", sim + "[gate]\nclose_time = \"2h\"\n", ":4: gate.close_time: must be at most 1h0m0s"},
		{"pedestrian position", sim + "[gate]\npedestrian_position = 100\n", ":4: gate.pedestrian_position: must be 0 (off) or 1 to 99"},
		{"auto close without an output to warn with", pins + "obstruction = \"GPIO22\"\n[gate]\nauto_close = \"1m\"\n", ":8: gate.auto_close: needs an output to warn with"},
		{"auto close with a warning under 5s", sim + "[gate]\nauto_close = \"1m\"\nwarn_before_close = \"3s\"\n", ":5: gate.warn_before_close: must be at least 5s"},
		{"self-test without an obstruction sensor", pins + "obstruction_test = \"GPIO6\"\n", ":6: gpio.obstruction_test: needs an obstruction sensor"},
		{"self-test time", sim + "obstruction_test = \"eye\"\nobstruction_test_time = \"0s\"\n", ":4: gpio.obstruction_test_time: must be a positive duration"},
	} {
		files = append(files, file{name: r.name, text: r.text, want: r.want})
	}

	for _, f := range files {
		t.Run(f.name, func(t *testing.T) {
			args := f.flags
			path := f.path
			if f.text != "" || (path == "" && f.want != "") {
				path = writeConfig(t, f.text)
			}
			if path != "" {
				args = append(args[:len(args):len(args)], "-config", path)
			}
			code, stdout, stderr := runGated(context.Background(), append([]string{"-check-config"}, args...)...)
			startErr := startUp(args...)
			if (code == 0) != (startErr == nil) {
				t.Fatalf("they disagree: -check-config exit %d %s; the daemon's start-up: %v", code, stderr, startErr)
			}
			if f.want == "" {
				if code != 0 || !strings.Contains(stdout, "[gate]") {
					t.Errorf("-check-config: exit %d, want 0 and the configuration\nstdout: %s\nstderr: %s", code, stdout, stderr)
				}
				return
			}
			if code != 2 {
				t.Fatalf("-check-config: exit %d, want 2 and %q\nstderr: %s", code, f.want, stderr)
			}
			if want := "gated: " + path; !strings.HasPrefix(stderr, want) || !strings.Contains(stderr, f.want) {
				t.Errorf("-check-config said %q\nwant %q…%q", stderr, want, f.want)
			}
			if !strings.Contains(startErr.Error(), f.want) {
				t.Errorf("the daemon's start-up said %q, want %q", startErr, f.want)
			}
		})
	}
}
