package meetops

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"github.com/meetops/meetops/internal/batch"
	"github.com/meetops/meetops/internal/deadletter"
	"github.com/meetops/meetops/internal/tasks"
)

// DeadLetter is an operation that failed permanently: the upstream refused
// it (4xx), its payload was invalid, authentication failed, or its retries
// ran out. meetops keeps every dead letter, including those asynq trimmed
// from its archive.
type DeadLetter struct {
	// Key is the idempotency key (the asynq task ID).
	Key string `json:"key"`
	// Op is the operation name.
	Op string `json:"op"`
	// Queue is the queue the task ran in.
	Queue string `json:"queue"`
	// Reason is why it died: http_4xx, invalid_payload, retries_exhausted
	// or auth.
	Reason string `json:"reason"`
	// Status is the upstream's HTTP status (0 without an answer).
	Status int `json:"status,omitempty"`
	// ErrorCode and ErrorMsg are the upstream's error code and message.
	ErrorCode string `json:"error_code,omitempty"`
	ErrorMsg  string `json:"error_msg,omitempty"`
	// RequestID identifies the last upstream request.
	RequestID string `json:"request_id,omitempty"`
	// Attempts counts the attempts made.
	Attempts int `json:"attempts"`
	// DeadAt is when it was dead-lettered.
	DeadAt time.Time `json:"dead_at"`
	// Payload is the operation's payload.
	Payload json.RawMessage `json:"payload"`
	// Result is the dead-letter result the worker recorded.
	Result json.RawMessage `json:"result"`
}

// Dead-letter reasons.
const (
	ReasonHTTP4xx          = tasks.ReasonHTTP4xx
	ReasonInvalidPayload   = tasks.ReasonInvalidPayload
	ReasonRetriesExhausted = tasks.ReasonRetriesExhausted
	ReasonAuth             = tasks.ReasonAuth
)

// Reasons lists the dead-letter reasons.
var Reasons = []string{ReasonHTTP4xx, ReasonInvalidPayload, ReasonRetriesExhausted, ReasonAuth}

// DeadLetterFilter selects dead letters; zero fields match all.
type DeadLetterFilter struct {
	// Op keeps dead letters of this operation (dismiss, disable, …).
	Op string
	// Reason keeps dead letters that died for this reason.
	Reason string
}

func (f DeadLetterFilter) store() (deadletter.Filter, error) {
	var sf deadletter.Filter
	var errs []error
	if f.Op != "" {
		typ, ok := tasks.TypeOf(f.Op)
		if !ok {
			errs = append(errs, &FieldError{Field: "op", Msg: fmt.Sprintf("unknown operation %q (want one of %s)", f.Op, strings.Join(OpNames, ", "))})
		}
		sf.Type = typ
	}
	if f.Reason != "" && !slices.Contains(Reasons, f.Reason) {
		errs = append(errs, &FieldError{Field: "reason", Msg: fmt.Sprintf("unknown reason %q (want one of %s)", f.Reason, strings.Join(Reasons, ", "))})
	}
	sf.Reason = f.Reason
	return sf, errors.Join(errs...)
}

// KeyResult is what became of one key in a call that handles several
// (Requeue, Purge), in the order the keys were given.
type KeyResult struct {
	// Key is the dead letter's key.
	Key string
	// Info is the task as requeued (Requeue only), with Duplicate set when
	// it was already back in a queue and only the dead letter was removed.
	Info Info
	// Err says why the key was not handled (it matches ErrNotFound,
	// ErrInvalid…); nil when it was.
	Err error
}

// DeadLetters calls fn for every dead letter f selects, oldest first,
// reading in pages; it stops at fn's first error and returns it.
func (c *Client) DeadLetters(ctx context.Context, f DeadLetterFilter, fn func(DeadLetter) error) error {
	sf, err := f.store()
	if err != nil {
		return err
	}
	return c.dead.Each(ctx, sf, func(r deadletter.Record) error { return fn(deadLetterOf(r)) })
}

// DeadLetterPage is one page of dead letters (see Client.DeadLetterPage).
type DeadLetterPage struct {
	// Items are the page's dead letters, oldest first.
	Items []DeadLetter
	// Next is the cursor of the following page; "" on the last one.
	Next string
}

// MaxDeadLetterPage is the largest page DeadLetterPage returns.
const MaxDeadLetterPage = 1000

