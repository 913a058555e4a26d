// Package fastenqueue writes asynq v0.26 tasks to Redis many per round
// trip.
//
// asynq's Client.Enqueue costs one round trip per task (an EVALSHA of its
// enqueue script) and has no batch API. A [Writer] sends the same scripts,
// with the same keys and arguments and the same encoded TaskMessage, for a
// whole batch of tasks in one Redis pipeline. Each script still runs
// atomically on its own, so a task ID already present is refused exactly
// as asynq refuses it ([ErrConflict]); callers resolve conflicts the way
// they resolve asynq.ErrTaskIDConflict.
//
// The package mirrors code of github.com/hibiken/asynq v0.26.0:
// internal/rdb/rdb.go (enqueueCmd, scheduleCmd, RDB.Enqueue,
// RDB.Schedule), internal/base/base.go (EncodeMessage, the key names) and
// internal/proto/asynq.proto (TaskMessage). Its tests check the result
// against asynq itself; re-run them when upgrading asynq.
package fastenqueue
