// Package callback delivers batch completion callbacks: one signed POST of
// the batch's progress per completion, to a URL the batch's producer gave,
// under rules that keep the worker from being turned against its own
// network (SSRF).
//
// The rules ([Policy]): the URL is http or https without credentials; its
// host is on the allow-list (CALLBACK_ALLOW_HOSTS: host names or IP
// literals, no ports; empty refuses every callback); and every address it
// resolves to must be public — a loopback, private, link-local, unique
// local, CGNAT or unspecified address is refused unless that address is
// itself the URL's host, as an IP literal on the list. Producers check when the batch is created; the
// worker checks again when it delivers, after DNS, on the very address it
// connects to (a name that resolves elsewhere between the two is caught),
// and never follows a redirect.
//
// The delivery ([Sign], [Handler]): header Meetops-Signature
// "t=UNIX,v1=HEX", HEX the lower-case hex HMAC-SHA256 of t + "." + body
// under the worker's CALLBACK_SECRET, and Meetops-Delivery
// "<batch_id>:<n>" (n counts the batch's completions), which receivers
// use to de-duplicate. It runs as an asynq task of its own type
// (meetops:batch:callback): retried with backoff on 5xx, timeouts and
// refused connections, dead-lettered on any other answer that is not 2xx.
package callback

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strings"
)

// ErrRefused is a callback URL the policy refuses.
var ErrRefused = errors.New("callback URL refused")

// Resolver looks up a host's addresses; *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Policy says which callback URLs are allowed. Its zero value allows none.
type Policy struct {
	// AllowHosts are the host names and IP literals callbacks may go to
	// (CALLBACK_ALLOW_HOSTS), compared without case; no ports. Empty:
	// every callback is refused.
	AllowHosts []string
	// Resolver resolves host names; nil means net.DefaultResolver.
	Resolver Resolver
}

// ParseHosts splits CALLBACK_ALLOW_HOSTS ("hooks.example.com,10.0.0.7")
// into host names and IP literals, refusing an entry with a port, a
// scheme or a path.
func ParseHosts(v string) ([]string, error) {
	var hosts []string
	for _, h := range strings.Split(v, ",") {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		if strings.ContainsAny(h, "/:@ ") && !isIPv6(h) {
			return nil, fmt.Errorf("%q: want a host name or an IP literal, without port, scheme or path", h)
		}
		hosts = append(hosts, strings.ToLower(strings.Trim(h, "[]")))
	}
	return hosts, nil
}

func isIPv6(h string) bool {
	a, err := netip.ParseAddr(strings.Trim(h, "[]"))
	return err == nil && a.Is6()
}

// Check reports whether raw may receive callbacks: its form, its host on
// the allow-list, and every address the host resolves to (now) allowed. The
// error matches ErrRefused and says why.
func (p Policy) Check(ctx context.Context, raw string) error {
	host, err := p.checkURL(raw)
	if err != nil {
		return err
	}
	addrs, err := p.resolve(ctx, host)
	if err != nil {
		return fmt.Errorf("%w: %s does not resolve: %v", ErrRefused, host, err)
	}
	for _, a := range addrs {
		if err := p.CheckAddr(host, a); err != nil {
			return err
		}
	}
	return nil
}

// checkURL checks raw's form and that its host is on the list, and
// returns the host.
func (p Policy) checkURL(raw string) (string, error) {
	if len(p.AllowHosts) == 0 {
		return "", fmt.Errorf("%w: callbacks are not enabled (CALLBACK_ALLOW_HOSTS is empty)", ErrRefused)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrRefused, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("%w: want an http or https URL, got %q", ErrRefused, u.Scheme)
	}
	if u.User != nil {
		return "", fmt.Errorf("%w: credentials in the URL", ErrRefused)
	}
	host := strings.ToLower(u.Hostname())
	if host == "" {
		return "", fmt.Errorf("%w: no host", ErrRefused)
	}
	if !slices.Contains(p.AllowHosts, host) {
		return "", fmt.Errorf("%w: host %s is not in CALLBACK_ALLOW_HOSTS", ErrRefused, host)
	}
	return host, nil
}

func (p Policy) resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a}, nil
	}
	r := p.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	addrs, err := r.LookupNetIP(ctx, "ip", host)
	if err == nil && len(addrs) == 0 {
		err = errors.New("no addresses")
	}
	return addrs, err
}

// CheckAddr reports whether a callback to host may connect to addr: a
// public address, or an internal one (loopback, private, link-local…) only
// when host is that very address as an IP literal and listed in
// AllowHosts. A name that resolves to an internal address is refused even
// when the name is listed: listing a name says where it should point, not
// that whatever it resolves to today is trusted.
func (p Policy) CheckAddr(host string, addr netip.Addr) error {
	addr = addr.Unmap()
	if !internal(addr) {
		return nil
	}
	if lit, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil && lit.Unmap() == addr && slices.Contains(p.AllowHosts, addr.String()) {
		return nil
	}
	return fmt.Errorf("%w: %s resolves to %s, a loopback, private or link-local address (allowed only as an IP literal listed in CALLBACK_ALLOW_HOSTS)", ErrRefused, host, addr)
}

// cgnat is the shared address space of carrier-grade NAT (RFC 6598).
var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// internal reports whether addr is not a public unicast address: loopback,
// private (RFC 1918, unique local), link-local (169.254.0.0/16, where
// cloud metadata services answer, and fe80::/10), CGNAT, multicast or
// unspecified.
func internal(addr netip.Addr) bool {
	return addr.IsLoopback() || addr.IsPrivate() || addr.IsLinkLocalUnicast() || addr.IsLinkLocalMulticast() ||
		addr.IsInterfaceLocalMulticast() || addr.IsMulticast() || addr.IsUnspecified() || cgnat.Contains(addr) ||
		!addr.IsValid()
}
