// Package tasks is meetops' task model: the five operations (their names,
// asynq task types and rate-limit groups), their payloads, the validation
// shared by producers and the worker, canonical JSON and idempotency-key
// derivation, the asynq task a producer enqueues ([Prepare]) and the result
// a finished task leaves behind ([Result]).
//
// It knows nothing of how a task is executed (that is internal/executor)
// and links nothing of the upstream client, so a service that only enqueues
// pulls in this package, asynq and go-redis, and no more.
package tasks
