package meetops

import (
	"context"
	"errors"
	"fmt"

	"github.com/meetops/meetops/internal/batch"
	"github.com/meetops/meetops/internal/deadletter"
	"github.com/meetops/meetops/internal/ledger"
	"github.com/meetops/meetops/internal/tasks"
)

// BatchSpec describes a batch to create with CreateBatch.
type BatchSpec struct {
	// Label names the batch for people ("" for none).
	Label string
	// Origin says who made it: a service's name, an API token's NAME,
	// user@host for the CLI.
	Origin string
	// CallbackURL, when set, gets one signed POST of the batch's progress
	// each time it becomes complete. Its host must be allowed (see
	// WithCallbackHosts).
	CallbackURL string
}

// BatchProgress is a batch and its exact progress: its members by state
// (the four counts always sum to Total), whether it is complete, and when
// it last became so. A requeued dead letter makes a complete batch
// incomplete again.
type BatchProgress = batch.Progress

// BatchMember is one member of a batch: its task's key, its position
// (Index, and Line for a batch from a file) and its state.
type BatchMember = batch.Member

// Batch member states (BatchMember.State's kind).
const (
	MemberPending     = batch.Pending
	MemberSucceeded   = batch.Succeeded
	MemberAlreadyDone = batch.AlreadyDone
	MemberDead        = batch.Dead
)

// ErrBatchSealed means the batch takes no more members.
var ErrBatchSealed = batch.ErrSealed

// BatchOption makes an EnqueueBatch call part of a batch.
type BatchOption func(*batchConfig)

type batchConfig struct{ id string }

// InBatch makes the requests of an EnqueueBatch call members of the open
// batch id (from CreateBatch), at their Index and Line. A batch can be
// filled by several calls; SealBatch closes it.
func InBatch(id string) BatchOption {
	return func(c *batchConfig) { c.id = id }
}

// CreateBatch records a new, open batch and returns its ID. Its members
// are the operations enqueued with InBatch(id); SealBatch says there are
// no more, after which it completes when none is pending. A callback URL
// the policy refuses is an error matching ErrInvalid, naming
// callback_url.
//
// A batch is enqueued in three steps, so that a batch of any size can be
// filled in chunks and never completes before its last member is in:
//
//	id, err := client.CreateBatch(ctx, meetops.BatchSpec{Label: "offboarding"})
//	results := client.EnqueueBatch(ctx, reqs, meetops.InBatch(id))
//	progress, err := client.SealBatch(ctx, id)
func (c *Client) CreateBatch(ctx context.Context, spec BatchSpec) (string, error) {
	if spec.CallbackURL != "" {
		if err := c.callbacks.Check(ctx, spec.CallbackURL); err != nil {
			return "", &FieldError{Field: "callback_url", Msg: err.Error()}
		}
	}
	return c.batches.Create(ctx, batch.Spec(spec))
}

// SealBatch closes batch id to new members and returns its progress; a
// batch with nothing pending is complete at once (a rerun whose members
// had all finished), and its callback, if any, is delivered.
func (c *Client) SealBatch(ctx context.Context, id string) (BatchProgress, error) {
	done, err := c.batches.Seal(ctx, id)
	if err != nil {
		return BatchProgress{}, batchError(id, err)
	}
	if done.N > 0 {
		if err := c.deliveries.Completed(ctx, []batch.Completion{done}); err != nil {
			return BatchProgress{}, err
		}
	}
	return c.Batch(ctx, id)
}

// Batch returns the progress of batch id; an unknown or expired batch (its
// records expire with the dedup window) matches ErrNotFound. It reads one
// Redis hash whatever the batch's size.
func (c *Client) Batch(ctx context.Context, id string) (BatchProgress, error) {
	if !batch.ValidID(id) {
		return BatchProgress{}, fmt.Errorf("no batch %q: %w", id, ErrNotFound)
	}
	p, err := c.batches.Get(ctx, id)
	if err != nil {
		return BatchProgress{}, batchError(id, err)
	}
	return p, nil
}

// Batches returns up to limit batches (limit ≤ 0: 100), newest first.
func (c *Client) Batches(ctx context.Context, limit int) ([]BatchProgress, error) {
	return c.batches.List(ctx, limit)
}

