package main

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
	"github.com/spf13/cobra"

	"github.com/meetops/meetops"
	"github.com/meetops/meetops/internal/bulk"
)

// Exit codes (DESIGN.md).
const (
	exitOK        = 0
	exitFailure   = 1
	exitUsage     = 2
	exitKeyReused = 3
)

// usageError is a wrong command line: exit 2, with a pointer to --help.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// exitError ends the command with code; err, when not nil, is printed.
// A nil err means the command already said what went wrong.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// ranError marks an error returned by one of our commands, as opposed to
// cobra's own command-line parsing errors, which are all usage errors.
type ranError struct{ err error }

func (e *ranError) Error() string { return e.err.Error() }

// runE wraps a command's RunE so report can tell its errors from cobra's.
func runE(fn func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if err := fn(cmd, args); err != nil {
			return &ranError{err: err}
		}
		return nil
	}
}

// report prints err (one line) and returns the exit code.
func (a *app) report(cmd *cobra.Command, err error) int {
	if err == nil {
		return exitOK
	}
	var ran *ranError
	if !errors.As(err, &ran) {
		a.usage(cmd, err.Error())
		return exitUsage
	}
	err = ran.err
	var ee *exitError
	var ue *usageError
	switch {
	case errors.As(err, &ee):
		if ee.err != nil {
			a.printErr(ee.err)
		}
		return ee.code
	case errors.As(err, &ue):
		a.usage(cmd, ue.msg)
		return exitUsage
	case errors.Is(err, meetops.ErrKeyReused):
		a.printErr(err)
		return exitKeyReused
	case errors.Is(err, meetops.ErrInvalid):
		a.printErr(err)
		return exitUsage
	}
	a.printErr(err)
	return exitFailure
}

func (a *app) printErr(err error) {
	fmt.Fprintf(a.stderr, "enqueue: %s\n", bulk.OneLine(err))
}

func (a *app) usage(cmd *cobra.Command, msg string) {
	fmt.Fprintf(a.stderr, "enqueue: %s\n", msg)
	if cmd != nil {
		fmt.Fprintf(a.stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
}

// describeRedisError turns a failed connection check into one line that
// says what is wrong and what to check. The password never appears.
func describeRedisError(rawURL string, timeout time.Duration, err error) error {
	addr := rawURL
	timeoutHint := "unreachable, or a TLS port addressed with redis://?"
	if o, perr := redis.ParseURL(rawURL); perr == nil {
		addr = o.Addr
		if o.TLSConfig != nil {
			timeoutHint = "unreachable, or a server without TLS addressed with rediss://?"
		}
	}
	msg := unwrapAll(err).Error()
	var recordErr tls.RecordHeaderError
	var certErr *tls.CertificateVerificationError
	var netErr net.Error
	switch {
	case strings.Contains(msg, "WRONGPASS") || strings.Contains(msg, "NOAUTH") ||
		strings.Contains(msg, "AUTH") && strings.Contains(msg, "password"):
		return fmt.Errorf("wrong credentials for Redis at %s: check the password in --redis-url (%s)", addr, firstLine(msg))
	case errors.As(err, &recordErr):
		return fmt.Errorf("TLS handshake with Redis at %s failed: the server does not speak TLS (use redis://, not rediss://)", addr)
	case errors.As(err, &certErr) || strings.HasPrefix(msg, "tls:") || strings.Contains(msg, "x509:"):
		return fmt.Errorf("TLS handshake with Redis at %s failed: %s", addr, firstLine(msg))
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("cannot connect to Redis at %s: connection refused (is it running, on this port?)", addr)
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &netErr) && netErr.Timeout():
		return fmt.Errorf("no answer from Redis at %s within %s (%s)", addr, timeout, timeoutHint)
	case errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET):
		return fmt.Errorf("connection closed by Redis at %s (a TLS port addressed with redis://? use rediss://)", addr)
	}
	return fmt.Errorf("cannot talk to Redis at %s: %s", addr, firstLine(msg))
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}
