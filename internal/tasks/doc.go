// Package tasks defines meetops' five task types: their payloads, the
// validation shared by producers and handlers, idempotency-key derivation,
// asynq task constructors, and the handlers that execute them against the
// upstream APIs with the execution ledger, error classification and
// dead-lettering.
package tasks
