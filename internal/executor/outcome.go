package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/meetops/meetops/internal/apiclient"
	"github.com/meetops/meetops/internal/asynqdb"
	"github.com/meetops/meetops/internal/batch"
	"github.com/meetops/meetops/internal/deadletter"
	"github.com/meetops/meetops/internal/ledger"
	"github.com/meetops/meetops/internal/tasks"
)

// complete records success in the ledger and the task result, in one
// round trip: the ledger writes the result into the asynq task's hash
// itself, where asynq's ResultWriter would have put it.
func (h *Handler) complete(ctx context.Context, a attempt, lease *ledger.Lease, r tasks.Result) error {
	res := r.JSON()
	// The batches Begin saw are moved in the same round trip; one that
	// joined since (the finish script's answer says) is moved after.
	began := lease.BeganWith()
	var moved func() ([]batch.Completion, error)
	var more []func(redis.Pipeliner)
	if h.deps.Batches != nil && len(began) > 0 {
		more = append(more, func(p redis.Pipeliner) {
			moved = h.deps.Batches.TransitionIn(ctx, p, began, a.key, memberState(r))
		})
	}
	if err := h.deps.Ledger.Succeed(ctx, lease, r.Compact(), ledger.HashField{Key: asynqdb.TaskKey(a.queue, a.key), Field: asynqdb.ResultField, Value: res}, more...); err != nil {
		// The operation took effect but the ledger did not hear it: the
		// retry will meet the "already done" answer and complete then.
		return fmt.Errorf("record success: %w", err)
	}
	rest := lease.Subscribers()
	if moved != nil {
		done, err := moved()
		if err == nil {
			h.delivered(ctx, a, done)
			rest = slices.DeleteFunc(slices.Clone(rest), func(id string) bool { return slices.Contains(began, id) })
		}
	}
	// A failure here retries the task, which finds the ledger entry and
	// records the outcome in the batches then.
	if err := h.recordInBatches(ctx, a, rest, memberState(r)); err != nil {
		return err
	}
	h.deps.Metrics.Task(a.task.Type(), r.Outcome)
	a.log.Info().Str("outcome", r.Outcome).Int("status", r.Status).Str("request_id", r.RequestID).Msg("task done")
	return nil
}

// memberState is a completed task's state in its batches.
func memberState(r tasks.Result) batch.State {
	if r.Outcome == tasks.OutcomeAlreadyDone {
		return batch.AlreadyDone
	}
	return batch.Succeeded
}

// recordInBatches moves the task to state in the batches it belongs to
// and enqueues the callbacks of those it completes (a failed enqueue is
// left to the workers' sweep).
func (h *Handler) recordInBatches(ctx context.Context, a attempt, ids []string, state batch.State) error {
	if h.deps.Batches == nil || len(ids) == 0 {
		return nil
	}
	done, err := h.deps.Batches.Transition(ctx, ids, a.key, state)
	if err != nil {
		return fmt.Errorf("record the outcome in its batches: %w", err)
	}
	h.delivered(ctx, a, done)
	return nil
}

// delivered enqueues the callbacks of the batches a task completed (a
// failed enqueue is left to the workers' sweep).
func (h *Handler) delivered(ctx context.Context, a attempt, done []batch.Completion) {
	if h.deps.Deliveries != nil && len(done) > 0 {
		if err := h.deps.Deliveries.Completed(ctx, done); err != nil {
			a.log.Warn().Err(err).Msg("enqueue batch callback (the sweep will retry)")
		}
	}
}

// failure builds a dead-letter result from an upstream error.
func failure(reason string, err error, attempts int) tasks.Result {
	r := tasks.Result{Reason: reason, Attempts: attempts, ErrorMsg: err.Error()}
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
func (h *Handler) deadLetter(ctx context.Context, a attempt, lease *ledger.Lease, r tasks.Result) error {
	r.Outcome = tasks.OutcomeDeadLetter
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
	var batches []string
	known := false // whether batches is the ledger's word
	if lease != nil {
		var err error
		if r.Reason == tasks.ReasonRetriesExhausted {
			err = h.deps.Ledger.Release(ctx, lease) // may have reached upstream: keep "started"
		} else {
			err = h.deps.Ledger.Fail(ctx, lease)
		}
		if err != nil {
			a.log.Warn().Err(err).Msg("record dead letter in ledger")
		} else {
			batches, known = lease.Subscribers(), true
		}
	}
	if h.deps.Batches != nil && !known {
		var err error
		if batches, err = h.deps.Batches.BatchesOf(ctx, a.key); err != nil && !a.last {
			return fmt.Errorf("find the batches of a dead letter: %w", err)
		}
	}
	if err := h.recordInBatches(ctx, a, batches, batch.DeadWith(r.Reason)); err != nil && !a.last {
		// Retried: the outcome will be met again and recorded then. (On the
		// last attempt asynq archives the task whatever is returned.)
		return err
	}
	h.deps.Metrics.Task(a.task.Type(), tasks.OutcomeDeadLetter)
	h.deps.Metrics.DeadLetter(a.task.Type(), r.Reason)
	a.log.Warn().Str("outcome", tasks.OutcomeDeadLetter).Str("reason", r.Reason).Int("status", r.Status).
		Str("error_code", r.ErrorCode).Str("error_msg", r.ErrorMsg).Str("request_id", r.RequestID).
		Msg("dead-lettered")
	return fmt.Errorf("dead letter (%s): %s: %w", r.Reason, r.ErrorMsg, asynq.SkipRetry)
}

// storedPayloadMax is how much of an oversized payload a dead letter keeps.
const storedPayloadMax = 1 << 10

// validJSON returns payload as a JSON value, or as a JSON string when it is
// not valid JSON (an invalid payload must still be stored and shown). A
// payload over tasks.MaxPayloadBytes is stored as a JSON string of its first
// storedPayloadMax bytes and a note of its size, never whole.
func validJSON(payload []byte) []byte {
	if len(payload) > tasks.MaxPayloadBytes {
		b, _ := json.Marshal(fmt.Sprintf("%s… (%d bytes in all; truncated)", strings.ToValidUTF8(string(payload[:storedPayloadMax]), ""), len(payload)))
		return b
	}
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

// asAPIError returns err's *apiclient.Error, or nil.
func asAPIError(err error) *apiclient.Error {
	var ae *apiclient.Error
	if errors.As(err, &ae) {
		return ae
	}
	return nil
}
