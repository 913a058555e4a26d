// Package groupcommit sends the Redis commands of concurrent callers in
// one pipeline (group commit). A round trip costs the client and Redis
// alike a write and a read system call and a wake-up on each side, more
// than a small command itself, and with many tasks running several
// callers want one at the same moment.
//
// A [Group] serves callers that queue commands on a pipeline themselves
// (the execution ledger does), and [Group.Hook] sends the script calls
// made on a client the same way: asynq's completion script, the rate
// limiter's and the ledger's own scripts, so that all of them share round
// trips.
package groupcommit

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// Group sends the commands of concurrent callers in one pipeline on its
// client.
//
// It has no goroutine of its own: the first caller finding no round trip
// in flight sends everything queued so far, its own commands included; the
// callers arriving meanwhile queue theirs and wait. When the round trip is
// back, the first of those waiting sends the next one. A caller alone
// pays one round trip, as without a group; under load a caller waits at
// most for the round trip in flight and its own.
type Group struct {
	rdb     redis.UniversalClient
	mu      sync.Mutex
	pending []*share
	busy    bool // a round trip is in flight (or about to be)
}

// New returns a group that sends its pipelines on rdb.
func New(rdb redis.UniversalClient) *Group { return &Group{rdb: rdb} }

// share is one caller's share of a round trip.
type share struct {
	ctx   context.Context
	queue func(redis.Pipeliner)
	// done receives false once queue's commands were sent and answered,
	// or true when the caller is to send the next round trip itself.
	done chan bool
}

// Do queues commands on a pipeline shared with concurrent callers and
// returns once they were answered; the caller reads its own commands'
// results (a round trip that fails fails each of its commands, and a
// command's error is its own). A round trip ends early (its commands fail
// with the context's error, as go-redis fails one command) only once the
// contexts of all its callers have ended: a caller's canceled context
// never fails the others' commands, and when every caller has given up
// (a shutdown) nobody waits for go-redis's retries against a Redis that
// is gone.
func (g *Group) Do(ctx context.Context, queue func(redis.Pipeliner)) {
	me := &share{ctx: ctx, queue: queue, done: make(chan bool, 1)}
	g.mu.Lock()
	g.pending = append(g.pending, me)
	if g.busy {
		g.mu.Unlock()
		if !<-me.done {
			return
		}
		g.mu.Lock()
	}
	g.busy = true
	batch := g.pending
	g.pending = nil
	g.mu.Unlock()

	rt, end := roundTripContext(ctx, batch)
	_, _ = g.rdb.Pipelined(rt, func(p redis.Pipeliner) error {
		for _, b := range batch {
			b.queue(p)
		}
		return nil
	})
	end()
	for _, b := range batch {
		if b != me {
			b.done <- false
		}
	}

	g.mu.Lock()
	if len(g.pending) == 0 {
		g.busy = false
		g.mu.Unlock()
		return
	}
	next := g.pending[0]
	g.mu.Unlock()
	next.done <- true
}

// roundTripContext returns the context of batch's round trip, sent by the
// caller with ctx (whose values it keeps): it is canceled once every
// caller's context has ended, and never when one of them cannot end. end
// releases it.
func roundTripContext(ctx context.Context, batch []*share) (rt context.Context, end func()) {
	for _, b := range batch {
		if b.ctx.Done() == nil {
			return context.WithoutCancel(ctx), func() {}
		}
	}
	rt, cancel := context.WithCancel(context.WithoutCancel(ctx))
	live := int32(len(batch))
	stops := make([]func() bool, len(batch))
	for i, b := range batch {
		stops[i] = context.AfterFunc(b.ctx, func() {
			if atomic.AddInt32(&live, -1) == 0 {
				cancel()
			}
		})
	}
	return rt, func() {
		for _, stop := range stops {
			stop()
		}
		cancel()
	}
}

// Hook returns a hook to add to g's client (AddHook) that sends the
// script calls made on that client (EVAL, EVALSHA and their read-only
// forms) through g, except those alone reports true for (nil: none) and
// those whose context cannot end (context.Background: background work,
// which would keep a round trip and its other callers going when Redis is
// gone, see Do); other commands go as they came. A script call never
// blocks its connection, so it can wait in a pipeline behind others.
//
// alone is for a caller on a serial path, for whom waiting for the round
// trip in flight costs more than the round trip it saves: asynq fetches
// tasks one at a time, so the worker sends asynq's dequeue script alone
// (asynqdb.IsDequeue).
//
// A WATCH transaction (Client.Watch) on a client with the hook must not
// call scripts: the hook would send them outside the transaction's
// connection. Pipelines and MULTI/EXEC (TxPipelined) are not affected.
func (g *Group) Hook(alone func(redis.Cmder) bool) redis.Hook { return hook{g: g, alone: alone} }

type hook struct {
	g     *Group
	alone func(redis.Cmder) bool
}

// DialHook returns next unchanged.
func (hook) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook sends script calls through the group.
func (h hook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !isScript(cmd.Name()) || ctx.Done() == nil || (h.alone != nil && h.alone(cmd)) {
			return next(ctx, cmd)
		}
		h.g.Do(ctx, func(p redis.Pipeliner) { _ = p.Process(ctx, cmd) })
		return cmd.Err()
	}
}

// ProcessPipelineHook returns next unchanged: a pipeline is one round
// trip already.
func (hook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// isScript reports whether name (lower case, as Cmder.Name returns it) is
// a script call.
func isScript(name string) bool {
	switch name {
	case "eval", "evalsha", "eval_ro", "evalsha_ro":
		return true
	}
	return false
}
