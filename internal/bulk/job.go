package bulk

import (
	"context"
	"errors"
	"fmt"
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
}

// Report is what a Job did.
type Report struct {
	// Checked counts the validation pass: every line, and the invalid ones.
	Checked Summary
	// Summary counts the enqueue pass (zero when nothing was enqueued).
	Summary
	// Enqueueing is true when the enqueue pass ran.
	Enqueueing bool
}

// Run validates the input, then enqueues it with the Enqueuer that connect
// returns (called only when there is something to enqueue, so a dry run or
// a refused input needs no Redis). The error is a *ValidationError, or
// ErrInvalidLines, or connect's, or a fatal input error of the enqueue
// pass; a failed or interrupted enqueue is not an error but a Report whose
// Summary is not Complete (see Run in this package).
func (j *Job) Run(ctx context.Context, connect func(context.Context) (Enqueuer, error)) (Report, error) {
	var rep Report
	r, closer, err := j.Input.Open()
	if err != nil {
		return rep, err
	}
	rep.Checked, err = Validate(ctx, r, j.OnInvalid)
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
	r, closer, err = j.Input.Open()
	if err != nil {
		return rep, err
	}
	defer closer.Close()
	rep.Enqueueing = true
	rep.Summary, err = Run(ctx, r, e, j.Options)
	return rep, err
}
