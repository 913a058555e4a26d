package bulk

import (
	"context"
	"errors"
	"fmt"

	"github.com/meetops/meetops"
	"github.com/meetops/meetops/internal/tasks"
)

// ErrInvalidLines is returned by Job.Run when the input has invalid lines
// and SkipInvalid is not set: nothing was enqueued.
var ErrInvalidLines = errors.New("invalid lines; nothing enqueued")

// ValidationError is Job.Run's error when the validation pass could not
// finish (an I/O error, a bad CSV header, ctx cancelled): nothing was
// enqueued. Line is the last line read.
type ValidationError struct {
	Line int
	Err  error
}

// Error implements error.
func (e *ValidationError) Error() string {
	return fmt.Sprintf("validating line %d: %v; nothing enqueued", e.Line+1, e.Err)
}

// Unwrap returns the cause (a *HeaderError, context.Canceled, …).
func (e *ValidationError) Unwrap() error { return e.Err }

// Job is one bulk run: the whole input is validated first and every bad
// line reported; then, unless it is a dry run or some line is invalid
// without SkipInvalid, every valid line is enqueued (see Run).
type Job struct {
	// Input is what to enqueue.
	Input *Input
	// DryRun validates and counts only.
	DryRun bool
	// SkipInvalid enqueues the valid lines even when some are invalid.
	SkipInvalid bool
	// OnInvalid, when not nil, is told every invalid line of the
	// validation pass, in input order.
	OnInvalid func(Item)
	// OnValidated, when not nil, is told the validation pass's counts
	// before anything is enqueued (for a progress bar's total).
	OnValidated func(Summary)
	// Options tune the enqueue pass (concurrency, batch size, OnResult).
	Options Options
	// CheckQueues, when not nil, is given the distinct queues of the valid
	// lines once they are validated and connect returned, before a batch
	// is made or anything enqueued; an error ends the run there, nothing
	// enqueued. (The CLI warns about, or refuses, the queues no running
	// worker serves.)
	CheckQueues func(ctx context.Context, e Enqueuer, queues QueueSet) error
	// Batch, when not nil, makes the run a batch record: created before
	// the enqueue pass (the Enqueuer must be a Batcher), every valid line
	// a member at its position, sealed after the pass — also when it was
	// interrupted or stopped at a failure: the batch is then what the run
	// enqueued, and running the file again makes a new batch of all of it.
	Batch *meetops.BatchSpec
}

// MaxCheckedQueues bounds the distinct queues a Job collects for
// CheckQueues, so that memory stays bounded whatever the input.
const MaxCheckedQueues = 1000

// QueueSet is the distinct queues of an input's valid lines, "default"
// for a line without one, in the order they first appear.
type QueueSet struct {
	Names []string
	// More is true when the input names more than MaxCheckedQueues
	// queues: Names holds the first MaxCheckedQueues.
	More bool
}

// add records queue.
func (q *QueueSet) add(seen map[string]bool, queue string) {
	if queue == "" {
		queue = tasks.DefaultQueue
	}
	switch {
	case seen[queue]:
	case len(q.Names) == MaxCheckedQueues:
		q.More = true
	default:
		seen[queue] = true
		q.Names = append(q.Names, queue)
	}
}

// Batcher creates and seals batch records; *meetops.Client is one.
type Batcher interface {
	CreateBatch(ctx context.Context, spec meetops.BatchSpec) (string, error)
	SealBatch(ctx context.Context, id string) (meetops.BatchProgress, error)
}

// Report is what a Job did.
type Report struct {
	// Checked counts the validation pass: every line, and the invalid ones.
	Checked Summary
	// Summary counts the enqueue pass (zero when nothing was enqueued).
	Summary
	// Enqueueing is true when the enqueue pass ran.
	Enqueueing bool
	// Batch is the batch the run made (Job.Batch), as sealed; its BatchID
	// is "" without one.
	Batch meetops.BatchProgress
}

// Run validates the input, then enqueues it with the Enqueuer that connect
// returns (called only when there is something to enqueue, so a dry run or
// a refused input needs no Redis). The error is a *ValidationError, or
// ErrInvalidLines, or connect's, or CheckQueues', or a fatal input error
// of the enqueue pass; a failed or interrupted enqueue is not an error but a Report whose
// Summary is not Complete (see Run in this package).
func (j *Job) Run(ctx context.Context, connect func(context.Context) (Enqueuer, error)) (Report, error) {
	var rep Report
	r, closer, err := j.Input.Open()
	if err != nil {
		return rep, err
	}
	var queues QueueSet
	var onValid func(Item)
	if j.CheckQueues != nil {
		seen := map[string]bool{}
		onValid = func(it Item) { queues.add(seen, it.Queue) }
	}
	rep.Checked, err = validate(ctx, r, j.OnInvalid, onValid)
	closer.Close()
	if err != nil {
		return rep, &ValidationError{Line: rep.Checked.Lines, Err: err}
	}
	if j.DryRun {
		return rep, nil
	}
	if rep.Checked.Invalid > 0 && !j.SkipInvalid {
		return rep, ErrInvalidLines
	}
	if j.OnValidated != nil {
		j.OnValidated(rep.Checked)
	}
	e, err := connect(ctx)
	if err != nil {
		return rep, err
	}
	if j.CheckQueues != nil && len(queues.Names) > 0 {
		if err := j.CheckQueues(ctx, e, queues); err != nil {
			return rep, err
		}
	}
	r, closer, err = j.Input.Open()
	if err != nil {
		return rep, err
	}
	defer closer.Close()
	rep.Enqueueing = true
	opts := j.Options
	var b Batcher
	if j.Batch != nil {
		var ok bool
		if b, ok = e.(Batcher); !ok {
			return rep, fmt.Errorf("bulk: %T cannot make batches", e)
		}
		if opts.BatchID, err = b.CreateBatch(ctx, *j.Batch); err != nil {
			return rep, err
		}
		rep.Batch.BatchID = opts.BatchID
	}
	rep.Summary, err = Run(ctx, r, e, opts)
	if b != nil {
		// Sealed even when the run was cut short (hence not with ctx).
		p, serr := b.SealBatch(context.WithoutCancel(ctx), opts.BatchID)
		if serr == nil {
			rep.Batch = p
		}
		err = errors.Join(err, serr)
	}
	return rep, err
}
