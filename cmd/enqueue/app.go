package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/meetops/meetops"
	"github.com/meetops/meetops/internal/callback"
	"github.com/meetops/meetops/internal/redisconf"
	"github.com/meetops/meetops/internal/secretfile"
	"github.com/meetops/meetops/internal/termtext"
)

// defaultTimeout is --timeout's default.
const defaultTimeout = 5 * time.Second

// app is one invocation: its streams, environment and global flags.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	// isTerminal reports whether a stream is an interactive terminal.
	isTerminal func(any) bool

	// redis is the Redis topology, from the flags and the environment.
	redis redisconf.Config
	// redisFlags holds the values of the Redis flags, by flag name.
	redisFlags  map[string]*string
	timeout     time.Duration
	dedupWindow time.Duration
	output      string

	client *meetops.Client
}

// run executes the command line args and returns the exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, getenv: os.Getenv, isTerminal: isTerminal}
	return a.run(ctx, args)
}

func isTerminal(stream any) bool {
	f, ok := stream.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func (a *app) run(ctx context.Context, args []string) int {
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if a.client != nil {
		_ = a.client.Close()
	}
	return a.report(cmd, err)
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "enqueue",
		Short: "Enqueue meetops operations and manage dead letters",
		Long: `enqueue puts meetops operations into Redis for the workers: one from flags,
or many from a JSONL or CSV file. It also reports a task's state and lists,
requeues and purges dead letters.

Every operation is validated exactly as the worker validates it and enqueued
under an idempotency key (--key, or one derived from the operation), so
enqueueing the same operation again changes nothing.

An operation for a queue no running worker serves is enqueued (it waits for
such a worker) with a warning on stderr naming the queues workers do serve;
with --require-served-queue it is refused instead, exit 5.

Exit codes: 0 success or a duplicate of the same operation, 1 runtime
failure, 2 usage or validation error, 3 key reused with a different payload,
4 a followed batch ended with dead letters (bulk --wait, batch status
--watch), 5 no running worker serves the queue (--require-served-queue).`,
		Example: `  enqueue dismiss --app-id demo-app --room-id room-001
  enqueue bulk examples/ops.jsonl
  enqueue dead list`,
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          noArgs,
		RunE:          a.showHelp,
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return err })

	pf := root.PersistentFlags()
	// The Redis topology: the same variables as every meetops process, and
	// a flag for each but the sentinels' password. Defaults are not shown
	// from the environment, so --help never prints a password.
	a.redisFlags = map[string]*string{}
	for _, s := range a.redis.Settings() {
		if s.Flag == "" {
			continue
		}
		def := ""
		if s.Env == redisconf.EnvURL {
			def = redisconf.DefaultURL
		}
		a.redisFlags[s.Flag] = pf.String(s.Flag, def, s.Usage+" (env "+s.Env+")")
	}
	pf.DurationVar(&a.timeout, "timeout", defaultTimeout, "how long to wait for Redis to answer when connecting")
	pf.DurationVar(&a.dedupWindow, "dedup-window", 0, "how long completed tasks are kept for deduplication; the worker's DEDUP_WINDOW (env DEDUP_WINDOW, default 24h)")
	pf.StringVarP(&a.output, "output", "o", "text", "output format: text (aligned tables) or json")
	root.PersistentPreRunE = a.checkGlobals

	for _, c := range opCommands(a) {
		root.AddCommand(c)
	}
	root.AddCommand(a.bulkCommand(), a.statusCommand(), a.deadCommand(), a.batchCommand())
	return root
}

// checkGlobals validates the global flags before any command runs.
func (a *app) checkGlobals(cmd *cobra.Command, _ []string) error {
	if a.output != "text" && a.output != "json" {
		return usageErrorf("--output must be text or json, got %q", a.output)
	}
	if a.timeout <= 0 {
		return usageErrorf("--timeout must be positive, got %s", a.timeout)
	}
	if err := a.redisSettings(cmd); err != nil {
		return err
	}
	if !cmd.Flags().Changed("dedup-window") {
		if env := a.getenv("DEDUP_WINDOW"); env != "" {
			d, err := time.ParseDuration(env)
			if err != nil || d <= 0 {
				return usageErrorf("DEDUP_WINDOW must be a positive duration like 24h, got %q", env)
			}
			a.dedupWindow = d
		}
	}
	if a.dedupWindow < 0 {
		return usageErrorf("--dedup-window must be positive, got %s", a.dedupWindow)
	}
	return nil
}

