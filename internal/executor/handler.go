package executor

import (
	"context"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"

	"github.com/meetops/meetops/internal/asynqdb"
	"github.com/meetops/meetops/internal/batch"
	"github.com/meetops/meetops/internal/breaker"
	"github.com/meetops/meetops/internal/callback"
	"github.com/meetops/meetops/internal/deadletter"
	"github.com/meetops/meetops/internal/ledger"
	"github.com/meetops/meetops/internal/metrics"
	"github.com/meetops/meetops/internal/retry"
	"github.com/meetops/meetops/internal/tasks"
)

// Limiter paces upstream calls per rate-limit group, across workers.
type Limiter interface {
	// Allow takes one call from group's budget for the task with key,
	// whose queue has priority (a higher one goes first). It returns 0
	// when the call may go now, or how long to wait before asking again.
	Allow(ctx context.Context, group, key string, priority int) (time.Duration, error)
	// Throttled tells the limiter that the upstream throttled a call of
	// group, so the whole group slows down for a while.
	Throttled(ctx context.Context, group string, retryAfter time.Duration)
}

// Breaker stops calls of a rate-limit group whose upstream is failing,
// across workers (internal/breaker).
type Breaker interface {
	// Allow asks whether a call of group may go: wait 0 when it may, else
	// how long until the group's next probe is due. The ticket goes back
	// to Record.
	Allow(ctx context.Context, group string) (tk breaker.Ticket, wait time.Duration, err error)
	// Record reports the outcome of a call Allow let through (Other when
	// the call was not made). It returns 0 when the group is closed, else
	// how long until its next probe is due.
	Record(ctx context.Context, tk breaker.Ticket, o breaker.Outcome) time.Duration
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
	// Breaker, when not nil, is asked before Limiter and told every
	// call's outcome.
	Breaker Breaker
	// Priorities are the queues' priorities for the limiter (their weights
	// in WORKER_QUEUES); a queue missing from it has priority 0.
	Priorities map[string]int
	// ComeBackEarly is how long before its turn for a rate-limit slot a
	// deferred task is rescheduled, so that asynq's forwarding and idle
	// polling (DelayedTaskCheckInterval + TaskCheckInterval) do not make it
	// miss the turn; it waits the rest in place. Waits up to ComeBackEarly
	// are always spent in place. 0 means 2 s.
	ComeBackEarly time.Duration
	// LeaseWait is how long a task waits when another worker holds its
	// key's lease; 0 means 2 s.
	LeaseWait time.Duration
	// Batches, when not nil, records every terminal outcome in the batches
	// the task belongs to (which the ledger reports, see
	// ledger.Options.Subscribers), and Deliveries enqueues the callbacks of
	// the batches that completes.
	Batches    *batch.Store
	Deliveries *callback.Enqueuer
}

// Register registers one handler for every task type on mux.
func Register(mux *asynq.ServeMux, deps Deps) {
	h := NewHandler(deps)
	for _, typ := range tasks.Types {
		mux.Handle(typ, h)
	}
}

// Handler executes tasks of all five types.
type Handler struct {
	deps   Deps
	stacks stacks
}

// NewHandler returns a handler for all five task types.
func NewHandler(deps Deps) *Handler {
	if deps.ComeBackEarly <= 0 {
		deps.ComeBackEarly = 2 * time.Second
	}
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
	log        attemptLog
}

// attemptLog writes an attempt's log lines, each with the task's ID, type,
// attempt number and key. It adds them to each line as it is written
// rather than to a child logger (zerolog's With copies them into a buffer
// of the child's own, per attempt), since most attempts write one line.
// The lines are the same.
type attemptLog struct {
	l        *zerolog.Logger
	key, typ string
	attempt  int
}

// Info starts an info line.
func (al attemptLog) Info() *zerolog.Event { return al.with(al.l.Info()) }

// Warn starts a warn line.
func (al attemptLog) Warn() *zerolog.Event { return al.with(al.l.Warn()) }

