package webauth

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var lineRef = regexp.MustCompile(`^f:(\d+): `)

// FuzzParseUsers: any file either parses into users that are all well
// formed, or is refused with an error naming a line of it and quoting no
// hash. Seeds: testdata/fuzz/FuzzParseUsers and those below.
func FuzzParseUsers(f *testing.F) {
	f.Add("alice:" + aliceHash + "\nbob:" + bobHash + "\n")
	f.Add("# c\n\n alice:" + aliceHash + ":x \r\n")
	f.Add("carol:{SHA}fjq1BpLwXnYUjitZZc7LaExr1mY=\n")
	f.Add("alice:" + aliceHash + "\nalice:" + bobHash + "\n")
	f.Fuzz(func(t *testing.T, text string) {
		u, err := ParseUsers(strings.NewReader(text), "f")
		if err != nil {
			m := lineRef.FindStringSubmatch(err.Error())
			if m == nil {
				t.Fatalf("error without file:line: %v", err)
			}
			n, _ := strconv.Atoi(m[1])
			if lines := strings.Count(text, "\n") + 1; n < 1 || n > lines {
				t.Fatalf("error names line %d of %d: %v", n, lines, err)
			}
			for _, line := range strings.Split(text, "\n") {
				user, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
				hash, _, _ := strings.Cut(rest, ":")
				if ok && len(hash) >= 16 && !strings.Contains(user, hash) && strings.Contains(err.Error(), hash) {
					t.Fatalf("error quotes a hash %q: %v", hash, err)
				}
			}
			return
		}
		entries := 0
		for _, line := range strings.Split(text, "\n") {
			if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") {
				entries++
			}
		}
		names := u.Names()
		if len(names) != entries {
			t.Fatalf("%d users from %d entries", len(names), entries)
		}
		for _, n := range names {
			h := u.hashes[n]
			if n == "" || strings.ContainsAny(n, ":\n") || strings.ContainsFunc(n, isControl) || !u.Has(n) {
				t.Fatalf("bad user name %q", n)
			}
			if cost, err := checkHash(string(h)); err != nil || cost < MinCost || cost > MaxCost {
				t.Fatalf("user %q: a hash that checkHash refuses: %v", n, err)
			}
		}
	})
}
