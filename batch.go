package meetops

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hibiken/asynq"
	"github.com/meetops/meetops/internal/asynqdb"
	"github.com/meetops/meetops/internal/tasks"
)

// Request is one operation for EnqueueBatch, with its Enqueue options.
type Request struct {
	Op   Op
	Opts []Option
	// Index and Line are the request's position when it is enqueued as a
	// batch member (InBatch): Index 0-based across the whole batch (a
	// batch filled by several calls numbers its requests across them),
	// Line its 1-based line in an input file (0: none). When every request
	// of a call has Index 0, their places in the call are used.
	Index, Line int
}

// BatchResult is what became of one Request: what Enqueue would have
// returned for it. Info.Key and Info.Queue are set whenever the request
// was valid, even when Err is not nil, so that a failure can be reported
// under its key.
type BatchResult struct {
	Info Info
	Err  error
}

// EnqueueBatch enqueues every request as Enqueue does — the same
// validation, key, task and duplicate or ErrKeyReused report — but writes
// the whole batch with one pipelined Redis round trip instead of one per
// operation; only a key already taken costs more (Enqueue's lookup of the
// task that holds it). The results are in request order.
//
// Each distinct queue of the batch is checked once against the queues
// running workers serve (on the view CheckQueues uses, so a batch costs at
// most one read of it): Info.Unserved is set as by Enqueue, and a request
// with RequireServedQueue whose queue is not served fails with
// ErrQueueUnserved, nothing written for it.
//
// The tasks are written in request order, each atomically, so requests
// sharing a key behave as Enqueue calls made one after the other: the
// later ones are duplicates, or fail with ErrKeyReused. A failure of Redis
// fails the requests it touched, and their tasks may or may not have been
// written (enqueueing them again reports those that were as duplicates).
//
// With InBatch(id) the valid requests become members of that open batch
// (before they are enqueued; a duplicate's member is the existing task, in
// its current state). When the batch cannot take them (unknown, expired,
// sealed) nothing is enqueued and every request fails with that error.
func (c *Client) EnqueueBatch(ctx context.Context, reqs []Request, opts ...BatchOption) []BatchResult {
	var bc batchConfig
	for _, o := range opts {
		o(&bc)
	}
	out := make([]BatchResult, len(reqs))
	prepared := make([]tasks.Prepared, 0, len(reqs))
	index := make([]int, 0, len(reqs)) // the request of each prepared task
	for i, r := range reqs {
		p, err := prepare(r.Op, c.window, r.Opts)
		if err != nil {
			out[i].Err = err
			continue
		}
		prepared = append(prepared, p)
		index = append(index, i)
	}
	// The queues are checked once each, before anything is written: a
	// refused request (RequireServedQueue) is neither a member nor
	// enqueued.
	unserved, refused := c.screen(ctx, prepared)
	if refused != nil {
		kept, keptIndex := prepared[:0:0], index[:0:0]
		for j, p := range prepared {
			if refused[j] != nil {
				out[index[j]] = BatchResult{Info: Info{Key: p.Key, Queue: p.Queue, Unserved: unserved[p.Queue]}, Err: refused[j]}
				continue
			}
			kept, keptIndex = append(kept, p), append(keptIndex, index[j])
		}
		prepared, index = kept, keptIndex
	}
	if bc.id != "" && len(prepared) > 0 {
		if err := c.addMembers(ctx, bc.id, reqs, prepared, index); err != nil {
			for j, p := range prepared {
				out[index[j]] = BatchResult{Info: Info{Key: p.Key, Queue: p.Queue}, Err: err}
			}
			return out
		}
	}
	results := c.enqueuePrepared(ctx, prepared)
	for j, r := range results {
		if r.Err == nil {
			r.Info.Unserved = unserved[r.Info.Queue]
		}
		out[index[j]] = r
	}
	if bc.id != "" {
		if err := c.reconcile(ctx, bc.id, results); err != nil {
			for j, r := range results {
				if r.Err == nil && r.Info.Duplicate {
					out[index[j]].Err = fmt.Errorf("enqueue %s: batch %s: record the existing task's outcome: %w", r.Info.Key, bc.id, err)
				}
			}
		}
	}
	return out
}

