package tasks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"

	"github.com/meetops/meetops/internal/apiclient"
	"github.com/meetops/meetops/internal/deadletter"
	"github.com/meetops/meetops/internal/ledger"
	"github.com/meetops/meetops/internal/metrics"
	"github.com/meetops/meetops/internal/retry"
)

// Limiter paces upstream calls per rate-limit group, across workers.
type Limiter interface {
	// Allow takes one call from group's budget. It returns 0 when the call
	// may go now, or how long to wait before asking again.
	Allow(ctx context.Context, group string) (time.Duration, error)
	// Throttled tells the limiter that the upstream throttled a call of
	// group, so the whole group slows down for a while.
	Throttled(ctx context.Context, group string, retryAfter time.Duration)
}

// Deps are what the handlers need.
type Deps struct {
	// API is the upstream client.
	API API
	// Ledger is the execution ledger.
	Ledger *ledger.Ledger
	// DeadLetters is meetops' own dead-letter store.
	DeadLetters *deadletter.Store
	// Logger receives one line per finished attempt; zero value: none.
	Logger zerolog.Logger
	// Metrics, when not nil, counts outcomes and dead letters.
	Metrics *metrics.Metrics
	// Limiter, when not nil, paces upstream calls.
	Limiter Limiter
	// LeaseWait is how long a task waits when another worker holds its
	// key's lease; 0 means 2 s.
	LeaseWait time.Duration
}

// Register registers the handler for all five task types on mux.
func Register(mux *asynq.ServeMux, deps Deps) {
	h := NewHandler(deps)
	for _, typ := range []string{TypeDismiss, TypeDisable, TypeCancel, TypeHangUp, TypeReclaim} {
		mux.Handle(typ, h)
	}
}

// Handler executes tasks of all five types.
type Handler struct {
	deps Deps
}

// NewHandler returns a handler for all five task types.
func NewHandler(deps Deps) *Handler {
	if deps.LeaseWait <= 0 {
		deps.LeaseWait = 2 * time.Second
	}
	return &Handler{deps: deps}
}

// attempt describes the task being processed, from asynq's context.
type attempt struct {
	key, queue string
	retried    int
	last       bool // the retry budget is spent after this attempt
	task       *asynq.Task
	log        zerolog.Logger
}

