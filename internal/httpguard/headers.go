package httpguard

import "net/http"

// SecurityHeaders are the headers Headers sets on every response:
// no page may frame this server's (clickjacking; CSP frame-ancestors for
// current browsers, X-Frame-Options for older ones), and browsers must not
// second-guess a response's Content-Type (a text/plain answer is never run
// as a script). No script-src: the dashboard's page carries inline scripts.
var SecurityHeaders = map[string]string{
	"X-Frame-Options":         "DENY",
	"Content-Security-Policy": "frame-ancestors 'none'",
	"X-Content-Type-Options":  "nosniff",
}

// Headers sets SecurityHeaders on every response of h, before h runs (so
// errors and refusals carry them too); h may still replace one.
func Headers(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hdr := w.Header()
		for k, v := range SecurityHeaders {
			hdr.Set(k, v)
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
