// Package reliability holds meetops' binary-level tests: they run the built
// worker, cloudsim and enqueue binaries as processes against a real
// redis-server, on the shared rig of internal/proctest.
//
// Most are fault scenarios: break something — kill the worker, restart
// Redis, storm the upstream with 5xx, hang it, expire its tokens, feed it
// hostile input — and check that no task is lost and no upstream effect
// happens twice. Each scenario records its figures in a [Table]; the test
// binary prints the table when the tests end (visible with go test -v, or in
// the file named by MEETOPS_RELIABILITY_REPORT). The others are end-to-end
// checks of the worker binary: all five operations, start-up validation,
// the dashboard in a headless browser, rate limits shared by two workers.
package reliability
