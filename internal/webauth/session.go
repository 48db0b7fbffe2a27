package webauth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
)

// Session defaults.
const (
	// DefaultSessionTTL is how long a panel login lasts: long enough that a
	// phone on the home screen is not logged out every few days; gated
	// forgets every session when it restarts anyway.
	DefaultSessionTTL  = 30 * 24 * time.Hour
	DefaultMaxSessions = 1000
)

// Session is a panel login.
type Session struct {
	User    string
	CSRF    string // the token the panel's forms and requests carry
	Expires time.Time
}

// Sessions is the server-side table of panel logins. Ids are 256 random
// bits; the table is keyed by their SHA-256, so a lookup's timing says
// nothing about the ids it holds. It holds at most Max sessions: a new one
// pushes out an expired one, else the one closest to expiring. Safe for
// concurrent use.
type Sessions struct {
	TTL   time.Duration // 0: DefaultSessionTTL
	Max   int           // 0: DefaultMaxSessions
	Clock clockwork.Clock

	mu sync.Mutex
	m  map[[32]byte]Session
}

func (s *Sessions) init() {
	if s.m == nil {
		s.m = map[[32]byte]Session{}
		if s.TTL <= 0 {
			s.TTL = DefaultSessionTTL
		}
		if s.Max <= 0 {
			s.Max = DefaultMaxSessions
		}
		if s.Clock == nil {
			s.Clock = clockwork.NewRealClock()
		}
	}
}

// randomToken is 256 random bits, base64url: a session id or a CSRF token.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24)
	return base64.RawURLEncoding.EncodeToString(b)
}

// New starts a session for user and returns its id (the cookie's value).
func (s *Sessions) New(user string) (string, Session) {
	id := randomToken()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	now := s.Clock.Now()
	if len(s.m) >= s.Max {
		var oldest [32]byte
		var first = true
		for k, v := range s.m {
			if !now.Before(v.Expires) {
				delete(s.m, k)
				continue
			}
			if first || v.Expires.Before(s.m[oldest].Expires) {
				oldest, first = k, false
			}
		}
		if len(s.m) >= s.Max {
			delete(s.m, oldest)
		}
	}
	sess := Session{User: user, CSRF: randomToken(), Expires: now.Add(s.TTL)}
	s.m[sha256.Sum256([]byte(id))] = sess
	return id, sess
}

// Get returns the live session with this id.
func (s *Sessions) Get(id string) (Session, bool) {
	if id == "" {
		return Session{}, false
	}
	k := sha256.Sum256([]byte(id))
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	sess, ok := s.m[k]
	if ok && !s.Clock.Now().Before(sess.Expires) {
		delete(s.m, k)
		return Session{}, false
	}
	return sess, ok
}

// Delete ends the session with this id, if there is one.
func (s *Sessions) Delete(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	delete(s.m, sha256.Sum256([]byte(id)))
}

// Len is how many sessions the table holds, expired ones included.
func (s *Sessions) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// CheckCSRF reports whether token is the session's CSRF token, comparing
// in constant time.
func (sess Session) CheckCSRF(token string) bool {
	return sess.CSRF != "" && subtle.ConstantTimeCompare([]byte(token), []byte(sess.CSRF)) == 1
}
