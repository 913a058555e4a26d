package httpguard

import (
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
)

// Hosts is the set of Host header values a server answers to; its Handler
// answers any other with 421 Misdirected Request. The zero value allows
// loopback names and IP literals only.
//
// It defeats DNS rebinding: a hostile page on rebind.attacker.example
// makes its name resolve to 127.0.0.1 (or an internal address), then reads
// this server's answers as same-origin. The browser still sends
// Host: rebind.attacker.example, which no allowed name matches.
//
// Allowed are:
//   - localhost (a browser resolves it to loopback itself);
//   - any IP literal (127.0.0.1, ::1, 10.0.0.5): a browser sends one only
//     when the page's own address is that IP, whose content the attacker
//     does not control, so an IP literal cannot be a rebinding vector. This
//     keeps direct access by address (a pod IP, a scraper) working;
//   - the host of Listen, when it is a name;
//   - Names.
//
// Names are compared without case, port or trailing dot. A request without
// a Host header is refused: HTTP/1.1 requires one, and every browser sends it.
type Hosts struct {
	// Names are the host names allowed besides localhost: the names
	// operators and proxies reach the server by (dash.example.com). A port
	// in an entry is ignored. Default none.
	Names []string
	// Listen is the server's listen address (host:port); its host is
	// allowed when it is a name. Default "" (nothing added).
	Listen string
	// Exempt are URL paths answered whatever the Host header, for health
	// checks: container runtimes and load balancers send the Host they
	// like. Exact paths ("/healthz"); default none.
	Exempt []string
}

// Allowed reports whether a request whose Host header is host is for this
// server.
func (h Hosts) Allowed(host string) bool {
	name := canonicalHost(host)
	if name == "" {
		return false
	}
	if name == "localhost" {
		return true
	}
	if _, err := netip.ParseAddr(name); err == nil {
		return true
	}
	if h.Listen != "" && canonicalHost(h.Listen) == name {
		return true
	}
	for _, n := range h.Names {
		if canonicalHost(n) == name {
			return true
		}
	}
	return false
}

// Handler answers requests for another host with 421 Misdirected Request
// and a fixed one-line text (nothing of next, nor the Host echoed back),
// and passes the others, and those for an Exempt path, to next.
func (h Hosts) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !h.Allowed(r.Host) && !slices.Contains(h.Exempt, r.URL.Path) {
			http.Error(w, "misdirected request: this server does not answer to that host name", http.StatusMisdirectedRequest)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// canonicalHost is the host part of a Host header or host:port, without
// brackets, trailing dot or case: "Dash.Example.COM.:443" → "dash.example.com",
// "[::1]:8080" → "::1".
func canonicalHost(hostport string) string {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	} else if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	}
	return strings.TrimSuffix(strings.ToLower(host), ".")
}
