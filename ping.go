package meetops

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// Ping checks that Redis answers, within ctx: on Redis Cluster every
// primary, on Sentinel the primary the sentinels name. For one Redis made
// by NewClient or NewClientFromConfig it tries once, on a connection of
// its own, so that its error is the cause (connection refused, wrong
// password, a TLS mismatch) rather than the deadline that go-redis'
// retries would run into.
//
// The error is one line that says what is wrong and what to check (a
// refused connection, wrong credentials, a TLS mismatch either way, no
// answer in time), never with the password; it wraps the cause.
func (c *Client) Ping(ctx context.Context) error {
	budget := c.dialTimeout
	if d, ok := ctx.Deadline(); ok {
		budget = time.Until(d).Round(10 * time.Millisecond)
	}
	rdb := c.rdb
	if c.redisOpts != nil {
		o := *c.redisOpts
		o.MaxRetries, o.DialerRetries, o.PoolSize = -1, 1, 1
		once := redis.NewClient(&o)
		defer once.Close()
		rdb = once
	}
	var err error
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
			return node.Ping(ctx).Err()
		})
	} else {
		err = rdb.Ping(ctx).Err()
	}
	if err != nil {
		return c.diagnose(err, budget)
	}
	return nil
}

// diagnose turns a failed connection check into one line that says what
// is wrong and what to check, wrapping err.
func (c *Client) diagnose(err error, budget time.Duration) error {
	addr, tlsOn := c.where, false
	if addr == "" {
		addr = "(the client's Redis)"
	}
	if c.redisOpts != nil {
		tlsOn = c.redisOpts.TLSConfig != nil
	}
	timeoutHint := "unreachable, or a TLS port addressed with redis://?"
	if tlsOn {
		timeoutHint = "unreachable, or a server without TLS addressed with rediss://?"
	}
	msg := firstLine(innermost(err).Error())
	var recordErr tls.RecordHeaderError
	var certErr *tls.CertificateVerificationError
	var netErr net.Error
	var format string
	switch {
	case strings.Contains(msg, "WRONGPASS") || strings.Contains(msg, "NOAUTH") ||
		strings.Contains(msg, "AUTH") && strings.Contains(msg, "password"):
		format = "wrong credentials for Redis at %s: check the password in the Redis URL (%s)"
	case errors.As(err, &recordErr):
		return &pingError{fmt.Sprintf("TLS handshake with Redis at %s failed: the server does not speak TLS (use redis://, not rediss://)", addr), err}
	case errors.As(err, &certErr) || strings.HasPrefix(msg, "tls:") || strings.Contains(msg, "x509:"):
		format = "TLS handshake with Redis at %s failed: %s"
	case errors.Is(err, syscall.ECONNREFUSED):
		return &pingError{fmt.Sprintf("cannot connect to Redis at %s: connection refused (is it running, on this port?)", addr), err}
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &netErr) && netErr.Timeout():
		return &pingError{fmt.Sprintf("no answer from Redis at %s within %s (%s)", addr, budget, timeoutHint), err}
	case errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET):
		return &pingError{fmt.Sprintf("connection closed by Redis at %s (a TLS port addressed with redis://? use rediss://)", addr), err}
	default:
		format = "cannot talk to Redis at %s: %s"
	}
	return &pingError{fmt.Sprintf(format, addr, msg), err}
}

// pingError is Ping's diagnosis, wrapping the cause.
type pingError struct {
	msg string
	err error
}

func (e *pingError) Error() string { return e.msg }
func (e *pingError) Unwrap() error { return e.err }

// innermost returns the innermost error err wraps.
func innermost(err error) error {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		err = next
	}
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}
