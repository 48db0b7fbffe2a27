package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The hash of "hunter2", bcrypt cost 4.
const webHash = "$2y$04$.nqscZjsCWn65lDKTu7Vq.UTcb1afOb0Q59pCnTHYrm0f2vg2P/sy"

func TestWeb(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("users", "# users\nalice:"+webHash+"\nbob:"+webHash+"\n")
	md5 := write("md5", "alice:"+webHash+"\n\ncarol:$apr1$abc$0123456789abcdefghijkl\n")
	web := func(keys string) string { return pins + "[web]\nlisten = \"127.0.0.1:8080\"\n" + keys }
	for _, tc := range []struct {
		name, in string
		want     string // substring of the error; "" for none
	}{
		{"off by default", pins, ""},
		{"on", web("users_file = \"" + good + "\"\noperators = [\"alice\"]\n"), ""},
		{"no users file", web(""), "t.toml:8: web.listen: needs web.users_file"},
		{"a users file of another hash kind", web("users_file = \"" + md5 + "\"\n"), "web.users_file: " + md5 + ":3: "},
		{"an operator who is not a user", web("users_file = \"" + good + "\"\noperators = [\"mallory\"]\n"), "t.toml:10: web.operators: \"mallory\" is not a user of"},
		{"a relative users file", web("users_file = \"users\"\n"), "web.users_file: \"users\": must be an absolute path"},
		{"listen without a port", web("users_file = \"" + good + "\"\n")[:0] + pins + "[web]\nlisten = \"localhost\"\nusers_file = \"" + good + "\"\n", "t.toml:8: web.listen: \"localhost\": want host:port"},
		{"cert without key", web("users_file = \"" + good + "\"\ncert_file = \"/etc/gated/cert.pem\"\n"), "web.cert_file: cert_file and key_file go together"},
		{"history keep", pins + "[history]\nkeep = \"0s\"\n", "t.toml:8: history.keep: must be a positive duration"},
		{"history max_events", pins + "[history]\nmax_events = 0\n", "t.toml:8: history.max_events: must be a positive number"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := FromString(tc.in, "t.toml")
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("got %v, want no error", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got %v, want an error with %q", err, tc.want)
			case tc.want == "" && c.Web.Listen != "" && (c.Web.Users == nil || !c.Web.Users.Has("bob")):
				t.Errorf("the users were not read")
			}
			if err != nil && strings.Contains(err.Error(), "$2y$") {
				t.Errorf("an error quotes a hash: %v", err)
			}
		})
	}
}
