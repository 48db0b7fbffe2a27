package webauth

import (
	"bufio"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/bcrypt"
)

// Hashes written by htpasswd -B (testdata/web-users).
const (
	aliceHash = "$2y$05$DQacxeNg3XErkfoNUKZJvulRQMrP6BEq/D3GfphrQaJYpO3nxsl6S" // correct horse
	bobHash   = "$2y$04$.nqscZjsCWn65lDKTu7Vq.UTcb1afOb0Q59pCnTHYrm0f2vg2P/sy" // hunter2
)

func mustUsers(t *testing.T, text string) *Users {
	t.Helper()
	u, err := ParseUsers(strings.NewReader(text), "web-users")
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestParseUsersAccepts(t *testing.T) {
	tests := []struct {
		name, text string
		want       []string
	}{
		{"htpasswd -B file", "alice:" + aliceHash + "\nbob:" + bobHash + "\n", []string{"alice", "bob"}},
		{"comments, blank lines, white space", "# users\n\n   \n  alice:" + aliceHash + "  \n\t# more\n", []string{"alice"}},
		{"CRLF line endings", "alice:" + aliceHash + "\r\nbob:" + bobHash + "\r\n", []string{"alice", "bob"}},
		{"no final newline", "alice:" + aliceHash, []string{"alice"}},
		{"$2a$ and $2b$", "a:$2a$" + aliceHash[4:] + "\nb:$2b$" + aliceHash[4:] + "\n", []string{"a", "b"}},
		{"a third field is ignored, as Apache does", "alice:" + aliceHash + ":Alice Liddell\n", []string{"alice"}},
		{"a name with spaces and UTF-8", "Zoë Wang:" + aliceHash + "\n", []string{"Zoë Wang"}},
		{"empty file", "", nil},
		{"only comments", "# nobody yet\n", nil},
		{"cost 17, the most htpasswd writes", "a:$2y$17$" + aliceHash[7:] + "\n", []string{"a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := mustUsers(t, tt.text)
			if diff := cmp.Diff(tt.want, u.Names()); diff != "" {
				t.Errorf("names (-want +got):\n%s", diff)
			}
			for _, n := range tt.want {
				if !u.Has(n) {
					t.Errorf("Has(%q) = false", n)
				}
			}
		})
	}
}

func TestParseUsersRefuses(t *testing.T) {
	tests := []struct {
		name, text string
		want       string // in the error
	}{
		{"SHA-1", "alice:" + aliceHash + "\ncarol:{SHA}fjq1BpLwXnYUjitZZc7LaExr1mY=\n", `web-users:2: user "carol": a SHA-1 hash ({SHA})`},
		{"apr1", "# x\ndave:$apr1$GAci.Yb2$qdxNqUQex8o3tdhC9Sdbm0\n", `web-users:2: user "dave": an Apache MD5 hash ($apr1$)`},
		{"MD5-crypt", "x:$1$abc$abcdefghijklmnopqrstuv\n", `web-users:1: user "x": an MD5-crypt hash`},
		{"SHA-256-crypt", "x:$5$nZz.P6vgehbl7Ybk$WXvQr.W2bzMWy5wO3B18.691d7GUAPIXIWPKSgWGrd1\n", "SHA-256-crypt"},
		{"SHA-512-crypt", "x:$6$t602Q4ywDVncnSjS$zhMXMDMxXd2czaKKeDl4\n", "SHA-512-crypt"},
		{"DES crypt", "erin:EJwvw9Odw84PA\n", `web-users:1: user "erin": a DES crypt hash or a plain-text password`},
		{"plain text", "frank:pw-frank\n", `user "frank": a plain-text password or an unknown kind of hash`},
		{"$2x$", "x:$2x$" + aliceHash[4:] + "\n", "$2x$"},
		{"bcrypt cut short", "x:" + aliceHash[:59] + "\n", "a malformed bcrypt hash"},
		{"bcrypt with a bad character", "x:" + aliceHash[:40] + "!" + aliceHash[41:] + "\n", "a malformed bcrypt hash"},
		{"unknown $", "x:$9$abc\n", "an unknown kind of hash"},
		{"cost 3", "x:$2y$03$" + aliceHash[7:] + "\n", "bcrypt cost 3: want 4 to 17"},
		{"cost 18", "x:$2y$18$" + aliceHash[7:] + "\n", "bcrypt cost 18: want 4 to 17"},
		{"no hash", "alice:\n", `user "alice": no hash`},
		{"no colon", "alice\n", "web-users:1: want user:hash"},
		{"empty name", ":" + aliceHash + "\n", "web-users:1: empty user name"},
		{"control character", "al\x1bice:" + aliceHash + "\n", "control character"},
		{"duplicate", "alice:" + aliceHash + "\n\nalice:" + bobHash + "\n", `web-users:3: user "alice" is already on line 1`},
		{"line too long", "alice:" + aliceHash + "\n" + strings.Repeat("x", 70000) + "\n", "web-users:2:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := ParseUsers(strings.NewReader(tt.text), "web-users")
			if err == nil {
				t.Fatalf("got users %v, want an error with %q", u.Names(), tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got  %v\nwant %q in it", err, tt.want)
			}
			// Never the hash, whatever its kind.
			for _, line := range strings.Split(tt.text, "\n") {
				if _, h, ok := strings.Cut(line, ":"); ok && len(h) >= 8 && strings.Contains(err.Error(), h) {
					t.Errorf("the error quotes a hash: %v", err)
				}
			}
		})
	}
}

// Each line of testdata/other-kinds is what htpasswd writes without -B.
func TestParseUsersRefusesWhatHtpasswdWritesWithoutB(t *testing.T) {
	f, err := os.Open("testdata/other-kinds")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "#") {
			continue
		}
		n++
		if _, err := ParseUsers(strings.NewReader(sc.Text()), "f"); err == nil || !strings.Contains(err.Error(), "only bcrypt hashes are accepted") {
			t.Errorf("%s: got %v, want a refusal", sc.Text(), err)
		}
	}
	if n != 6 {
		t.Errorf("read %d lines, want 6", n)
	}
}