// DeadLetterPage returns up to limit dead letters f selects (limit < 1:
// 100; at most MaxDeadLetterPage), oldest first, starting after cursor ("":
// the first page). A cursor is opaque; pass the Next of the page before.
// Pages neither repeat nor skip a dead letter while others are requeued or
// purged, and one dead-lettered later shows on a later page. A cursor
// that is not one is an error matching ErrInvalid, naming "cursor".
func (c *Client) DeadLetterPage(ctx context.Context, f DeadLetterFilter, cursor string, limit int) (DeadLetterPage, error) {
	sf, err := f.store()
	var pos deadletter.Position
	if cursor != "" {
		var perr error
		if pos, perr = parseCursor(cursor); perr != nil {
			err = errors.Join(err, perr)
		}
	}
	if err != nil {
		return DeadLetterPage{}, err
	}
	if limit < 1 {
		limit = 100
	}
	recs, more, err := c.dead.Page(ctx, sf, pos, min(limit, MaxDeadLetterPage))
	if err != nil {
		return DeadLetterPage{}, err
	}
	page := DeadLetterPage{Items: make([]DeadLetter, len(recs))}
	for i, r := range recs {
		page.Items[i] = deadLetterOf(r)
	}
	if more {
		page.Next = cursorOf(deadletter.PositionOf(recs[len(recs)-1]))
	}
	return page, nil
}

// cursorOf encodes a page position as an opaque, URL-safe cursor.
func cursorOf(p deadletter.Position) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(p.DeadAtMilli, 10) + ":" + p.Key))
}

func parseCursor(s string) (deadletter.Position, error) {
	bad := &FieldError{Field: "cursor", Msg: "not a cursor this server returned"}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return deadletter.Position{}, bad
	}
	ms, key, ok := strings.Cut(string(b), ":")
	n, err := strconv.ParseInt(ms, 10, 64)
	if !ok || err != nil || key == "" {
		return deadletter.Position{}, bad
	}
	return deadletter.Position{DeadAtMilli: n, Key: key}, nil
}

// CountDeadLetters counts the dead letters f selects.
func (c *Client) CountDeadLetters(ctx context.Context, f DeadLetterFilter) (int64, error) {
	if f == (DeadLetterFilter{}) {
		return c.dead.Count(ctx)
	}
	var n int64
	err := c.DeadLetters(ctx, f, func(DeadLetter) error { n++; return nil })
	return n, err
}

// DeadLetter returns the dead letter with key, or an error matching
// ErrNotFound.
func (c *Client) DeadLetter(ctx context.Context, key string) (DeadLetter, error) {
	r, err := c.dead.Get(ctx, key)
	if errors.Is(err, deadletter.ErrNotFound) {
		return DeadLetter{}, fmt.Errorf("no dead letter with key %q: %w", key, ErrNotFound)
	}
	if err != nil {
		return DeadLetter{}, err
	}
	return deadLetterOf(r), nil
}

func deadLetterOf(r deadletter.Record) DeadLetter {
	d := DeadLetter{Key: r.Key, Op: tasks.NameOf(r.Type), Queue: r.Queue, Reason: r.Reason,
		DeadAt: r.DeadAt, Payload: r.Payload, Result: r.Result}
	var res tasks.Result
	if json.Unmarshal(r.Result, &res) == nil {
		d.Status, d.ErrorCode, d.ErrorMsg, d.RequestID, d.Attempts = res.Status, res.ErrorCode, res.ErrorMsg, res.RequestID, res.Attempts
	}
	if d.Op == "" {
		d.Op = r.Type
	}
	return d
}

// Requeue puts the dead letters with the given keys back to pending with a
// fresh retry budget, and returns one result per key, in order.
//
// Each is enqueued again from the stored payload under the same key and
// queue (asynq's own "run archived task" would keep the spent retry count):
// asynq's archived copy is deleted if it still has one, the execution
// ledger is reset (an operation that may have reached upstream keeps
// counting its "already done" answer as success), and the dead letter is
// removed from the store. A dead letter whose task is already back in a
// queue (requeued from the dashboard) is only removed, and reported with
// Info.Duplicate set. A key that could not be requeued has Err set and its
// dead letter stays.
func (c *Client) Requeue(ctx context.Context, keys ...string) []KeyResult {
	out := make([]KeyResult, len(keys))
	for i, key := range keys {
		out[i].Key = key
		out[i].Info, out[i].Err = c.requeue(ctx, key)
	}
	return out
}

// RequeueAll requeues every dead letter f selects, as Requeue does. The
// error is a failure to list them (then nothing was requeued).
func (c *Client) RequeueAll(ctx context.Context, f DeadLetterFilter) ([]KeyResult, error) {
	keys, err := c.deadKeys(ctx, f)
	if err != nil {
		return nil, err
	}
	return c.Requeue(ctx, keys...), nil
}