// enqueuePrepared writes ps with asynqdb's pipelined writer (one round
// trip, or one per queue with AckReplicas) and returns each one's result,
// Info.Key and Info.Queue always set; a key already taken is resolved by
// conflict.
func (c *Client) enqueuePrepared(ctx context.Context, ps []tasks.Prepared) []BatchResult {
	out := make([]BatchResult, len(ps))
	batch := make([]asynqdb.Task, 0, len(ps))
	index := make([]int, 0, len(ps)) // the task of each batch entry
	now := time.Now()
	for i, p := range ps {
		if !pipelinable(p) {
			out[i].Info, out[i].Err = c.enqueueUnpipelinable(ctx, p)
			out[i].Info.Key, out[i].Info.Queue = p.Key, p.Queue
			continue
		}
		batch = append(batch, taskOf(p, now))
		index = append(index, i)
	}
	if len(batch) == 0 {
		return out
	}
	for j, err := range c.batch.Write(ctx, batch) {
		res, p := &out[index[j]], ps[index[j]]
		switch {
		case err == nil && batch[j].ProcessAt.IsZero():
			res.Info.State = StatePending
		case err == nil:
			res.Info.State = StateScheduled
		case errors.Is(err, asynqdb.ErrConflict):
			res.Info, res.Err = c.conflict(ctx, p, true)
		default:
			res.Err = fmt.Errorf("enqueue %s: %w", p.Key, err)
		}
		res.Info.Key, res.Info.Queue = p.Key, p.Queue
	}
	return out
}

// enqueueUnpipelinable enqueues p through asynq's own client, for the task
// IDs and queues asynqdb does not check (see pipelinable), so that asynq
// reports its own error.
func (c *Client) enqueueUnpipelinable(ctx context.Context, p tasks.Prepared) (Info, error) {
	ti, err := c.queue.EnqueueContext(ctx, p.Task)
	if err == nil {
		return Info{Key: p.Key, Queue: p.Queue, State: ti.State.String()}, nil
	}
	if errors.Is(err, asynq.ErrTaskIDConflict) {
		return c.conflict(ctx, p, false)
	}
	return Info{}, fmt.Errorf("enqueue %s: %w", p.Key, err)
}

// stateOf is the state a task written now for p starts in.
func stateOf(p tasks.Prepared) string {
	if p.ProcessAt.After(time.Now()) {
		return StateScheduled
	}
	return StatePending
}

// taskOf returns the asynq task that Enqueue writes for p at now, as
// asynqdb writes it (the tests compare the bytes Enqueue and EnqueueBatch
// store).
func taskOf(p tasks.Prepared, now time.Time) asynqdb.Task {
	t := asynqdb.Task{
		ID:        p.Key,
		Type:      p.Task.Type(),
		Payload:   p.Payload,
		Queue:     p.Queue,
		Retry:     p.MaxRetry,
		Timeout:   p.Timeout,
		Retention: p.Retention,
		Origin:    p.Origin,
	}
	if p.ProcessAt.After(now) { // as asynq decides between schedule and enqueue
		t.ProcessAt = p.ProcessAt
	}
	return t
}

// pipelinable reports whether asynq would accept p's task ID and queue,
// which asynqdb does not check: a blank one, or invalid UTF-8 (which
// protobuf refuses to encode), takes Enqueue's path to get asynq's own
// error. tasks.Prepare rules both out today.
func pipelinable(p tasks.Prepared) bool {
	return strings.TrimSpace(p.Key) != "" && strings.TrimSpace(p.Queue) != "" &&
		utf8.ValidString(p.Key) && utf8.ValidString(p.Queue)
}
