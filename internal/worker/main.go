package worker

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
)

// Main is the whole worker command: it loads the configuration from args
// and getenv, starts the dev environment when asked, and runs the worker
// until ctx is cancelled. cmd/worker calls it; so does the benchmark, to
// run the real worker as a process of its own.
func Main(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	cfg, err := Load(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) || errors.Is(err, ErrUsage) {
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
		var dev *Dev
		cfg, dev, err = StartDev(cfg, stderr)
		if err != nil {
			return err
		}
		defer dev.Close()
	}
	log := NewLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	for _, w := range cfg.Warnings() {
		log.Warn().Msg(w)
	}
	// go-redis prints its own connection errors to stderr; they would
	// repeat, unstructured, what the worker reports in one clear line.
	redis.SetLogger(redisLogger{log.With().Str("component", "go-redis").Logger()})
	w, err := New(ctx, cfg, log)
	if err != nil {
		return err
	}
	return w.Run(ctx)
}

// redisLogger sends go-redis's internal messages to the debug log.
type redisLogger struct{ l zerolog.Logger }

// Printf implements go-redis's internal logging interface.
func (r redisLogger) Printf(_ context.Context, format string, v ...any) {
	r.l.Debug().Msg(fmt.Sprintf(format, v...))
}
