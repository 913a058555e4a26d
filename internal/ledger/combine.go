package ledger

import (
	"context"
	"sync"

	"github.com/redis/go-redis/v9"
)

// combiner sends the commands of concurrent callers in one pipeline (group
// commit). A round trip is most of what an attempt costs the worker and
// Redis alike — a write and a read system call on each side — and with
// many attempts running, several want one at the same moment.
//
// No goroutine of its own: the first caller finding no round trip in
// flight sends everything queued so far, its own commands included; the
// callers arriving meanwhile queue theirs and wait. When the round trip
// is back, the first of those waiting sends the next one. A caller alone
// pays one round trip, as without it; under load a caller waits at most
// for the round trip in flight and its own.
type combiner struct {
	rdb     redis.UniversalClient
	mu      sync.Mutex
	pending []*combined
	busy    bool // a round trip is in flight (or about to be)
}

// combined is one caller's share of a round trip.
type combined struct {
	queue func(redis.Pipeliner)
	// done receives false once queue's commands were sent and answered,
	// or true when the caller is to send the next round trip itself.
	done chan bool
}

// do queues commands on a pipeline shared with concurrent callers and
// returns once they were answered; the caller reads its own commands'
// results. The round trip does not end with ctx (a command sent is
// answered, or fails on the client's timeouts): so a caller's canceled
// context never fails the others' commands.
func (c *combiner) do(ctx context.Context, queue func(redis.Pipeliner)) {
	me := &combined{queue: queue, done: make(chan bool, 1)}
	c.mu.Lock()
	c.pending = append(c.pending, me)
	if c.busy {
		c.mu.Unlock()
		if !<-me.done {
			return
		}
		c.mu.Lock()
	}
	c.busy = true
	batch := c.pending
	c.pending = nil
	c.mu.Unlock()

	_, _ = c.rdb.Pipelined(context.WithoutCancel(ctx), func(p redis.Pipeliner) error {
		for _, b := range batch {
			b.queue(p)
		}
		return nil
	})
	for _, b := range batch {
		if b != me {
			b.done <- false
		}
	}

	c.mu.Lock()
	if len(c.pending) == 0 {
		c.busy = false
		c.mu.Unlock()
		return
	}
	next := c.pending[0]
	c.mu.Unlock()
	next.done <- true
}
