// Package httpguard is the HTTP hardening every meetops listener shares:
// the worker's HTTP server (health, metrics, dashboard), cmd/cloudsim, the
// dev mode's in-process simulator and the API server.
//
//   - [Server] builds an *http.Server with read, write and idle timeouts, a
//     header size limit (431 beyond it) and a request body limit (413):
//     a slow or oversized client is cut off instead of holding a
//     connection and a goroutine for ever. It adds Headers outermost.
//   - [Headers] adds the security headers every response carries: no
//     framing (X-Frame-Options, CSP frame-ancestors) and no MIME sniffing.
//   - [Hosts] answers only requests whose Host header names this server
//     (loopback names, IP literals, the listen address's host, an
//     allow-list), which defeats DNS rebinding: a page on
//     rebind.attacker.example whose name now resolves to 127.0.0.1 still
//     sends Host: rebind.attacker.example.
//   - [CrossOrigin] refuses cross-origin browser requests that could change
//     state (every method but GET, HEAD and OPTIONS), which defeats
//     cross-site request forgery even when the browser resends cached
//     basic-auth credentials.
//
// Compose them outermost first; Server puts the headers and the body limit
// around the result, so every refusal carries the headers:
//
//	hosts := httpguard.Hosts{Listen: addr, Exempt: []string{"/healthz"}}
//	srv := httpguard.Server(hosts.Handler(httpguard.CrossOrigin(mux)), httpguard.Options{})
//
// It imports only the standard library: the producer side uses it too.
package httpguard
