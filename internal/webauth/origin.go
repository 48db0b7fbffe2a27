package webauth

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
)

// ErrCrossOrigin is wrapped by CheckOrigin's error.
var ErrCrossOrigin = errors.New("cross-origin request refused")

// The standard library's check (Go 1.25): Sec-Fetch-Site same-origin or
// none, else an Origin whose host is the request's Host, else no browser
// headers at all. Its zero configuration trusts no other origin.
var crossOrigin = http.NewCrossOriginProtection()

// CheckOrigin refuses a state-changing request (any method but GET, HEAD
// and OPTIONS) that a browser sent from another site: a page elsewhere
// that posts a form to the gate, or scripts it, with the user's cookie or
// cached Basic credentials (CSRF). In order:
//   - Sec-Fetch-Site, which current browsers send: same-origin and none
//     (typed by the user) pass, same-site and cross-site do not;
//   - without it, Origin must name the request's Host;
//   - without either, a Referer, when there is one, must name the Host
//     (browsers too old to send Origin on a POST);
//   - with none of them the request is not from a browser's page (curl, a
//     script with Basic auth) and passes.
func CheckOrigin(r *http.Request) error {
	if err := crossOrigin.Check(r); err != nil {
		return fmt.Errorf("%w: %v", ErrCrossOrigin, err)
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return nil
	}
	if r.Header.Get("Sec-Fetch-Site") != "" || r.Header.Get("Origin") != "" {
		return nil // passed the check above
	}
	if ref := r.Referer(); ref != "" {
		if u, err := url.Parse(ref); err != nil || u.Host != r.Host {
			return fmt.Errorf("%w: Referer is not from host %s", ErrCrossOrigin, r.Host)
		}
	}
	return nil
}