// redisSettings fills a.redis from the Redis flags that were given and,
// for the others, the environment (REDIS_URL and REDIS_SENTINEL_PASSWORD
// also from NAME_FILE, a file that holds the value).
func (a *app) redisSettings(cmd *cobra.Command) error {
	for _, s := range a.redis.Settings() {
		if s.Flag != "" && cmd.Flags().Changed(s.Flag) {
			if err := s.Set(*a.redisFlags[s.Flag]); err != nil {
				return usageErrorf("--%s: %v", s.Flag, err)
			}
			continue
		}
		v, path := a.getenv(s.Env), ""
		if s.Secret || s.Env == redisconf.EnvURL {
			path = a.getenv(s.Env + "_FILE")
		}
		switch {
		case v != "" && path != "":
			return usageErrorf("%s and %s_FILE are both set; use one", s.Env, s.Env)
		case path != "":
			secret, warning, err := secretfile.Read(path)
			if err != nil {
				return usageErrorf("%s_FILE: %v", s.Env, err)
			}
			if warning != "" {
				fmt.Fprintf(a.stderr, "enqueue: warning: %s_FILE: %s\n", s.Env, termtext.Escape(warning))
			}
			v = secret
		}
		if v == "" {
			continue
		}
		if err := s.Set(v); err != nil {
			return usageErrorf("%s: %v", s.Env, err)
		}
	}
	return nil
}

// showHelp is what a command group does without a subcommand: a usage
// error naming the subcommands.
func (a *app) showHelp(cmd *cobra.Command, _ []string) error {
	var names []string
	for _, c := range cmd.Commands() {
		if c.IsAvailableCommand() {
			names = append(names, c.Name())
		}
	}
	return usageErrorf("%s needs a command: %s", cmd.CommandPath(), strings.Join(names, ", "))
}

// noArgs rejects arguments to a command group, naming the unknown command.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("unknown command %q for %q", args[0], cmd.CommandPath())
	}
	return nil
}

// json reports whether -o json was asked for.
func (a *app) json() bool { return a.output == "json" }

// connect returns the client, connecting and checking Redis on first use
// within --timeout.
func (a *app) connect(ctx context.Context) (*meetops.Client, error) {
	if a.client != nil {
		return a.client, nil
	}
	opts := []meetops.ClientOption{meetops.WithDialTimeout(a.timeout)}
	if v := a.getenv("CALLBACK_ALLOW_HOSTS"); v != "" {
		hosts, err := callback.ParseHosts(v)
		if err != nil {
			return nil, usageErrorf("CALLBACK_ALLOW_HOSTS: %v", err)
		}
		opts = append(opts, meetops.WithCallbackHosts(hosts...))
	}
	if a.dedupWindow > 0 {
		opts = append(opts, meetops.WithDedupWindow(a.dedupWindow))
	}
	c, err := meetops.NewClientFromConfig(a.redis, opts...)
	if err != nil {
		return nil, usageErrorf("%s", strings.ReplaceAll(strings.TrimPrefix(err.Error(), "redis: "), "\n", "; "))
	}
	pingCtx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	if err := c.Ping(pingCtx); err != nil {
		_ = c.Close()
		return nil, err
	}
	a.client = c
	return c, nil
}

// warnUnserved prints, on stderr, the warning for those of queues that
// no running worker serves (nothing when all are served, or when the
// check cannot be made: the enqueue itself went through). The check reuses
// the client's recent read of the workers, so it costs no round trip right
// after an enqueue.
func (a *app) warnUnserved(ctx context.Context, c *meetops.Client, queues ...string) {
	check, err := c.CheckQueues(ctx, queues...)
	if err != nil {
		return
	}
	if w := check.Warning(); w != "" {
		fmt.Fprintf(a.stderr, "enqueue: warning: %s\n", termtext.Escape(w))
	}
}

// quietLogger silences go-redis' own log lines: errors are reported once,
// by the command. main installs it (redis.SetLogger is process-wide).
type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}
