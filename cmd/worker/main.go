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
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		if errors.Is(err, worker.ErrUsage) {
			os.Exit(2) // the flag package already printed the usage
		}
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintln(os.Stderr, "worker:", line)
		}
		os.Exit(1)
	}
}

// run loads the configuration, starts the dev environment when asked, and
// runs the worker until ctx is cancelled.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	cfg, err := worker.Load(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) || errors.Is(err, worker.ErrUsage) {
		return err
	}
	if !cfg.Dev {
		// Report every problem at once: bad values and what does not fit.
		if err := errors.Join(err, cfg.WithDefaults().Validate()); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	if cfg.Dev {
		var dev *worker.Dev
		cfg, dev, err = worker.StartDev(cfg, stderr)
		if err != nil {
			return err
		}
		defer dev.Close()
	}
	log := worker.NewLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	w, err := worker.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	return w.Run(ctx)
}
