package httpguard

import "net/http"

// securityHeaders are the headers Headers sets (X-Frame-Options for older
// browsers, CSP frame-ancestors for current ones); a fixed array, so no
// caller can change them for every server of the process.
var securityHeaders = [...][2]string{
	{"X-Frame-Options", "DENY"},
	{"Content-Security-Policy", "frame-ancestors 'none'"},
	{"X-Content-Type-Options", "nosniff"},
}

// Headers sets the security headers on every response of h, before h runs
// (so errors and refusals carry them too): X-Frame-Options: DENY,
// Content-Security-Policy: frame-ancestors 'none' (no other page may frame
// this server's: clickjacking) and X-Content-Type-Options: nosniff
// (browsers must not run a text/plain answer as a script). h may still
// replace one. There is no script-src: the dashboard's page carries inline
// scripts.
func Headers(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hdr := w.Header()
		for _, kv := range securityHeaders {
			hdr.Set(kv[0], kv[1])
		}
		h.ServeHTTP(w, r)
	})
}

// CrossOrigin refuses, with 403 Forbidden, cross-origin browser requests
// whose method may change state (all but GET, HEAD and OPTIONS): those
// whose Sec-Fetch-Site header is neither same-origin nor none, or, from a
// browser too old to send it, whose Origin header's host is not the Host
// header. Requests with neither header (curl, Go clients, scripts) pass:
// they are not a browser acting for a hostile page. It is
// http.CrossOriginProtection with its defaults.
//
// A browser resends cached basic-auth credentials with any request to the
// origin, and form posts and no-cors fetches are sent cross-site without a
// CORS preflight; without this check, any page the operator visits could
// pause queues or delete tasks through a writable dashboard.
func CrossOrigin(h http.Handler) http.Handler {
	return http.NewCrossOriginProtection().Handler(h)
}
