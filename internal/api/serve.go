package api

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"

	"github.com/meetops/meetops"
	"github.com/meetops/meetops/internal/httpguard"
	"github.com/meetops/meetops/internal/ratelimit"
	"github.com/meetops/meetops/internal/version"
)

// shutdownGrace is how long in-flight requests get after SIGTERM: the
// listener's write timeout, which no request outlives anyway.
const shutdownGrace = httpguard.DefaultWriteTimeout

// Run serves the API for cfg (validated) until ctx is cancelled, then
// stops taking connections, lets the requests in flight finish (up to
// shutdownGrace) and returns nil. It logs to logOut. Redis need not be up:
// requests answer 503 until it is, and /readyz says so.
func Run(ctx context.Context, cfg Config, logOut io.Writer) error {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	out := newLogBuffer(logOut)
	defer out.Close()
	log := NewLogger(out, cfg.LogLevel, cfg.LogFormat)
	for _, w := range cfg.Warnings() {
		log.Warn(w)
	}
	// go-redis prints its connection errors itself; the API answers them.
	redis.SetLogger(redisLogger{log.With("component", "go-redis")})
	client, err := meetops.NewClientFromConfig(cfg.Redis, meetops.WithDedupWindow(cfg.DedupWindow),
		meetops.WithCallbackHosts(cfg.CallbackAllowHosts...), meetops.WithDialTimeout(2*time.Second))
	if err != nil {
		return err
	}
	defer client.Close()
	limit, _ := ratelimit.ParseLimit(cfg.RateLimit) // validated
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s, err := New(Options{Producer: client, Tokens: cfg.Tokens, RateLimit: limit, Logger: log, Registerer: reg, Gatherer: reg})
	if err != nil {
		return err
	}
	defer s.Close()
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("API_ADDR %s: %w", cfg.Addr, err)
	}
	return Serve(ctx, ln, s.Handler(), log, cfg.String())
}

// Serve serves h on ln with the hardening every meetops listener has
// (httpguard: timeouts, header limit, security headers; the body limits
// are the API's own, per route) until ctx is cancelled, then shuts down
// gracefully and returns nil. about describes the configuration for the
// start-up line.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger, about string) error {
	srv := httpServer(h, log)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("api listening", "addr", ln.Addr().String(), "version", version.Version, "config", about)
	select {
	case err := <-served:
		return fmt.Errorf("api: serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: no new connections; finishing the requests in flight", "grace", shutdownGrace.String())
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	err := srv.Shutdown(sctx)
	if errors.Is(<-served, http.ErrServerClosed) && err == nil {
		log.Info("api stopped")
		return nil
	}
	return fmt.Errorf("api: shutdown: %w", err)
}

// httpServer is the API's http.Server for h: httpguard's timeouts, header
// cap and security headers, without a server-wide body cap (each route
// has its own), logging to log.
func httpServer(h http.Handler, log *slog.Logger) *http.Server {
	srv := httpguard.Server(h, httpguard.Options{MaxBodyBytes: -1})
	srv.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	return srv
}

// String describes the configuration for the start-up line, without a
// password or a token hash.
func (c Config) String() string {
	names := make([]string, len(c.Tokens))
	for i, t := range c.Tokens {
		names[i] = t.Name + ":" + string(t.Scope)
	}
	return fmt.Sprintf("redis %s, tokens %v, rate limit %s per token, callback hosts %v, dedup window %s",
		c.Redis, names, c.RateLimit, c.CallbackAllowHosts, c.DedupWindow)
}

// redisLogger sends go-redis's internal messages to the debug log.
type redisLogger struct{ l *slog.Logger }

// Printf implements go-redis's internal logging interface.
func (r redisLogger) Printf(ctx context.Context, format string, v ...any) {
	r.l.DebugContext(ctx, fmt.Sprintf(format, v...))
}

// logBuffer buffers log lines and writes them out at least every
// logFlushEvery, and at Close: one write for many access log lines instead
// of one per request (a line is at most that late, and lost if the
// process is killed within it).
type logBuffer struct {
	mu   sync.Mutex
	w    *bufio.Writer
	stop chan struct{}
	done chan struct{}
}

// logFlushEvery bounds how late a log line is written.
const logFlushEvery = 100 * time.Millisecond

func newLogBuffer(w io.Writer) *logBuffer {
	b := &logBuffer{w: bufio.NewWriterSize(w, 64<<10), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(b.done)
		t := time.NewTicker(logFlushEvery)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				b.flush()
			case <-b.stop:
				b.flush()
				return
			}
		}
	}()
	return b
}

// Write implements io.Writer; slog writes one whole line per call.
func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.w.Write(p)
}

func (b *logBuffer) flush() {
	b.mu.Lock()
	_ = b.w.Flush()
	b.mu.Unlock()
}

// Close writes out what is buffered and stops the flusher.
func (b *logBuffer) Close() {
	close(b.stop)
	<-b.done
}
