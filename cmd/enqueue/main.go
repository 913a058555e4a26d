// Command enqueue puts meetops operations into Redis for the workers — one
// from flags, or many from a JSONL or CSV file — reports their state, and
// lists, requeues and purges dead letters.
//
// Exit codes: 0 success (or a duplicate of the same operation), 1 runtime
// failure, 2 usage or validation error, 3 idempotency key reused with a
// different payload, 4 a followed batch ended with dead letters, 5 no
// running worker serves the queue (with --require-served-queue; without
// it such an operation is enqueued with a warning on stderr). Run
// "enqueue --help" for the commands.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/redis/go-redis/v9"
)

func main() {
	redis.SetLogger(quietLogger{})
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
