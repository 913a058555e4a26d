// Package executor runs meetops tasks: the asynq handler for the five
// operations, with the shared circuit breakers, pacing by the shared rate
// limits, the execution ledger that makes a task take effect once, the
// upstream call, the operations' "already done" rules, error
// classification, and dead-lettering.
//
// The task model (payloads, validation, keys, results) is internal/tasks;
// this package is what the worker adds to it. The life of one attempt:
//
//  1. decode and validate the payload (an invalid one is a dead letter
//     without any upstream call);
//  2. guard: ask the operation's group's circuit breaker; while it is open
//     the task is deferred (no retry spent) until the next probe is due;
//  3. pace: take a call from the operation's rate-limit group, waiting in
//     place for a short wait and deferring the task (no retry spent) for a
//     long one;
//  4. begin: take the key's lease in the ledger; a key the ledger says
//     succeeded completes without calling upstream;
//  5. call upstream, then classify the answer: success, the operation's
//     "already done" answer after an attempt that may have reached
//     upstream, transient (retry, or deferral when the breaker it was
//     reported to is open), auth or another 4xx (dead letter), and tell
//     the breaker (success, transient failure, or neither);
//  6. record the outcome: the result and the ledger's "succeeded" in one
//     round trip, or the dead letter in meetops' store, the task result,
//     the ledger, a warn line and a metric.
package executor
