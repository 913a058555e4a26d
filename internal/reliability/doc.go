// Package reliability is meetops' fault suite: end-to-end scenarios that
// run the built worker and cloudsim binaries (and enqueue, where the
// scenario needs it) against a real redis-server, break something — kill the
// worker, restart Redis, storm the upstream with 5xx, hang it, expire its
// tokens, feed it hostile input — and check that no task is lost and no
// upstream effect happens twice.
//
// Each scenario records its figures in a [Table]; the test binary prints the
// table when the tests end (visible with go test -v, or in the file named by
// MEETOPS_RELIABILITY_REPORT).
package reliability
