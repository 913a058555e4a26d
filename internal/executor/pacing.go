package executor

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

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
