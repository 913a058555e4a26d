package bulk

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meetops/meetops"
)

// Enqueuer enqueues one operation; *meetops.Client is one.
type Enqueuer interface {
	Enqueue(ctx context.Context, op meetops.Op, opts ...meetops.Option) (meetops.Info, error)
}

// Outcome is what became of one line.
type Outcome string

// Outcomes, as the report spells them.
const (
	Enqueued  Outcome = "enqueued"
	Duplicate Outcome = "duplicate"
	Invalid   Outcome = "invalid"
	Failed    Outcome = "failed"
	KeyReused Outcome = "key_reused"
)

// Result is the fate of one line: a line of the --report file.
type Result struct {
	Line    int     `json:"line"`
	Key     string  `json:"key"`
	Outcome Outcome `json:"outcome"`
	Error   string  `json:"error,omitempty"`
}

// Summary counts lines by outcome.
type Summary struct {
	// Lines counts the lines handled (every outcome).
	Lines      int `json:"lines"`
	Enqueued   int `json:"enqueued"`
	Duplicates int `json:"duplicates"`
	Invalid    int `json:"invalid"`
	Failed     int `json:"failed"`
	KeyReused  int `json:"key_reused"`
	// Complete is true when every line of the input was handled; false
	// when the run was interrupted or stopped at a failure.
	Complete bool `json:"complete"`
	// FirstFailure is the error of the first failed line.
	FirstFailure string `json:"first_failure,omitempty"`
}

func (s *Summary) add(r Result) {
	s.Lines++
	switch r.Outcome {
	case Enqueued:
		s.Enqueued++
	case Duplicate:
		s.Duplicates++
	case Invalid:
		s.Invalid++
	case Failed:
		s.Failed++
		if s.FirstFailure == "" {
			s.FirstFailure = r.Error
		}
	case KeyReused:
		s.KeyReused++
	}
}

// Options tune Run.
type Options struct {
	// Concurrency is how many enqueues (batches, for a BatchEnqueuer) run
	// at once; below 1 means 1.
	Concurrency int
	// OnResult, when not nil, is told every line's result, from one
	// goroutine, in completion order.
	OnResult func(Result)
	// Batch is how many lines go to Redis together when the Enqueuer is a
	// BatchEnqueuer (at most; fewer when the lines are long): 0 means
	// DefaultBatch, 1 enqueues line by line with Enqueue.
	Batch int
	// RetryFor is how long failed enqueues (Redis unreachable, restarting,
	// failing over) are retried, with backoff, before the run stops at
	// them: 0 means DefaultRetryFor, a negative value not at all.
	RetryFor time.Duration
	// BatchID, when set, makes every valid line a member of that open
	// batch, at the line's Index and Line; it needs a BatchEnqueuer.
	BatchID string
	// RequireServedQueue enqueues every line with
	// meetops.RequireServedQueue: a line whose queue no running worker
	// serves fails (and is retried as any failure, for RetryFor, which
	// rides out a worker's restart).
	RequireServedQueue bool
}

// itemOptions returns the enqueue options of it's line, and the run's.
func (o Options) itemOptions(it Item) []meetops.Option {
	opts := it.Options()
	if o.RequireServedQueue {
		opts = append(opts, meetops.RequireServedQueue())
	}
	return opts
}

// DefaultRetryFor rides out a Redis restart or failover.
const DefaultRetryFor = 30 * time.Second

