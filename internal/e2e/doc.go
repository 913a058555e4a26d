// Package e2e holds end-to-end tests that run the built worker, cloudsim
// and enqueue binaries as processes against a real redis-server.
package e2e
