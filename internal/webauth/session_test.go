package webauth

import (
	"encoding/base64"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
)

func TestSessions(t *testing.T) {
	clk := clockwork.NewFakeClock()
	s := &Sessions{TTL: time.Hour, Clock: clk}
	id, sess := s.New("alice")
	if b, err := base64.RawURLEncoding.DecodeString(id); err != nil || len(b) != 32 {
		t.Errorf("id %q: %d bytes, %v; want 256 bits in base64url", id, len(b), err)
	}
	if b, err := base64.RawURLEncoding.DecodeString(sess.CSRF); err != nil || len(b) != 32 || sess.CSRF == id {
		t.Errorf("CSRF token %q: want 256 bits of its own", sess.CSRF)
	}
	id2, _ := s.New("alice")
	if id2 == id {
		t.Error("two sessions with one id")
	}
	got, ok := s.Get(id)
	if !ok || got.User != "alice" || got.CSRF != sess.CSRF || !got.Expires.Equal(clk.Now().Add(time.Hour)) {
		t.Errorf("Get = %+v, %v", got, ok)
	}
	for _, bad := range []string{"", "x", id + "x", id[:len(id)-1]} {
		if _, ok := s.Get(bad); ok {
			t.Errorf("Get(%q) found a session", bad)
		}
	}
	s.Delete(id2)
	if _, ok := s.Get(id2); ok {
		t.Error("a deleted session is still there")
	}
	clk.Advance(time.Hour - time.Nanosecond)
	if _, ok := s.Get(id); !ok {
		t.Error("expired early")
	}
	clk.Advance(time.Nanosecond)
	if _, ok := s.Get(id); ok {
		t.Error("alive after its TTL")
	}
	if n := s.Len(); n != 0 {
		t.Errorf("%d sessions left, want 0", n)
	}
}

func TestSessionsBounded(t *testing.T) {
	clk := clockwork.NewFakeClock()
	s := &Sessions{TTL: time.Hour, Max: 3, Clock: clk}
	a, _ := s.New("a")
	clk.Advance(time.Minute)
	b, _ := s.New("b")
	c, _ := s.New("c")
	d, _ := s.New("d") // full: a, the closest to expiring, goes
	if _, ok := s.Get(a); ok {
		t.Error("a was kept")
	}
	for _, id := range []string{b, c, d} {
		if _, ok := s.Get(id); !ok {
			t.Error("a newer session went")
		}
	}
	clk.Advance(time.Hour) // b, c and d expire
	e, _ := s.New("e")
	if n := s.Len(); n != 1 {
		t.Errorf("%d sessions, want only e: expired ones go first", n)
	}
	if _, ok := s.Get(e); !ok {
		t.Error("e is missing")
	}
}

func TestCheckCSRF(t *testing.T) {
	tests := []struct {
		session, token string
		want           bool
	}{
		{"tok", "tok", true},
		{"tok", "tok2", false},
		{"tok", "", false},
		{"tok", "TOK", false},
		{"", "", false}, // a session without a token accepts nothing
	}
	for _, tt := range tests {
		if got := (Session{CSRF: tt.session}).CheckCSRF(tt.token); got != tt.want {
			t.Errorf("CheckCSRF: session %q, token %q: got %v, want %v", tt.session, tt.token, got, tt.want)
		}
	}
}
