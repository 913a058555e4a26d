package httpguard

import (
	"fmt"
	"net/http"
	"time"
)

// Options are a listener's timeouts and size limits. Zero values mean the
// defaults noted on each field; they suit a server whose requests are small
// and whose answers come within seconds (health, metrics, the dashboard, a
// JSON API).
type Options struct {
	// ReadHeaderTimeout bounds reading a request's line and headers, from
	// the first byte (for a kept-alive connection: from the end of the
	// previous response). Default DefaultReadHeaderTimeout (10s). It cuts
	// off a client that dribbles its headers (slowloris).
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, body included. Default
	// DefaultReadTimeout (30s). It cuts off a client that never finishes
	// its body.
	ReadTimeout time.Duration
	// WriteTimeout bounds the time from the end of the request headers to
	// the end of the response: reading the body, the handler and writing
	// the answer. Default DefaultWriteTimeout (60s). It must exceed
	// ReadTimeout, and the slowest handler.
	WriteTimeout time.Duration
	// IdleTimeout bounds how long a kept-alive connection waits for its
	// next request. Default DefaultIdleTimeout (120s).
	IdleTimeout time.Duration
	// MaxHeaderBytes caps a request's line and headers; a request over it
	// gets 431 Request Header Fields Too Large. Default
	// DefaultMaxHeaderBytes (64 KiB; net/http's own default is 1 MiB).
	// net/http allows 4 KiB of slack over the cap.
	MaxHeaderBytes int
	// MaxBodyBytes caps a request body: a declared Content-Length over it
	// gets 413 Content Too Large before the handler runs, and a longer
	// chunked body fails the handler's read (see LimitBody). Default
	// DefaultMaxBodyBytes (1 MiB); negative means no cap.
	MaxBodyBytes int64
}

// Defaults of Options.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 30 * time.Second
	DefaultWriteTimeout      = 60 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	DefaultMaxHeaderBytes    = 64 << 10
	DefaultMaxBodyBytes      = 1 << 20
)

// WithDefaults returns o with zero values replaced by their defaults.
func (o Options) WithDefaults() Options {
	if o.ReadHeaderTimeout == 0 {
		o.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if o.ReadTimeout == 0 {
		o.ReadTimeout = DefaultReadTimeout
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.MaxHeaderBytes == 0 {
		o.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	return o
}

// Server returns an *http.Server that serves h with o's timeouts and limits
// (defaults applied) and the security headers on every response, its own
// refusals (413) included: Headers(LimitBody(h, o.MaxBodyBytes)). The
// caller may add what is its own (an ErrorLog, TLS) before serving.
func Server(h http.Handler, o Options) *http.Server {
	o = o.WithDefaults()
	if o.MaxBodyBytes > 0 {
		h = LimitBody(h, o.MaxBodyBytes)
	}
	return &http.Server{
		Handler:           Headers(h),
		ReadHeaderTimeout: o.ReadHeaderTimeout,
		ReadTimeout:       o.ReadTimeout,
		WriteTimeout:      o.WriteTimeout,
		IdleTimeout:       o.IdleTimeout,
		MaxHeaderBytes:    o.MaxHeaderBytes,
	}
}

// LimitBody caps request bodies at n bytes: a request that declares a
// longer Content-Length gets 413 Content Too Large without reaching h, and
// any other body is wrapped in http.MaxBytesReader, whose reads fail past n
// (the handler answers that failure itself; the connection is then closed).
func LimitBody(h http.Handler, n int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > n {
			w.Header().Set("Connection", "close")
			http.Error(w, fmt.Sprintf("request body larger than %d bytes", n), http.StatusRequestEntityTooLarge)
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(w, r.Body, n)
		}
		h.ServeHTTP(w, r)
	})
}
