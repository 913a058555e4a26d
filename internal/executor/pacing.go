package executor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"syscall"
	"time"

	"github.com/meetops/meetops/internal/apiclient"
	"github.com/meetops/meetops/internal/breaker"
	"github.com/meetops/meetops/internal/ledger"
	"github.com/meetops/meetops/internal/retry"
)

// pace waits for the group's rate limit. The limiter tells the task when
// its turn comes. A short wait happens in place; a long one becomes a
// Deferral, which asynq reschedules without spending a retry, for
// ComeBackEarly less than the wait: the task is back before its turn
// whatever asynq's polling delays, and waits the rest in place, so no call
// slot is wasted on a task that is late. On the last attempt asynq would
// archive a deferred task, so there it always waits in place.
func (h *Handler) pace(ctx context.Context, a attempt, group string) error {
	if h.deps.Limiter == nil {
		return nil
	}
	for {
		wait, err := h.deps.Limiter.Allow(ctx, group, a.key, h.deps.Priorities[a.queue])
		if err != nil {
			return fmt.Errorf("rate limit %s: %w", group, err)
		}
		if wait <= 0 {
			return nil
		}
		if early := h.deps.ComeBackEarly; wait > early && !a.last {
			h.deps.Metrics.Task(a.task.Type(), "deferred")
			return &retry.Deferral{After: wait - early, Reason: "ratelimit"}
		}
		// The wait is this task's turn; a little jitter spreads the asks of
		// tasks whose turns coincide (several workers, one slot).
		if err := sleep(ctx, wait+time.Duration(rand.Int64N(int64(wait)/20+1))); err != nil {
			return err
		}
	}
}

// guard asks the group's breaker whether a call may go, before the rate
// limiter (an open breaker takes no call slot). While the breaker is open
// the task is deferred (no retry spent) until the next probe is due, or
// waits in place for a short wait or on its last attempt, as pace does.
func (h *Handler) guard(ctx context.Context, a attempt, group string) (breaker.Ticket, error) {
	if h.deps.Breaker == nil {
		return breaker.Ticket{}, nil
	}
	for {
		tk, wait, err := h.deps.Breaker.Allow(ctx, group)
		if err != nil {
			return breaker.Ticket{}, fmt.Errorf("breaker %s: %w", group, err)
		}
		if wait <= 0 {
			return tk, nil
		}
		if wait > maxInlineBreakerWait && !a.last {
			h.deps.Metrics.Task(a.task.Type(), "deferred")
			return breaker.Ticket{}, &retry.Deferral{After: wait, Reason: "breaker"}
		}
		if err := sleep(ctx, wait); err != nil {
			return breaker.Ticket{}, err
		}
	}
}

// maxInlineBreakerWait is the longest wait for an open breaker spent
// holding a worker slot (the probe may go to any task, so a deferred task
// need not come back early for it).
const maxInlineBreakerWait = time.Second

// recordOutcome tells the breaker the outcome of the call tk let
// through, unless it was told already (tk zero).
func (h *Handler) recordOutcome(ctx context.Context, tk breaker.Ticket, o breaker.Outcome) {
	if h.deps.Breaker == nil || tk.Group == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()
	h.deps.Breaker.Record(ctx, tk, o)
}

// breakerOutcome is what an upstream answer tells the breaker: a
// transient failure of the upstream (5xx, timeout, reset) is a Failure,
// a 2xx a Success; 4xx, auth refusals, throttling (the limiter's
// business) and attempts interrupted by asynq say nothing about it.
func breakerOutcome(class retry.Class, err error, cancelled bool) breaker.Outcome {
	switch {
	case class == retry.Success:
		return breaker.Success
	case cancelled || class != retry.Transient || retry.IsThrottle(err):
		return breaker.Other
	}
	var ae *apiclient.Error
	if errors.As(err, &ae) || retry.IsTimeout(err) || isNetwork(err) {
		return breaker.Failure
	}
	return breaker.Other // Redis trouble or a 2xx the client could not read: not the upstream's failure
}

// isNetwork reports whether err is a network error (a reset, a refused
// connection) on the way to the upstream.
func isNetwork(err error) bool {
	var ne net.Error
	var oe *net.OpError
	return errors.As(err, &ne) || errors.As(err, &oe) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.ErrUnexpectedEOF)
}

// settleTimeout bounds the Redis bookkeeping that ends an attempt.
const settleTimeout = 5 * time.Second

// begin takes the key's lease, waiting in place on the last attempt and
// deferring otherwise.
func (h *Handler) begin(ctx context.Context, a attempt) (ledger.Entry, *ledger.Lease, error) {
	for {
		prev, lease, err := h.deps.Ledger.Begin(ctx, a.key)
		if !errors.Is(err, ledger.ErrLeaseHeld) {
			return prev, lease, err
		}
		if !a.last {
			h.deps.Metrics.Task(a.task.Type(), "deferred")
			return ledger.Entry{}, nil, &retry.Deferral{After: h.deps.LeaseWait, Reason: "lease"}
		}
		if err := sleep(ctx, h.deps.LeaseWait); err != nil {
			return ledger.Entry{}, nil, err
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
