// Command api serves meetops' HTTP producer API: services in any language
// enqueue operations and batches, read their status and manage dead
// letters over HTTP, with the guarantees of the Go producer package.
//
//	api                          # serve on API_ADDR (default 127.0.0.1:8090)
//	api token NAME enqueue|admin # make a token and its API_TOKENS line
//	api -h                       # every flag and environment variable
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

	"github.com/meetops/meetops/internal/api"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(exitCode(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr), os.Stderr))
}

// run serves the API until ctx is cancelled, or runs the token command.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "token" {
		return tokenCommand(args[1:], stdout)
	}
	cfg, err := api.Load(args, getenv, stdout)
	if err != nil {
		return err
	}
	return api.Run(ctx, cfg, stderr)
}

// tokenCommand prints a new token and the line that configures it.
func tokenCommand(args []string, stdout io.Writer) error {
	if len(args) != 2 {
		return fmt.Errorf("%w: want api token NAME enqueue|admin", api.ErrUsage)
	}
	secret, t, err := api.NewToken(args[0], api.Scope(args[1]))
	if err != nil {
		return fmt.Errorf("%w: %w", api.ErrUsage, err)
	}
	_, err = fmt.Fprintf(stdout, "token (give it to %s; it is not stored anywhere):\n  %s\nline for API_TOKENS_FILE (the server keeps only this hash):\n  %s\n", t.Name, secret, t.Line())
	return err
}

// exitCode prints err, one line per problem, and maps it to the exit
// status: 0 success or -h, 2 usage error, 1 anything else.
func exitCode(err error, stderr io.Writer) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, api.ErrUsage):
		fmt.Fprintln(stderr, "api:", err)
		return 2
	}
	for _, line := range strings.Split(err.Error(), "\n") {
		fmt.Fprintln(stderr, "api:", line)
	}
	return 1
}
