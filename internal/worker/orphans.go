package worker

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/meetops/meetops/internal/asynqdb"
)

// Orphan recovery. asynq gives a running task a 30 s lease that its worker
// extends while alive; when a worker dies, asynq's recoverer requeues its
// tasks only once the lease expired at least 30 s ago (clock-skew margin),
// checking every minute — up to about two minutes, measured at ~140 s.
//
// meetops can recover sooner because the execution ledger, not the lease,
// is what keeps an operation from taking effect twice: a task requeued
// while its old worker is in fact still alive cannot run concurrently (the
// ledger lease, renewed while the attempt runs, defers it) and cannot take
// effect twice (the ledger entry says started or succeeded). So every
// worker checks every RecoverInterval for tasks whose asynq lease expired
// more than RecoverGrace ago and puts them back to pending at once.
//
// A task recovered this way does not spend a retry (its worker died; it
// did not fail). So that a task that kills every worker which runs it
// cannot loop forever, one is recovered promptly at most maxPromptRecoveries
// times; after that asynq's own recoverer, which counts a retry each time,
// deals with it.
//
// The move itself works on asynq's private Redis layout, so it lives in
// internal/asynqdb (RequeueOrphans) with the tests that fail when an asynq
// upgrade changes that layout; the reliability suite's worker-killed
// scenario measures the recovery time end to end.

// Defaults for orphan recovery.
const (
	DefaultRecoverInterval = 5 * time.Second
	DefaultRecoverGrace    = 5 * time.Second
	maxPromptRecoveries    = 3
)

// recoverOrphans requeues, in every queue, the tasks whose asynq lease
// expired before now-grace. It returns how many it requeued.
func recoverOrphans(ctx context.Context, rdb redis.UniversalClient, queues []string, grace time.Duration) (int, error) {
	cutoff := time.Now().Add(-grace)
	total := 0
	for _, q := range queues {
		n, err := asynqdb.RequeueOrphans(ctx, rdb, q, cutoff, maxPromptRecoveries)
		if err != nil {
			return total, err
		}
		total += n
	}
	return total, nil
}

// recoverLoop runs recoverOrphans, and the sweep that enqueues batch
// callbacks a dead worker left owed, every interval until ctx is done.
func recoverLoop(ctx context.Context, rdb redis.UniversalClient, queues []string, interval, grace time.Duration, log zerolog.Logger,
	sweep func(context.Context) error) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		n, err := recoverOrphans(ctx, rdb, queues, grace)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn().Err(err).Msg("orphan recovery")
		case n > 0:
			log.Warn().Int("tasks", n).Msg("requeued tasks of a worker that stopped (asynq lease expired)")
		}
		if err := sweep(ctx); err != nil && ctx.Err() == nil {
			log.Warn().Err(err).Msg("batch callback sweep")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
