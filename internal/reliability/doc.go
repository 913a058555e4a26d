// Package reliability holds meetops' binary-level tests: they run the built
// worker, cloudsim and enqueue binaries as processes against a real
// redis-server, on the shared rig of internal/proctest.
//
// Most are fault scenarios: break something — kill the worker, restart
// Redis, storm the upstream with 5xx, hang it, expire its tokens, feed it
// hostile input, fail over a Redis primary — and check that no task is lost
// and no upstream effect happens twice. Each scenario records its figures
// in a [Table]; the test binary prints the table when the tests end
// (visible with go test -v, or in the file named by
// MEETOPS_RELIABILITY_REPORT). The others are end-to-end checks of the
// worker binary: all five operations, start-up validation, the dashboard in
// a headless browser, rate limits shared by two workers.
//
// The end-to-end checks, bulk, dedup, dead letters and the worker-killed
// scenario also run as a suite on a real Redis Cluster and on a real
// Sentinel-managed primary; the failover scenarios SIGKILL the primary
// holding the default queue on each, with and without REDIS_ACK_REPLICAS,
// and measure what was lost, stuck or duplicated and how soon the workers
// processed tasks again.
package reliability