// ProcessTask implements asynq.Handler. It returns nil when the task is
// done (succeeded, already done, or found succeeded in the ledger); a
// SkipRetry-wrapped error after dead-lettering it; a *retry.Deferral when
// it must wait without failing; any other error to be retried.
func (h *Handler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	a := attempt{task: t}
	a.key, _ = asynq.GetTaskID(ctx)
	a.queue, _ = asynq.GetQueueName(ctx)
	a.retried, _ = asynq.GetRetryCount(ctx)
	maxRetry, _ := asynq.GetMaxRetry(ctx)
	a.last = a.retried >= maxRetry
	a.log = h.deps.Logger.With().Str("task_id", a.key).Str("type", t.Type()).
		Int("attempt", a.retried+1).Str("key", a.key).Logger()

	op, err := Decode(t.Type(), t.Payload())
	if err != nil {
		return h.deadLetter(ctx, a, nil, Result{Reason: ReasonInvalidPayload, ErrorMsg: err.Error(), Attempts: a.retried + 1})
	}
	ex := op.(executor)

	if err := h.pace(ctx, a, ex.group()); err != nil {
		return err
	}
	prev, lease, err := h.begin(ctx, a)
	if err != nil {
		return err
	}
	if prev.State == ledger.Succeeded {
		// An earlier delivery took effect; complete without calling
		// upstream, leaving the result that delivery recorded.
		if err := h.deps.Ledger.Release(ctx, lease); err != nil {
			a.log.Warn().Err(err).Msg("release lease")
		}
		r, err := ParseCompact(prev.Result, prev.Attempts)
		if err != nil {
			a.log.Warn().Err(err).Msg("ledger result unreadable")
			r = Result{Outcome: OutcomeSucceeded, Attempts: prev.Attempts}
		}
		// The delivery that succeeded wrote the full result (with its
		// request ID) into this task already, unless this is another
		// task with the same key: keep the full one.
		if err := h.deps.Ledger.SetIfAbsent(ctx, ledger.HashField{Key: asynqTaskKey(a.queue, a.key), Field: "result", Value: r.JSON()}); err != nil {
			return fmt.Errorf("write result: %w", err)
		}
		h.deps.Metrics.Task(t.Type(), "ledger_hit")
		a.log.Info().Str("outcome", "ledger_hit").Msg("already succeeded; upstream not called")
		return nil
	}
	attempts := prev.Attempts + 1
	maybeReached := prev.State == ledger.Started
	// Hold the key for as long as the attempt runs, however long that is.
	stopKeepAlive := h.deps.Ledger.KeepAlive(ctx, lease)
	defer stopKeepAlive()

	ans, callErr := ex.execute(ctx, h.deps.API)
	class := retry.Classify(callErr)
	ae := asAPIError(callErr)

	// What follows records the outcome; it must happen even when asynq has
	// cancelled the attempt (shutdown), or the key stays leased for the
	// lease's whole lifetime.
	cancelled := ctx.Err() != nil
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()

	switch {
	case cancelled && class != retry.Success:
		// asynq stopped the attempt (shutdown or task timeout) and puts the
		// task back itself; it is not the task's failure and never a dead
		// letter, even on the last attempt. The upstream call may have
		// gone through: the entry stays "started".
		if err := h.deps.Ledger.Release(ctx, lease); err != nil {
			a.log.Warn().Err(err).Msg("release lease")
		}
		h.deps.Metrics.Task(t.Type(), "interrupted")
		a.log.Info().Err(callErr).Msg("attempt interrupted; asynq requeues the task")
		return callErr
	case class == retry.Success:
		return h.complete(ctx, a, lease, Result{Outcome: OutcomeSucceeded, Status: ans.resp.Status,
			RequestID: ans.resp.RequestID, Attempts: attempts, AppState: ans.appState})
	case ae != nil && ex.alreadyDone(ae) && maybeReached:
		return h.complete(ctx, a, lease, Result{Outcome: OutcomeAlreadyDone, Status: ae.Status,
			ErrorCode: ae.Code, RequestID: ae.RequestID, Attempts: attempts})
	case class == retry.Transient:
		if h.deps.Limiter != nil && retry.IsThrottle(callErr) {
			h.deps.Limiter.Throttled(ctx, ex.group(), retry.RetryAfter(callErr))
		}
		if a.last {
			return h.deadLetter(ctx, a, lease, failure(ReasonRetriesExhausted, callErr, attempts))
		}
		if err := h.deps.Ledger.Release(ctx, lease); err != nil {
			a.log.Warn().Err(err).Msg("release lease")
		}
		h.deps.Metrics.Task(t.Type(), "retry")
		a.log.Info().Err(callErr).Str("request_id", requestID(ae)).Msg("transient failure; will retry")
		return callErr
	case class == retry.Auth:
		return h.deadLetter(ctx, a, lease, failure(ReasonAuth, callErr, attempts))
	default:
		return h.deadLetter(ctx, a, lease, failure(ReasonHTTP4xx, callErr, attempts))
	}
}

// pace waits for the group's rate limit. A short wait happens in place; a
// long one becomes a Deferral, which asynq reschedules without spending a
// retry. On the last attempt asynq would archive a deferred task, so there
// it always waits in place.
func (h *Handler) pace(ctx context.Context, a attempt, group string) error {
	if h.deps.Limiter == nil {
		return nil
	}
	for {
		wait, err := h.deps.Limiter.Allow(ctx, group)
		if err != nil {
			return fmt.Errorf("rate limit %s: %w", group, err)
		}
		if wait <= 0 {
			return nil
		}
		if wait > maxInlineWait && !a.last {
			h.deps.Metrics.Task(a.task.Type(), "deferred")
			return &retry.Deferral{After: wait, Reason: "ratelimit"}
		}
		// Jitter, so the tasks waiting for the same slot do not all ask
		// again at the same instant.
		if err := sleep(ctx, wait+time.Duration(rand.Int64N(int64(wait)/5+1))); err != nil {
			return err
		}
	}
}

// settleTimeout bounds the Redis bookkeeping that ends an attempt.
const settleTimeout = 5 * time.Second

// maxInlineWait is the longest rate-limit wait spent holding a worker slot.
const maxInlineWait = time.Second

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