// BatchMembers calls fn for every member of batch id, in index order, with
// its current state; it stops at fn's first error.
func (c *Client) BatchMembers(ctx context.Context, id string, fn func(BatchMember) error) error {
	if !batch.ValidID(id) {
		return fmt.Errorf("no batch %q (not a batch ID): %w", id, ErrNotFound)
	}
	return batchError(id, c.batches.Members(ctx, id, fn))
}

func batchError(id string, err error) error {
	if errors.Is(err, batch.ErrNotFound) {
		return fmt.Errorf("no batch %q (unknown, or expired with the dedup window): %w", id, ErrNotFound)
	}
	return err
}

// addMembers makes the valid requests members of batch id (at their Index
// and Line) before they are enqueued, so that a worker finishing one finds
// it in the batch. Requests without a position are numbered by their
// place in reqs.
func (c *Client) addMembers(ctx context.Context, id string, reqs []Request, prepared []tasks.Prepared, index []int) error {
	numbered := false
	for _, i := range index {
		numbered = numbered || reqs[i].Index != 0
	}
	ms := make([]batch.Member, len(prepared))
	for j, p := range prepared {
		r := reqs[index[j]]
		ms[j] = batch.Member{Key: p.Key, Index: r.Index, Line: r.Line, State: batch.Pending}
		if !numbered {
			ms[j].Index = index[j]
		}
	}
	if _, err := c.batches.Add(ctx, id, ms); err != nil {
		return batchError(id, err)
	}
	return nil
}

// reconcile moves the members whose enqueue found an existing task that
// has already finished (a rerun: the member is that task) to its outcome,
// read from the ledger, else the dead-letter store. It runs after the
// members were indexed, so an outcome recorded before is seen here and one
// recorded after is the worker's to report.
func (c *Client) reconcile(ctx context.Context, id string, out []BatchResult) error {
	var errs []error
	var done []batch.Completion
	for _, r := range out {
		if r.Err != nil || !r.Info.Duplicate || (r.Info.State != StateCompleted && r.Info.State != StateArchived) {
			continue
		}
		st, err := c.outcomeOf(ctx, r.Info.Key)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if st == "" {
			continue
		}
		cs, err := c.batches.Transition(ctx, []string{id}, r.Info.Key, st)
		errs = append(errs, err)
		done = append(done, cs...)
	}
	errs = append(errs, c.deliveries.Completed(ctx, done))
	return errors.Join(errs...)
}

// outcomeOf is the batch state of a finished task: succeeded or already
// done from its ledger entry, dead from the dead-letter store; "" when
// neither says it finished.
func (c *Client) outcomeOf(ctx context.Context, key string) (batch.State, error) {
	e, err := c.ledger.Get(ctx, key)
	if err != nil {
		return "", err
	}
	if e.State == ledger.Succeeded {
		if r, err := tasks.ParseCompact(e.Result, e.Attempts); err == nil && r.Outcome == tasks.OutcomeAlreadyDone {
			return batch.AlreadyDone, nil
		}
		return batch.Succeeded, nil
	}
	rec, err := c.dead.Get(ctx, key)
	switch {
	case err == nil:
		return batch.DeadWith(rec.Reason), nil
	case errors.Is(err, deadletter.ErrNotFound):
		return "", nil
	}
	return "", err
}

// requeueMembers moves key back to pending in every batch it belongs to,
// before its dead letter is enqueued again (so the worker's outcome comes
// after); undo moves it back when the requeue fails.
func (c *Client) requeueMembers(ctx context.Context, key string) (undo func(batch.State), err error) {
	ids, err := c.batches.BatchesOf(ctx, key)
	if err != nil || len(ids) == 0 {
		return func(batch.State) {}, err
	}
	if _, err := c.batches.Transition(ctx, ids, key, batch.Pending); err != nil {
		return nil, err
	}
	return func(st batch.State) {
		if cs, err := c.batches.Transition(ctx, ids, key, st); err == nil {
			_ = c.deliveries.Completed(ctx, cs)
		}
	}, nil
}
