package meetops

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"

	"github.com/meetops/meetops/internal/asynqdb"
	"github.com/meetops/meetops/internal/tasks"
)

// Enqueue validates op and enqueues it for the workers, under the key given
// with WithKey or, by default, one derived from the operation
// ("<op>:<32 hex digits>", equal for equal operations).
//
// When the key is already taken in the queue by the same operation, nothing
// changes and Info reports the existing task with Duplicate set. When it is
// taken by a different operation the error matches ErrKeyReused. Invalid
// operations and options return errors matching ErrInvalid (each a
// *FieldError naming the field, joined when several are wrong).
//
// When no running worker serves the task's queue, the task is enqueued all
// the same (it waits for one) and Info.Unserved says so; with
// RequireServedQueue the enqueue fails instead, with an error matching
// ErrQueueUnserved. The check reads Redis at most once per
// DefaultServedQueuesTTL.
func (c *Client) Enqueue(ctx context.Context, op Op, opts ...Option) (Info, error) {
	p, err := prepare(op, c.window, opts)
	if err != nil {
		return Info{}, err
	}
	return c.enqueue(ctx, p)
}

// Validate checks op and opts as Enqueue does, without Redis: nil means
// Enqueue will accept them.
func Validate(op Op, opts ...Option) error {
	_, err := prepare(op, 0, opts)
	return err
}

// prepare validates op and opts and builds the task.
func prepare(op Op, window time.Duration, opts []Option) (tasks.Prepared, error) {
	if op == nil {
		return tasks.Prepared{}, &FieldError{Field: "op", Msg: "no operation given"}
	}
	to := tasks.TaskOptions{DedupWindow: window}
	var errs []error
	for _, o := range opts {
		if err := o(&to); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return tasks.Prepared{}, err
	}
	return tasks.Prepare(op, to)
}

// enqueue puts p into its queue under its key, or reports the task that
// already holds the key; see screen for the check of its queue.
func (c *Client) enqueue(ctx context.Context, p tasks.Prepared) (Info, error) {
	ps := []tasks.Prepared{p}
	unserved, refused := c.screen(ctx, ps)
	if refused != nil {
		return Info{}, refused[0]
	}
	r := c.enqueuePrepared(ctx, ps)[0]
	if r.Err != nil {
		return Info{}, r.Err
	}
	r.Info.Unserved = unserved[p.Queue]
	return r.Info, nil
}

// conflict reports the task that holds p's key, which refused p: a
// duplicate when it is the same operation, ErrKeyReused when not. When
// that task is gone by now (its retention ran out) and retry is set, p is
// enqueued again, once. With AckReplicas a duplicate is reported only once
// the replicas hold every write made so far to its queue (the task may
// have been written by a call that was not acknowledged).
func (c *Client) conflict(ctx context.Context, p tasks.Prepared, retry bool) (Info, error) {
	existing, err := c.inspect.GetTaskInfo(p.Queue, p.Key)
	if errors.Is(err, asynq.ErrTaskNotFound) && retry {
		err := c.batch.Write(ctx, []asynqdb.Task{taskOf(p, time.Now())})[0]
		switch {
		case err == nil:
			return Info{Key: p.Key, Queue: p.Queue, State: stateOf(p)}, nil
		case errors.Is(err, asynqdb.ErrConflict):
			return c.conflict(ctx, p, false)
		}
		return Info{}, fmt.Errorf("enqueue %s: %w", p.Key, err)
	}
	if err != nil {
		return Info{}, fmt.Errorf("enqueue %s: look up the existing task: %w", p.Key, err)
	}
	if existing.Type != p.Task.Type() || !bytes.Equal(existing.Payload, p.Payload) {
		return Info{}, fmt.Errorf("key %q in queue %q holds %s %s, not %s %s: %w",
			p.Key, p.Queue, tasks.NameOf(existing.Type), existing.Payload, p.Op.Name(), p.Payload, ErrKeyReused)
	}
	if err := c.batch.AckProbe(ctx, p.Queue); err != nil {
		return Info{}, fmt.Errorf("enqueue %s: the existing task: %w", p.Key, err)
	}
	return Info{Key: p.Key, Queue: p.Queue, State: existing.State.String(), Duplicate: true}, nil
}
