package webauth

import (
	"container/list"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
)

// Throttle defaults: SPEC.md's five failed logins from one address within
// a minute answer 429 for a minute.
const (
	DefaultMaxFailures  = 5
	DefaultWindow       = time.Minute
	DefaultBlock        = time.Minute
	DefaultMaxAddresses = 10000
)

// Throttle counts failed logins by client address in a sliding window and
// blocks an address that reaches the limit. It remembers at most
// MaxAddresses addresses, forgetting the least recently seen first, so an
// attacker with many addresses costs bounded memory (and can at worst
// push an older block out). Safe for concurrent use.
type Throttle struct {
	MaxFailures  int           // failures within Window that block; 0: DefaultMaxFailures
	Window       time.Duration // 0: DefaultWindow
	Block        time.Duration // how long a block lasts; 0: DefaultBlock
	MaxAddresses int           // 0: DefaultMaxAddresses
	Clock        clockwork.Clock

	mu  sync.Mutex
	m   map[string]*list.Element
	lru list.List // of *tracked, most recently seen first
}

type tracked struct {
	addr  string
	fails []time.Time // within the window, oldest first
	until time.Time   // blocked until then
}

func (t *Throttle) init() {
	if t.m == nil {
		t.m = map[string]*list.Element{}
		if t.MaxFailures <= 0 {
			t.MaxFailures = DefaultMaxFailures
		}
		if t.Window <= 0 {
			t.Window = DefaultWindow
		}
		if t.Block <= 0 {
			t.Block = DefaultBlock
		}
		if t.MaxAddresses <= 0 {
			t.MaxAddresses = DefaultMaxAddresses
		}
		if t.Clock == nil {
			t.Clock = clockwork.NewRealClock()
		}
	}
}

// Blocked reports whether addr is blocked, and for how long still.
func (t *Throttle) Blocked(addr string) (bool, time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.init()
	e, ok := t.m[addr]
	if !ok {
		return false, 0
	}
	left := e.Value.(*tracked).until.Sub(t.Clock.Now())
	return left > 0, max(left, 0)
}

// Fail counts a failed login from addr and reports whether addr is now
// blocked. Failures while blocked are not counted: the block is not
// extended by an attacker who keeps trying.
func (t *Throttle) Fail(addr string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.init()
	now := t.Clock.Now()
	el, ok := t.m[addr]
	if ok {
		t.lru.MoveToFront(el)
	} else {
		if t.lru.Len() >= t.MaxAddresses {
			old := t.lru.Back()
			t.lru.Remove(old)
			delete(t.m, old.Value.(*tracked).addr)
		}
		el = t.lru.PushFront(&tracked{addr: addr})
		t.m[addr] = el
	}
	tr := el.Value.(*tracked)
	if now.Before(tr.until) {
		return true
	}
	keep := tr.fails[:0]
	for _, f := range tr.fails {
		if now.Sub(f) < t.Window {
			keep = append(keep, f)
		}
	}
	tr.fails = append(keep, now)
	if len(tr.fails) >= t.MaxFailures {
		tr.fails = nil
		tr.until = now.Add(t.Block)
		return true
	}
	return false
}

// Len is how many addresses the throttle remembers.
func (t *Throttle) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lru.Len()
}

// ClientAddr is the address a request's failures are counted under: the
// peer's IP address (no port), or its /64 for IPv6, since one host
// commonly holds a whole /64. A proxy's X-Forwarded-For is not trusted:
// gated is meant to be reached directly on the local network.
func ClientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.WithZone("").Prefix(64)
		return p.String()
	}
	return a.String()
}
