package weblink

import "net/http"

// Security headers sent with every answer (miniflux's
// internal/http/response does the same).
const (
	// contentSecurityPolicy lets the page load scripts, styles, images and
	// its manifest from gated only, and run no inline script or style nor
	// eval: an injected <script> or on…= attribute does nothing (XSS).
	// connect-src 'self' allows the page's fetch and EventSource calls;
	// form-action 'self' stops an injected form posting the CSRF token
	// elsewhere; frame-ancestors 'none' stops another site framing the
	// panel to trick a thumb into pressing Open (clickjacking);
	// base-uri 'none' stops an injected <base> redirecting relative URLs.
	contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
		"connect-src 'self'; manifest-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
	// noSniff stops a browser guessing a content type, so a JSON answer
	// that echoes text is never run as HTML or script.
	noSniff = "nosniff"
	// frameOptions is frame-ancestors 'none' for browsers that predate CSP 2.
	frameOptions = "DENY"
	// referrerPolicy keeps the panel's URLs (and the address of the gate)
	// out of Referer headers sent to other sites.
	referrerPolicy = "no-referrer"
	// noStore keeps statuses, events and pages out of caches: an old state
	// shown as current is worse than a reload.
	noStore = "no-store"
)

func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", contentSecurityPolicy)
		hd.Set("X-Content-Type-Options", noSniff)
		hd.Set("X-Frame-Options", frameOptions)
		hd.Set("Referrer-Policy", referrerPolicy)
		hd.Set("Cache-Control", noStore)
		h.ServeHTTP(w, r)
	})
}