func TestLoadUsers(t *testing.T) {
	u, err := LoadUsers("testdata/web-users")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"alice", "bob"}, u.Names()); diff != "" {
		t.Errorf("names (-want +got):\n%s", diff)
	}
	if _, err := LoadUsers("testdata/missing"); err == nil || !strings.Contains(err.Error(), "users_file") {
		t.Errorf("missing file: got %v, want an error naming users_file", err)
	}
	if _, err := LoadUsers("testdata/other-kinds"); err == nil || !strings.Contains(err.Error(), "testdata/other-kinds:2:") {
		t.Errorf("other kinds: got %v, want an error naming file and line", err)
	}
}

func TestVerify(t *testing.T) {
	long := strings.Repeat("p", MaxPasswordLen)
	longHash, err := bcrypt.GenerateFromPassword([]byte(long), MinCost)
	if err != nil {
		t.Fatal(err)
	}
	u := mustUsers(t, "alice:"+aliceHash+"\nbob:"+bobHash+"\n"+
		// PHP's password_verify example, a $2y$ hash from another implementation
		"rasmus:$2y$10$.vGA1O9wmRjrwAVXD98HNOgsNpDczlqm3Jq7KnEd1rVAGv3Fykk1a\n"+
		"b:$2b$"+bobHash[4:]+"\n"+
		"long:"+string(longHash)+"\n")
	tests := []struct {
		user, password string
		want           bool
	}{
		{"alice", "correct horse", true},
		{"alice", "correct horse ", false},
		{"alice", "Correct horse", false},
		{"alice", "", false},
		{"bob", "hunter2", true},
		{"bob", "correct horse", false},
		{"rasmus", "rasmuslerdorf", true},
		{"b", "hunter2", true},
		{"nobody", "hunter2", false},
		{"", "", false},
		{"long", long, true},
		{"long", long + "x", false}, // bcrypt would match it: refused by length
	}
	for _, tt := range tests {
		if got := u.Verify(tt.user, tt.password); got != tt.want {
			t.Errorf("Verify(%q, %q) = %v, want %v", tt.user, tt.password, got, tt.want)
		}
	}
}

// An unknown user's password is checked against a dummy hash of the
// file's most common cost, so that it takes as long as a known one's.
func TestUnknownUserCostsABcryptCheck(t *testing.T) {
	u := mustUsers(t, "a:"+bobHash+"\nb:$2y$04$"+aliceHash[7:]+"\nc:"+aliceHash+"\n")
	if u.dummy != nil {
		t.Fatal("dummy made before it was needed")
	}
	u.Verify("nobody", "x")
	cost, err := bcrypt.Cost(u.dummy)
	if err != nil {
		t.Fatalf("no dummy hash after an unknown user: %v", err)
	}
	if cost != 4 {
		t.Errorf("dummy cost %d, want 4 (two users of cost 4, one of 5)", cost)
	}
}

func TestHashPassword(t *testing.T) {
	h, err := HashPassword([]byte("correct horse"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$2y$10$") || len(h) != 60 {
		t.Errorf("got %q, want $2y$10$ and 60 characters, as htpasswd -B -C 10 writes", h)
	}
	// Each check at cost 10 takes a second or two under -race: one will do.
	if u := mustUsers(t, "alice:"+h+"\n"); !u.Verify("alice", "correct horse") {
		t.Error("the hash does not verify its password")
	}
	for _, pw := range []string{"", strings.Repeat("x", MaxPasswordLen+1)} {
		if _, err := HashPassword([]byte(pw)); err == nil {
			t.Errorf("HashPassword(%d bytes): got no error", len(pw))
		}
	}
}

func TestReadPassword(t *testing.T) {
	tests := []struct {
		in, want string // want "" = an error
	}{
		{"pw\n", "pw"},
		{"pw\r\n", "pw"},
		{"pw", "pw"},
		{" pw with spaces \n", " pw with spaces "},
		{"first\nsecond\n", "first"},
		{"", ""},
		{"\n", ""},
		{"\r\n", ""},
	}
	for _, tt := range tests {
		got, err := ReadPassword(strings.NewReader(tt.in))
		if tt.want == "" {
			if err == nil {
				t.Errorf("ReadPassword(%q) = %q, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || string(got) != tt.want {
			t.Errorf("ReadPassword(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}