// with adds the attempt's fields (to nil, a disabled level's event, it
// does nothing).
func (al attemptLog) with(e *zerolog.Event) *zerolog.Event {
	return e.Str("task_id", al.key).Str("type", al.typ).Int("attempt", al.attempt).Str("key", al.key)
}

// ProcessTask implements asynq.Handler. It returns nil when the task is
// done (succeeded, already done, or found succeeded in the ledger); a
// SkipRetry-wrapped error after dead-lettering it; a *retry.Deferral when
// it must wait without failing (rate limit, another worker's lease, a login
// that failed but is not rejected); any other error to be retried.
func (h *Handler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	return h.stacks.run(func() error { return h.process(ctx, t) })
}

func (h *Handler) process(ctx context.Context, t *asynq.Task) error {
	a := attempt{task: t}
	a.key, _ = asynq.GetTaskID(ctx)
	a.queue, _ = asynq.GetQueueName(ctx)
	a.retried, _ = asynq.GetRetryCount(ctx)
	maxRetry, _ := asynq.GetMaxRetry(ctx)
	a.last = a.retried >= maxRetry
	a.log = attemptLog{l: &h.deps.Logger, key: a.key, typ: t.Type(), attempt: a.retried + 1}

	op, err := tasks.Decode(t.Type(), t.Payload()) // refuses an oversized payload before decoding it
	if err != nil {
		return h.deadLetter(ctx, a, nil, tasks.Result{Reason: tasks.ReasonInvalidPayload, ErrorMsg: err.Error(), Attempts: a.retried + 1})
	}
	o := operations[t.Type()] // Decode knows only the task types operations has
	group := tasks.GroupOf(t.Type())

	tk, err := h.guard(ctx, a, group)
	if err != nil {
		return err
	}
	// Until the call's outcome is known, the ticket's outcome is "no call"
	// (a probe ticket must be handed back, or the group waits a whole
	// probe interval for its next probe).
	outcome := breaker.Other
	defer func() { h.recordOutcome(ctx, tk, outcome) }()
	if err := h.pace(ctx, a, group); err != nil {
		return err
	}
	if tk.Group != "" && tk.Probe == 0 {
		// The rate limit may have kept the task waiting in place (up to
		// ComeBackEarly) while the breaker opened: ask again, from this
		// worker's copy of its state, before calling.
		if tk, err = h.guard(ctx, a, group); err != nil {
			return err
		}
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
		r, err := tasks.ParseCompact(prev.Result, prev.Attempts)
		if err != nil {
			a.log.Warn().Err(err).Msg("ledger result unreadable")
			r = tasks.Result{Outcome: tasks.OutcomeSucceeded, Attempts: prev.Attempts}
		}
		// The delivery that succeeded wrote the full result (with its
		// request ID) into this task already, unless this is another
		// task with the same key: keep the full one.
		if err := h.deps.Ledger.SetIfAbsent(ctx, ledger.HashField{Key: asynqdb.TaskKey(a.queue, a.key), Field: asynqdb.ResultField, Value: r.JSON()}); err != nil {
			return fmt.Errorf("write result: %w", err)
		}
		// Its batches may not have heard (its worker died in between).
		if err := h.recordInBatches(ctx, a, lease.Subscribers(), memberState(r)); err != nil {
			return err
		}
		h.deps.Metrics.Task(t.Type(), "ledger_hit")
		a.log.Info().Str("outcome", "ledger_hit").Msg("already succeeded; upstream not called")
		return nil
	}
	attempts := prev.Attempts + 1
	maybeReached := mayHaveReached(prev.State, a.retried)
	// Hold the key for as long as the attempt runs, however long that is.
	stopKeepAlive := h.deps.Ledger.KeepAlive(ctx, lease)
	defer stopKeepAlive()

	ans, callErr := o.call(ctx, h.deps.API, op)
	// A login that failed without rejecting its credentials is waited
	// for: deferred below, or here on the last attempt, where asynq would
	// archive a deferred task.
	for a.last {
		wait, ok := retry.LoginWait(callErr)
		if !ok || sleep(ctx, wait) != nil {
			break
		}
		ans, callErr = o.call(ctx, h.deps.API, op)
	}
	loginWait, loginFailed := retry.LoginWait(callErr)
	class := retry.Classify(callErr)
	ae := asAPIError(callErr)

	// What follows records the outcome; it must happen even when asynq has
	// cancelled the attempt (shutdown), or the key stays leased for the
	// lease's whole lifetime.
	cancelled := ctx.Err() != nil
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()
	outcome = breakerOutcome(class, callErr, cancelled)
	var openFor time.Duration // the breaker's wait when this failure found it open
	if outcome == breaker.Failure && h.deps.Breaker != nil {
		openFor = h.deps.Breaker.Record(ctx, tk, outcome)
		tk = breaker.Ticket{} // recorded
	}

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
		return h.complete(ctx, a, lease, tasks.Result{Outcome: tasks.OutcomeSucceeded, Status: ans.resp.Status,
			RequestID: ans.resp.RequestID, Attempts: attempts, AppState: ans.appState})
	case loginFailed:
		// The operation did not take effect: its login failed (and will be
		// tried again after a backoff), which is not this task's failure
		// nor an attempt that may have reached upstream.
		if err := h.deps.Ledger.Unbegin(ctx, lease); err != nil {
			a.log.Warn().Err(err).Msg("undo the attempt in the ledger")
		}
		h.deps.Metrics.Task(t.Type(), "deferred")
		a.log.Info().Err(callErr).Dur("retry_in", loginWait).Msg("login failed; deferred until the next login")
		return &retry.Deferral{After: loginWait, Reason: "login"}
	case ae != nil && o.alreadyDone(ae) && maybeReached:
		return h.complete(ctx, a, lease, tasks.Result{Outcome: tasks.OutcomeAlreadyDone, Status: ae.Status,
			ErrorCode: ae.Code, RequestID: ae.RequestID, Attempts: attempts})
	case class == retry.Transient:
		if h.deps.Limiter != nil && retry.IsThrottle(callErr) {
			h.deps.Limiter.Throttled(ctx, group, retry.RetryAfter(callErr))
		}
		if a.last {
			return h.deadLetter(ctx, a, lease, failure(tasks.ReasonRetriesExhausted, callErr, attempts))
		}
		if err := h.deps.Ledger.Release(ctx, lease); err != nil {
			a.log.Warn().Err(err).Msg("release lease")
		}
		if openFor > 0 {
			// The group's breaker is open: the failure is the outage's,
			// which the breaker now handles, not this task's. Wait for the
			// group to recover without spending a retry.
			h.deps.Metrics.Task(t.Type(), "deferred")
			a.log.Info().Err(callErr).Str("request_id", requestID(ae)).Msg("transient failure with the breaker open; deferred")
			return &retry.Deferral{After: openFor, Reason: "breaker"}
		}
		h.deps.Metrics.Task(t.Type(), "retry")
		a.log.Info().Err(callErr).Str("request_id", requestID(ae)).Msg("transient failure; will retry")
		return callErr
	case class == retry.Auth:
		return h.deadLetter(ctx, a, lease, failure(tasks.ReasonAuth, callErr, attempts))
	default:
		return h.deadLetter(ctx, a, lease, failure(tasks.ReasonHTTP4xx, callErr, attempts))
	}
}

// mayHaveReached reports whether an earlier attempt of a task may have
// reached upstream, so that an "already done" answer is that attempt's
// success. It may when the ledger says an attempt started, or when asynq
// says this is a retry and the ledger has no entry: every attempt records
// "started" before its call, so a retry without any record lost it (a
// Redis failover drops the last writes a primary had not passed on to its
// replica). A Failed entry is a definitive answer that did not take
// effect: an attempt rerun after it (its worker died before asynq archived
// the dead letter) did not reach upstream before.
func mayHaveReached(prev ledger.State, retried int) bool {
	return prev == ledger.Started || (retried > 0 && prev == ledger.None)
}
