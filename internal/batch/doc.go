// Package batch keeps meetops' batch records: which operations a bulk
// enqueue made (its members, each with its position), and their exact
// progress — how many are pending, succeeded, already done or dead, and
// whether the batch is complete — readable in O(1) whatever the batch's
// size.
//
// A batch is created open ([Store.Create]), gets its members as they are
// enqueued ([Store.Add]) and is sealed when the last one is in
// ([Store.Seal]); only a sealed batch can complete, so one whose first
// members finish before the last are enqueued never completes early.
//
// # Exactness
//
// Each member's state is kept in the batch (pending, succeeded,
// already_done, dead with its reason), and a transition moves the counts
// only when the state changes, in one script: a redelivered task, a task
// recovered after a crash, a retried one or a duplicate of an earlier
// operation is counted once, in its current state. The counts always sum
// to the total.
//
// Who moves a member:
//
//   - the worker, at a task's terminal outcome (succeeded, already done,
//     dead letter, or a redelivery that finds the ledger says succeeded).
//     It learns the task's batches from the member index, a set per
//     idempotency key in the key's Redis Cluster slot, which the ledger's
//     finish script reads in the same round trip (ledger.Options.Subscribers);
//   - the producer, when it adds a member whose task had already finished
//     (a rerun of a file: the members are the existing tasks), and when it
//     requeues a dead letter (dead → pending, before the task is enqueued
//     again, so the worker's later transition is the last word).
//
// The order of writes makes this race-free: a member is written to its
// batch before the member index names the batch, and the producer reads a
// duplicate's outcome (the ledger, then the dead-letter store) only after
// writing the index. Either the worker's outcome is recorded after the
// index exists, and the worker moves the member, or before, and the
// producer sees it; both moving it is harmless.
//
// # Completion
//
// A sealed batch whose pending count reaches zero is complete: its
// completion count n grows by one and completed_at is set. A requeued dead
// letter makes it incomplete again (completed_at cleared); completing
// again counts n+1. Each completion of a batch with a callback URL is
// delivered once (see package callback), under the delivery ID
// "<batch_id>:<n>".
//
// # Redis layout
//
// A batch's keys carry its ID as hash tag, so one script can update the
// counts and a member's state together on Redis Cluster:
//
//	meetops:b:{ID}        hash: label, origin, created_at, callback_url, sealed,
//	                      total, pending, succeeded, already_done, dead,
//	                      completions, completed_at, callbacks_sent
//	meetops:b:{ID}:s      hash: member key → state (p, s, a, d<reason>)
//	meetops:b:{ID}:i      hash: index → member key and input line
//	meetops:kb:{KEY}      set: the batches KEY is a member of (KEY's slot,
//	                      with its ledger entry)
//	meetops:{batches}:index      sorted set: batch IDs by creation time
//	meetops:{batches}:callbacks  sorted set: batches with a callback to
//	                      deliver or delivered, by creation time
//
// Every key expires with the dedup window after its last write; a batch
// whose records expired reads as not found.
package batch