// retrying calls attempt for every index in todo, then again, with backoff,
// for the ones whose result is Failed, until none fails, o.RetryFor has
// passed, or ctx is cancelled. An enqueue that failed after Redis applied
// it comes back as a duplicate on the retry, which is what it is.
func retrying(ctx context.Context, o Options, res []Result, attempt func(todo []int)) {
	budget := o.RetryFor
	if budget == 0 {
		budget = DefaultRetryFor
	}
	deadline := time.Now().Add(budget)
	wait := 100 * time.Millisecond
	todo := make([]int, len(res))
	for i := range todo {
		todo[i] = i
	}
	for {
		attempt(todo)
		todo = todo[:0]
		for i, r := range res {
			if r.Outcome == Failed {
				todo = append(todo, i)
			}
		}
		if len(todo) == 0 || budget < 0 || time.Now().Add(wait).After(deadline) {
			return
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// Run enqueues every valid line of r with e, Concurrency at a time,
// streaming: only a bounded number of lines is in memory whatever the
// input size. Invalid lines are reported as Invalid and skipped. Lines are
// parsed ahead on every CPU. When e is a BatchEnqueuer, lines go to it in
// batches (see Options.Batch), else one by one to Enqueue.
//
// When ctx is cancelled, Run stops reading, lets the enqueues in flight
// finish (they are not cancelled: a half-sent enqueue would leave its
// outcome unknown) and returns what it did. It also stops at the first
// failed enqueue, whose cause (Redis down, out of memory, …) would fail
// the lines after it too. Either way Summary.Complete is false, and
// running the same input again finishes it: the lines already enqueued
// come back as duplicates. The error is a fatal input error.
func Run(ctx context.Context, r Reader, e Enqueuer, o Options) (Summary, error) {
	if be, ok := e.(BatchEnqueuer); ok && o.Batch != 1 {
		return runBatches(ctx, r, be, o)
	}
	n := max(o.Concurrency, 1)
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	callCtx := context.WithoutCancel(ctx)

	items := make(chan Item, n)
	results := make(chan Result, n)
	var readErr error
	readAll := false
	go func() {
		defer close(items)
		for c := range parseAhead(ctx, r, chunkLines, true) {
			<-c.parsed
			for _, it := range c.items {
				select {
				case items <- it:
				case <-ctx.Done():
					return
				}
			}
			switch {
			case errors.Is(c.err, io.EOF):
				readAll = true
			case c.err != nil:
				readErr = c.err
			}
			c.release()
		}
	}()

	var wg sync.WaitGroup
	var unhandled atomic.Bool // a line was read but not started
	for range n {
		wg.Go(func() {
			for it := range items {
				if ctx.Err() != nil {
					unhandled.Store(true)
					continue // drain
				}
				res := []Result{{}}
				retrying(ctx, o, res, func([]int) {
					if be, ok := e.(BatchEnqueuer); ok && o.BatchID != "" {
						res[0] = enqueueBatch(callCtx, be, []Item{it}, o)[0]
						return
					}
					res[0] = enqueue(callCtx, e, it, o)
				})
				if res[0].Outcome == Failed {
					stop()
				}
				results <- res[0]
			}
		})
	}
	go func() {
		wg.Wait()
		close(results)
	}()

	var s Summary
	for res := range results {
		s.add(res)
		if o.OnResult != nil {
			o.OnResult(res)
		}
	}
	// results is closed after every worker and the reader finished.
	s.Complete = readAll && !unhandled.Load() && readErr == nil
	return s, readErr
}

// enqueue handles one line.
func enqueue(ctx context.Context, e Enqueuer, it Item, o Options) Result {
	res := Result{Line: it.Line, Key: it.Key}
	if it.Err != nil {
		res.Outcome, res.Error = Invalid, it.Reason()
		return res
	}
	info, err := e.Enqueue(ctx, it.Op, o.itemOptions(it)...)
	res.outcome(info, err)
	return res
}

// outcome records what the enqueue of the line said.
func (res *Result) outcome(info meetops.Info, err error) {
	if res.Key == "" {
		res.Key = info.Key
	}
	switch {
	case err == nil && info.Duplicate:
		res.Outcome = Duplicate
	case err == nil:
		res.Outcome = Enqueued
	case errors.Is(err, meetops.ErrKeyReused):
		res.Outcome, res.Error = KeyReused, OneLine(err)
	case errors.Is(err, meetops.ErrInvalid):
		res.Outcome, res.Error = Invalid, OneLine(err)
	default:
		res.Outcome, res.Error = Failed, OneLine(err)
	}
}
