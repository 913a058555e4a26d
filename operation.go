package meetops

import (
	"errors"

	"github.com/meetops/meetops/internal/asynqdb"
	"github.com/meetops/meetops/internal/tasks"
)

// Op is one of the five operations: Dismiss, Disable, Cancel, HangUp or
// Reclaim. Its value is the task payload.
type Op = tasks.Op

// Dismiss dismisses an RTC room, removing all its users.
type Dismiss = tasks.Dismiss

// Disable disables an RTC application.
type Disable = tasks.Disable

// Cancel cancels a scheduled meeting; with EndOngoing it also ends a
// meeting in progress.
type Cancel = tasks.Cancel

// HangUp disconnects participants (1 to 500) from a meeting in progress.
type HangUp = tasks.HangUp

// Reclaim reclaims cloud meeting rooms (VMRs, 1 to 100) from a member
// account; AccountType 0 is a Huawei Cloud Meeting account, 1 a third-party
// user ID.
type Reclaim = tasks.Reclaim

// FieldError is a validation error naming the invalid field. Every
// validation error matches ErrInvalid.
type FieldError = tasks.FieldError

// OpNames lists the operation names (dismiss, disable, cancel, hangup,
// reclaim), as the CLI and dead-letter filters spell them.
var OpNames = tasks.Names

// Errors callers test for with errors.Is.
var (
	// ErrInvalid is matched by every validation error: an operation or an
	// option that would be rejected by the worker is never enqueued.
	ErrInvalid = tasks.ErrInvalid
	// ErrKeyReused means the idempotency key already names a different
	// operation (another payload) in that queue.
	ErrKeyReused = errors.New("idempotency key already used for a different operation")
	// ErrNotFound means no task or dead letter has that key.
	ErrNotFound = errors.New("not found")
	// ErrNotReplicated means the task was written to the Redis primary but
	// fewer replicas than RedisConfig.AckReplicas acknowledged it in time,
	// so a failover could still lose it. Enqueueing it again is safe: it
	// is reported enqueued (a duplicate) once the replicas have it.
	ErrNotReplicated = asynqdb.ErrNotReplicated
)
