// Package webauth decides who may do what on gated's web panel and HTTP
// API: users and their bcrypt hashes from an htpasswd file, operators (who
// may command) and viewers (who may look), HTTP Basic for scripts, a
// session cookie and a CSRF token for the panel, refusal of cross-origin
// state changes, and a throttle on failed logins.
//
// It knows nothing of the gate: the HTTP link mounts its handlers behind
// Auth.Require and reads the caller with FromContext.
//
// No password or hash is ever logged or put in an error.
package webauth

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/crypto/bcrypt"
)

// Costs of the bcrypt hashes.
const (
	// HashCost is the cost of the hashes HashPassword makes: about 60 ms on
	// a desktop, a second on a Raspberry Pi Zero.
	HashCost = 10
	// MinCost and MaxCost bound the costs a users file may hold: the range
	// htpasswd -B -C accepts. A higher cost would make each login take
	// minutes on a Pi, an easy way to keep it busy.
	MinCost = 4
	MaxCost = 17
	// MaxPasswordLen is bcrypt's limit: it reads no further than 72 bytes,
	// so a longer password would match any other with the same first 72.
	MaxPasswordLen = 72
)

// bcryptHash is a hash as htpasswd -B writes it: $2y$ (or $2a$, $2b$, the
// same algorithm for passwords of 72 bytes or less), a two-digit cost, 22
// characters of salt and 31 of hash in bcrypt's base64.
var bcryptHash = regexp.MustCompile(`^\$2[aby]\$[0-9]{2}\$[./A-Za-z0-9]{53}$`)

// Users are the users of an htpasswd file and their bcrypt hashes.
type Users struct {
	hashes map[string][]byte
	cost   int // the most common cost, for the dummy hash

	dummyOnce sync.Once
	dummy     []byte
}

// LoadUsers reads an htpasswd file (users_file); see ParseUsers.
func LoadUsers(path string) (*Users, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("users_file: %w", err)
	}
	defer f.Close()
	return ParseUsers(f, path)
}

// ParseUsers reads an htpasswd file: one "user:hash" a line, white space
// around a line, blank lines and lines starting with # ignored, and, as
// Apache does, anything after a second colon. Only bcrypt hashes as
// htpasswd -B writes them are accepted; any other kind of hash ({SHA},
// $apr1$, crypt, SHA-crypt, plain text) is an error naming the file (name)
// and line, and the kind, never the hash. A user twice is an error. No
// users is not an error.
func ParseUsers(r io.Reader, name string) (*Users, error) {
	u := &Users{hashes: map[string][]byte{}}
	first := map[string]int{}
	costs := map[int]int{}
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		user, rest, ok := strings.Cut(text, ":")
		if !ok {
			return nil, fmt.Errorf("%s:%d: want user:hash", name, line)
		}
		if user == "" {
			return nil, fmt.Errorf("%s:%d: empty user name", name, line)
		}
		if strings.ContainsFunc(user, isControl) {
			return nil, fmt.Errorf("%s:%d: user %q: a control character in the name", name, line, user)
		}
		if l, dup := first[user]; dup {
			return nil, fmt.Errorf("%s:%d: user %q is already on line %d", name, line, user, l)
		}
		hash, _, _ := strings.Cut(rest, ":")
		cost, err := checkHash(hash)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: user %q: %w", name, line, user, err)
		}
		first[user] = line
		u.hashes[user] = []byte(hash)
		costs[cost]++
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s:%d: %w", name, line+1, err)
	}
	for c, n := range costs {
		if n > costs[u.cost] || n == costs[u.cost] && c > u.cost {
			u.cost = c
		}
	}
	return u, nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// checkHash returns a bcrypt hash's cost, or says which kind of hash it is
// instead, without quoting it.
func checkHash(h string) (int, error) {
	if bcryptHash.MatchString(h) {
		cost, _ := strconv.Atoi(h[4:6])
		if cost < MinCost || cost > MaxCost {
			return 0, fmt.Errorf("bcrypt cost %d: want %d to %d (htpasswd -B -C)", cost, MinCost, MaxCost)
		}
		return cost, nil
	}
	return 0, fmt.Errorf("%s: only bcrypt hashes are accepted (htpasswd -B, or gated -hash-password)", hashKind(h))
}

