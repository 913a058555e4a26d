package bulk

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"

	"github.com/meetops/meetops"
)

// DefaultBatch is how many lines go to a BatchEnqueuer at once by
// default: enough for a Redis pipeline to cost far less per line than a
// round trip, few enough to keep memory small and the work spread.
const DefaultBatch = 256

// BatchEnqueuer is an Enqueuer that also enqueues many operations with few
// round trips, answering for each what Enqueue would; *meetops.Client is
// one. Run gives it its lines in batches.
type BatchEnqueuer interface {
	Enqueuer
	EnqueueBatch(ctx context.Context, reqs []meetops.Request, opts ...meetops.BatchOption) []meetops.BatchResult
}

// runBatches is Run for a BatchEnqueuer: Concurrency goroutines each take
// the next chunk of parsed lines, up to o.Batch of them, and enqueue its
// valid lines with one EnqueueBatch call.
func runBatches(ctx context.Context, r Reader, e BatchEnqueuer, o Options) (Summary, error) {
	n := max(o.Concurrency, 1)
	size := o.Batch
	if size <= 0 {
		size = DefaultBatch
	}
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	callCtx := context.WithoutCancel(ctx)

	chunks := parseAhead(ctx, r, size, false)
	results := make(chan []Result, n)
	var (
		mu        sync.Mutex // guards readAll and readErr
		readAll   bool
		readErr   error
		unhandled atomic.Bool // a line was read but not started
		wg        sync.WaitGroup
	)
	for range n {
		wg.Go(func() {
			for c := range chunks {
				<-c.parsed
				handled := ctx.Err() == nil
				if handled {
					res := make([]Result, len(c.items))
					retrying(ctx, o, res, func(todo []int) {
						items := make([]Item, len(todo))
						for k, i := range todo {
							items[k] = c.items[i]
						}
						for k, r := range enqueueBatch(callCtx, e, items, o) {
							res[todo[k]] = r
						}
					})
					for _, r := range res {
						if r.Outcome == Failed {
							stop()
						}
					}
					results <- res
				} else if len(c.items) > 0 {
					unhandled.Store(true)
				}
				mu.Lock()
				switch {
				case errors.Is(c.err, io.EOF):
					readAll = handled
				case c.err != nil:
					readErr = c.err
				}
				mu.Unlock()
				c.release()
			}
		})
	}
	go func() {
		wg.Wait()
		close(results)
	}()

	var s Summary
	for res := range results {
		for _, r := range res {
			s.add(r)
			if o.OnResult != nil {
				o.OnResult(r)
			}
		}
	}
	// results is closed after every worker finished.
	s.Complete = readAll && !unhandled.Load() && readErr == nil
	return s, readErr
}

// enqueueBatch enqueues the valid items with one EnqueueBatch call (as
// members of o.BatchID, when set) and returns every item's result.
func enqueueBatch(ctx context.Context, e BatchEnqueuer, items []Item, o Options) []Result {
	res := make([]Result, len(items))
	reqs := make([]meetops.Request, 0, len(items))
	index := make([]int, 0, len(items)) // the item of each request
	for i, it := range items {
		res[i] = Result{Line: it.Line, Key: it.Key}
		if it.Err != nil {
			res[i].Outcome, res[i].Error = Invalid, it.Reason()
			continue
		}
		reqs = append(reqs, meetops.Request{Op: it.Op, Opts: o.itemOptions(it), Index: it.Index, Line: it.Line})
		index = append(index, i)
	}
	if len(reqs) == 0 {
		return res
	}
	var opts []meetops.BatchOption
	if o.BatchID != "" {
		opts = append(opts, meetops.InBatch(o.BatchID))
	}
	for j, r := range e.EnqueueBatch(ctx, reqs, opts...) {
		res[index[j]].outcome(r.Info, r.Err)
	}
	return res
}
