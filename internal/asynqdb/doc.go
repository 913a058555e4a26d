// Package asynqdb is the one place that knows asynq's private Redis layout
// (asynq v0.26): its key names, the task hash and the encoded TaskMessage,
// and the few operations meetops performs on that layout directly.
//
// meetops touches asynq's storage for these reasons, each kept here:
//
//   - Batch enqueue. asynq's Client.Enqueue costs one round trip per task
//     and has no batch API. A [Writer] sends asynq's own enqueue and
//     schedule scripts, byte for byte, with the same keys, arguments and
//     encoded TaskMessage, for a whole batch in one pipeline; each script
//     still runs atomically, so a task ID already present is refused as
//     asynq refuses it ([ErrConflict]).
//   - The task result in the same round trip as the ledger. The worker
//     writes a finished task's result into the task hash ([TaskKey],
//     field [ResultField]) where asynq's ResultWriter would, pipelined with
//     the execution ledger's update.
//   - Prompt orphan recovery. [RequeueOrphans] moves tasks whose asynq
//     lease expired back to pending without waiting for asynq's own
//     recoverer (up to two minutes).
//   - Recognising asynq's dequeue. The worker sends script calls in shared
//     round trips but asynq's dequeue ([IsDequeue]), which asynq sends one
//     at a time.
//
// The package mirrors code of github.com/hibiken/asynq v0.26.0:
// internal/base/base.go (key names, EncodeMessage), internal/rdb/rdb.go
// (enqueueCmd, scheduleCmd, the lease and active sets) and
// internal/proto/asynq.proto (TaskMessage). Its tests compare every one of
// these against asynq itself, so an asynq upgrade that changes the layout
// fails them here, and nowhere else needs re-checking.
package asynqdb
