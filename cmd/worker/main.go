// Command worker runs the meetops worker: it executes dismiss, disable,
// cancel, hang-up and reclaim tasks from Redis against Huawei Cloud.
//
//	worker -dev        # embedded Redis + simulator, no configuration
//	worker -h          # every flag and environment variable
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/meetops/meetops/internal/worker"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(exitCode(run(ctx, os.Args[1:], os.Getenv, os.Stderr), os.Stderr))
}

// run runs the worker until ctx is cancelled.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	return worker.Main(ctx, args, getenv, stderr)
}

// exitCode prints err, one line per problem, and maps it to the exit
// status: 0 success or -h, 2 usage error, 1 anything else.
func exitCode(err error, stderr io.Writer) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, worker.ErrUsage):
		return 2 // the flag package already printed the usage
	}
	for _, line := range strings.Split(err.Error(), "\n") {
		fmt.Fprintln(stderr, "worker:", line)
	}
	return 1
}