func hashKind(h string) string {
	switch {
	case h == "":
		return "no hash"
	case strings.HasPrefix(h, "{SHA}"):
		return "a SHA-1 hash ({SHA})"
	case strings.HasPrefix(h, "$apr1$"):
		return "an Apache MD5 hash ($apr1$)"
	case strings.HasPrefix(h, "$1$"):
		return "an MD5-crypt hash ($1$)"
	case strings.HasPrefix(h, "$5$"):
		return "a SHA-256-crypt hash ($5$)"
	case strings.HasPrefix(h, "$6$"):
		return "a SHA-512-crypt hash ($6$)"
	case strings.HasPrefix(h, "$2x$"):
		return "a $2x$ bcrypt hash (the old crypt_blowfish bug)"
	case strings.HasPrefix(h, "$2"):
		return "a malformed bcrypt hash"
	case strings.HasPrefix(h, "$"):
		return "an unknown kind of hash"
	case len(h) == 13:
		return "a DES crypt hash or a plain-text password"
	}
	return "a plain-text password or an unknown kind of hash"
}

// Names returns the user names, sorted.
func (u *Users) Names() []string {
	var n []string
	for name := range u.hashes {
		n = append(n, name)
	}
	sort.Strings(n)
	return n
}

// Has reports whether name is a user.
func (u *Users) Has(name string) bool {
	_, ok := u.hashes[name]
	return ok
}

// Verify reports whether password is name's. It takes as long for a user
// that does not exist (it checks a dummy hash of the file's most common
// cost), so that the time of a refusal does not tell which names exist;
// bcrypt compares in constant time. A password longer than MaxPasswordLen
// never matches.
func (u *Users) Verify(name, password string) bool {
	h, ok := u.hashes[name]
	if !ok {
		h = u.dummyHash()
	}
	if len(password) > MaxPasswordLen {
		ok = false
		password = password[:MaxPasswordLen] // still spend the time
	}
	err := bcrypt.CompareHashAndPassword(h, []byte(password))
	return ok && err == nil
}

// dummyHash is made on first use (New starts that in the background):
// making it costs as much as a login.
func (u *Users) dummyHash() []byte {
	u.dummyOnce.Do(func() {
		cost := u.cost
		if cost == 0 {
			cost = HashCost
		}
		h, err := bcrypt.GenerateFromPassword([]byte("no such user"), cost)
		if err != nil { // only if the system has no randomness
			h = []byte("$2a$10$0123456789012345678901uKzVn6tWOkYA1kCKd3VXHcHb6PVKx5K")
		}
		u.dummy = h
	})
	return u.dummy
}

// HashPassword returns password's bcrypt hash of cost HashCost as
// htpasswd -B writes it ($2y$), for gated -hash-password. An empty
// password or one longer than MaxPasswordLen is an error.
func HashPassword(password []byte) (string, error) {
	if len(password) == 0 {
		return "", errors.New("hash-password: empty password")
	}
	if len(password) > MaxPasswordLen {
		return "", fmt.Errorf("hash-password: password longer than %d bytes, which bcrypt cannot tell apart", MaxPasswordLen)
	}
	h, err := bcrypt.GenerateFromPassword(password, HashCost)
	if err != nil {
		return "", fmt.Errorf("hash-password: %w", err)
	}
	// Go writes $2a$; $2y$ is what htpasswd -B writes, the same algorithm
	// for passwords this short.
	return "$2y$" + string(h[4:]), nil
}

// ReadPassword reads the password gated -hash-password hashes: the first
// line of r, without its line ending (\n or \r\n), as `echo pw |` or a
// terminal gives it. Only an empty input is an error.
func ReadPassword(r io.Reader) ([]byte, error) {
	b, err := bufio.NewReader(io.LimitReader(r, 4096)).ReadBytes('\n')
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("hash-password: reading the password: %w", err)
	}
	b = bytes.TrimSuffix(bytes.TrimSuffix(b, []byte("\n")), []byte("\r"))
	if len(b) == 0 {
		return nil, errors.New("hash-password: no password on standard input")
	}
	return b, nil
}
