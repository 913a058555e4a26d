package api

import (
	"context"
	"sync"
	"time"

	"github.com/meetops/meetops"
)

// coalescer enqueues the single operations of concurrent requests
// together: each of its workers takes the operations waiting when it is
// free (up to coalesceMax) and sends them with one EnqueueBatch call, one
// Redis round trip, instead of one Enqueue each; one operation alone goes
// through Enqueue. Nothing waits for company: at low load every operation
// is sent at once, under load they queue for a round trip anyway, and
// gather while they do. EnqueueBatch answers each operation exactly as
// Enqueue would (the same validation, key, duplicate and key-reused
// rules; operations sharing a key behave as calls made one after the
// other), so a client cannot tell, but by the throughput.
type coalescer struct {
	producer Producer
	timeout  time.Duration
	queue    chan *waiting
	stop     chan struct{}
	wg       sync.WaitGroup
}

// Coalescing: workers enqueue at once, each up to coalesceMax operations
// a round trip.
const (
	coalesceWorkers = 4
	coalesceMax     = 128
)

// waiting is one operation and where its result goes.
type waiting struct {
	req  meetops.Request
	done chan meetops.BatchResult
}

func newCoalescer(p Producer, timeout time.Duration) *coalescer {
	c := &coalescer{producer: p, timeout: timeout, queue: make(chan *waiting, coalesceMax), stop: make(chan struct{})}
	for range coalesceWorkers {
		c.wg.Go(c.work)
	}
	return c
}

// enqueue enqueues op with opts, alone or with others, and returns what
// Enqueue would. When ctx ends first the outcome is unknown and the error
// is ctx's (a retry is safe: a duplicate is reported as such). An
// operation whose ctx has already ended is not sent at all.
func (c *coalescer) enqueue(ctx context.Context, op meetops.Op, opts []meetops.Option) (meetops.Info, error) {
	if err := ctx.Err(); err != nil {
		return meetops.Info{}, err
	}
	w := &waiting{req: meetops.Request{Op: op, Opts: opts}, done: make(chan meetops.BatchResult, 1)}
	select {
	case c.queue <- w:
	case <-ctx.Done():
		return meetops.Info{}, ctx.Err()
	}
	select {
	case r := <-w.done:
		return r.Info, r.Err
	case <-ctx.Done():
		return meetops.Info{}, ctx.Err()
	}
}

func (c *coalescer) work() {
	batch := make([]*waiting, 0, coalesceMax)
	reqs := make([]meetops.Request, 0, coalesceMax)
	for {
		select {
		case w := <-c.queue:
			batch = append(batch[:0], w)
		case <-c.stop:
			return
		}
	gather:
		for len(batch) < coalesceMax {
			select {
			case w := <-c.queue:
				batch = append(batch, w)
			default:
				break gather
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
		if len(batch) == 1 {
			info, err := c.producer.Enqueue(ctx, batch[0].req.Op, batch[0].req.Opts...)
			batch[0].done <- meetops.BatchResult{Info: info, Err: err}
		} else {
			reqs = reqs[:0]
			for _, w := range batch {
				reqs = append(reqs, w.req)
			}
			for i, r := range c.producer.EnqueueBatch(ctx, reqs) {
				batch[i].done <- r
			}
		}
		cancel()
		clear(batch)
		clear(reqs)
	}
}

// close stops the workers once the operations they hold are answered.
func (c *coalescer) close() {
	close(c.stop)
	c.wg.Wait()
}