// complete records success in the ledger and the task result, in one
// round trip: the ledger writes the result into the asynq task's hash
// itself, where asynq's ResultWriter would have put it.
func (h *Handler) complete(ctx context.Context, a attempt, lease *ledger.Lease, r Result) error {
	res := r.JSON()
	if err := h.deps.Ledger.Succeed(ctx, lease, r.Compact(), ledger.HashField{Key: asynqTaskKey(a.queue, a.key), Field: "result", Value: res}); err != nil {
		// The operation took effect but the ledger did not hear it: the
		// retry will meet the "already done" answer and complete then.
		return fmt.Errorf("record success: %w", err)
	}
	h.deps.Metrics.Task(a.task.Type(), r.Outcome)
	a.log.Info().Str("outcome", r.Outcome).Int("status", r.Status).Str("request_id", r.RequestID).Msg("task done")
	return nil
}

// asynqTaskKey is the Redis hash asynq keeps a task in (asynq's
// base.TaskKey, stable since v0.18); its "result" field is what
// ResultWriter writes and TaskInfo.Result reads. The handler tests read
// results back through asynq's Inspector, so a change of this layout in an
// asynq upgrade fails them.
func asynqTaskKey(queue, id string) string { return "asynq:{" + queue + "}:t:" + id }

// failure builds a dead-letter result from an upstream error.
func failure(reason string, err error, attempts int) Result {
	r := Result{Reason: reason, Attempts: attempts, ErrorMsg: err.Error()}
	if ae := asAPIError(err); ae != nil {
		r.Status, r.ErrorCode, r.RequestID = ae.Status, ae.Code, ae.RequestID
		if ae.Message != "" {
			r.ErrorMsg = ae.Message
		}
	}
	return r
}

// deadLetter records a permanent failure everywhere a dead letter must be
// seen: the task result, meetops' dead-letter store, the ledger, a warn log
// line and the metric. It returns an error wrapping asynq.SkipRetry so asynq
// archives the task at once.
func (h *Handler) deadLetter(ctx context.Context, a attempt, lease *ledger.Lease, r Result) error {
	r.Outcome = OutcomeDeadLetter
	res := r.JSON()
	if _, err := a.task.ResultWriter().Write(res); err != nil {
		a.log.Warn().Err(err).Msg("write dead-letter result")
	}
	rec := deadletter.Record{Key: a.key, Type: a.task.Type(), Queue: a.queue, Reason: r.Reason,
		Payload: validJSON(a.task.Payload()), Result: res, DeadAt: time.Now()}
	if err := h.deps.DeadLetters.Add(ctx, rec); err != nil {
		// Without the durable record the dead letter could be lost to
		// asynq's archive cap: retry instead (the outcome is definitive and
		// will be met again), unless the budget is spent anyway.
		if lease != nil {
			_ = h.deps.Ledger.Release(ctx, lease)
		}
		return fmt.Errorf("store dead letter: %w", err)
	}
	if lease != nil {
		var err error
		if r.Reason == ReasonRetriesExhausted {
			err = h.deps.Ledger.Release(ctx, lease) // may have reached upstream: keep "started"
		} else {
			err = h.deps.Ledger.Fail(ctx, lease)
		}
		if err != nil {
			a.log.Warn().Err(err).Msg("record dead letter in ledger")
		}
	}
	h.deps.Metrics.Task(a.task.Type(), OutcomeDeadLetter)
	h.deps.Metrics.DeadLetter(a.task.Type(), r.Reason)
	a.log.Warn().Str("outcome", OutcomeDeadLetter).Str("reason", r.Reason).Int("status", r.Status).
		Str("error_code", r.ErrorCode).Str("error_msg", r.ErrorMsg).Str("request_id", r.RequestID).
		Msg("dead-lettered")
	return fmt.Errorf("dead letter (%s): %s: %w", r.Reason, r.ErrorMsg, asynq.SkipRetry)
}

// validJSON returns payload as a JSON value, or as a JSON string when it is
// not valid JSON (an invalid payload must still be stored and shown).
func validJSON(payload []byte) []byte {
	if len(payload) > 0 && json.Valid(payload) {
		return payload
	}
	b, _ := json.Marshal(string(payload))
	return b
}

func requestID(ae *apiclient.Error) string {
	if ae == nil {
		return ""
	}
	return ae.RequestID
}