func (c *Client) requeue(ctx context.Context, key string) (Info, error) {
	rec, err := c.dead.Get(ctx, key)
	if errors.Is(err, deadletter.ErrNotFound) {
		return Info{}, fmt.Errorf("no dead letter with this key: %w", ErrNotFound)
	}
	if err != nil {
		return Info{}, err
	}
	op, err := tasks.Decode(rec.Type, rec.Payload)
	if err != nil {
		return Info{}, fmt.Errorf("the stored payload is invalid and would die again (purge it instead): %w", err)
	}
	to := tasks.TaskOptions{Key: key, Queue: rec.Queue, DedupWindow: c.window}
	ti, err := c.inspect.GetTaskInfo(rec.Queue, key)
	switch {
	case errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound):
		// asynq trimmed its archive copy: the store's record is all there is.
	case err != nil:
		return Info{}, fmt.Errorf("look up the archived task: %w", err)
	case ti.State == asynq.TaskStateArchived:
		to.MaxRetry = ti.MaxRetry
		if to.MaxRetry == 0 {
			to.MaxRetry = tasks.NoRetry
		}
		if err := c.inspect.DeleteTask(rec.Queue, key); err != nil && !errors.Is(err, asynq.ErrTaskNotFound) {
			return Info{}, fmt.Errorf("delete the archived task: %w", err)
		}
	case ti.State == asynq.TaskStateActive:
		return Info{}, errors.New("the task is running right now; try again when it has finished")
	default:
		// Already back in a queue, or done since: the dead letter is stale.
		// Its batches count it pending until the worker says otherwise.
		if ti.State != asynq.TaskStateCompleted {
			if _, err := c.requeueMembers(ctx, key); err != nil {
				return Info{}, err
			}
		}
		if _, err := c.dead.Delete(ctx, key); err != nil {
			return Info{}, err
		}
		return Info{Key: key, Queue: rec.Queue, State: ti.State.String(), Duplicate: true}, nil
	}
	if err := c.ledger.Reset(ctx, key); err != nil {
		return Info{}, err
	}
	p, err := tasks.Prepare(op, to)
	if err != nil {
		return Info{}, err
	}
	// Its batches count it pending again before it can finish again.
	undo, err := c.requeueMembers(ctx, key)
	if err != nil {
		return Info{}, err
	}
	info, err := c.enqueue(ctx, p)
	if err != nil {
		undo(batch.DeadWith(rec.Reason))
		return Info{}, err
	}
	if _, err := c.dead.Delete(ctx, key); err != nil {
		return Info{}, fmt.Errorf("requeued, but the dead letter is still listed: %w", err)
	}
	return info, nil
}

// Purge deletes the dead letters with the given keys, from meetops' store
// and from asynq's archive, and returns one result per key, in order; an
// unknown key has an Err matching ErrNotFound. Live tasks are never
// touched.
func (c *Client) Purge(ctx context.Context, keys ...string) []KeyResult {
	out := make([]KeyResult, len(keys))
	for i, key := range keys {
		out[i] = KeyResult{Key: key, Err: c.purge(ctx, key)}
	}
	return out
}

// PurgeAll deletes every dead letter f selects, as Purge does. The error
// is a failure to list them (then nothing was purged).
func (c *Client) PurgeAll(ctx context.Context, f DeadLetterFilter) ([]KeyResult, error) {
	keys, err := c.deadKeys(ctx, f)
	if err != nil {
		return nil, err
	}
	return c.Purge(ctx, keys...), nil
}

func (c *Client) purge(ctx context.Context, key string) error {
	queue := tasks.DefaultQueue
	rec, err := c.dead.Get(ctx, key)
	switch {
	case err == nil:
		queue = rec.Queue
	case !errors.Is(err, deadletter.ErrNotFound):
		return err
	}
	inArchive := false
	ti, lerr := c.inspect.GetTaskInfo(queue, key)
	if lerr == nil && ti.State == asynq.TaskStateArchived {
		inArchive = true
		if err := c.inspect.DeleteTask(queue, key); err != nil && !errors.Is(err, asynq.ErrTaskNotFound) {
			return fmt.Errorf("delete the archived task: %w", err)
		}
	}
	if errors.Is(err, deadletter.ErrNotFound) {
		if inArchive {
			return nil
		}
		return fmt.Errorf("no dead letter with this key: %w", ErrNotFound)
	}
	_, err = c.dead.Delete(ctx, key)
	return err
}

// deadKeys collects the keys f selects first, so that changing the store
// does not disturb the paging of Each.
func (c *Client) deadKeys(ctx context.Context, f DeadLetterFilter) ([]string, error) {
	var keys []string
	err := c.DeadLetters(ctx, f, func(d DeadLetter) error {
		keys = append(keys, d.Key)
		return nil
	})
	return keys, err
}
