// Package breaker owns the upstream circuit breaker: one per rate-limit
// group (tasks.Groups), shared by every worker on the same Redis, which
// stops calling a group's upstream while it is failing and probes it
// until it recovers.
//
// A group's breaker opens when at least Settings.MinAttempts attempts in
// the last Settings.Window were counted and at least Settings.Threshold
// percent of them failed transiently (5xx, timeouts, resets: the outcomes
// the executor reports as Failure; 4xx, auth refusals and throttling are
// Other and not counted). While it is open, no call of the group goes
// except one probe per Settings.ProbeInterval across all workers
// (half-open while it is in flight); Settings.CloseAfter probes in a row
// that succeed close it, a probe that fails opens it again. After a probe
// succeeds the next may go at once (a recovered upstream does not wait
// CloseAfter intervals), and a probe whose outcome never comes back (its
// worker died) is replaced after one interval. The state
// machine is machine.go (pure functions of the state and a clock); the
// shared state and window live in Redis (redis.go).
//
// Cost when closed. Redis holds the truth, but a worker does not ask it
// for every call: it keeps a copy of each group's state, refreshed at
// most every Options.Refresh (1 s) or whenever it writes or reads the
// state for another reason, and answers a closed group from that copy (a
// mutex and a map lookup). Successes are counted locally and added to the
// shared window at most every Options.Flush (250 ms); the same round trip
// refreshes the copy. A failure is added at once, so a worker learns that
// the breaker opened on its next failure at the latest, and an outage
// costs about MinAttempts calls plus those already in flight before every
// worker stops. Only open and half-open groups cost a round trip per
// check (when a probe is due or in flight).
//
// Sharing. Every read is one Lua script (readScript), and every change is
// a compare-and-set on the state's version (writeScript): the worker whose
// write wins made the transition, so each transition is counted and
// logged once across the fleet (Observer.Transition), while every worker
// reports the state it sees (Observer.State). Keys are
// meetops:br:{group}:state (a hash) and meetops:br:{group}:win (the
// window's per-bucket counts); the group is the hash tag, so on Redis
// Cluster a group's breaker lives in one slot. Time is Redis's clock, so
// workers' clocks need not agree.
package breaker
