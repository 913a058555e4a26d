package main

import (
	"bufio"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/meetops/meetops"
	"github.com/meetops/meetops/internal/bulk"
	"github.com/meetops/meetops/internal/termtext"
)

// maxMessage is how much of an upstream error message the table shows.
const maxMessage = 60

func (a *app) deadCommand() *cobra.Command {
	dead := &cobra.Command{
		Use:   "dead",
		Short: "List, show, requeue and purge dead letters",
		Long: `Dead letters are operations that failed permanently: the upstream refused
them (4xx), their payload was invalid, authentication failed, or their
retries ran out. meetops keeps every one, including those asynq trimmed
from its archive.`,
		Example: "  enqueue dead list --op dismiss\n  enqueue dead requeue --all --reason retries_exhausted",
		Args:    noArgs,
		RunE:    a.showHelp,
	}
	dead.AddCommand(a.deadListCommand(), a.deadShowCommand(), a.deadRequeueCommand(), a.deadPurgeCommand())
	return dead
}

// filterFlags registers --op and --reason.
func filterFlags(fs *pflag.FlagSet, f *meetops.DeadLetterFilter) {
	fs.StringVar(&f.Op, "op", "", "only dead letters of this operation: "+strings.Join(meetops.OpNames, ", "))
	fs.StringVar(&f.Reason, "reason", "", "only dead letters that died for this reason: "+strings.Join(meetops.Reasons, ", "))
}

func (a *app) deadListCommand() *cobra.Command {
	var f meetops.DeadLetterFilter
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List dead letters, oldest first",
		Example: "  enqueue dead list\n  enqueue dead list --op cancel --reason http_4xx -o json",
		Args:    cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			c, err := a.connect(cmd.Context())
			if err != nil {
				return err
			}
			if a.json() {
				arr := &jsonArray{w: a.stdout}
				if err := c.DeadLetters(cmd.Context(), f, func(d meetops.DeadLetter) error { return arr.add(d) }); err != nil {
					return err
				}
				return arr.close()
			}
			t := newTable(a.stdout, "KEY", "OP", "REASON", "STATUS", "CODE", "MESSAGE", "ATTEMPTS", "DEAD AT")
			n := 0
			err = c.DeadLetters(cmd.Context(), f, func(d meetops.DeadLetter) error {
				n++
				t.row(d.Key, d.Op, d.Reason, d.Status, d.ErrorCode, truncate(d.ErrorMsg, maxMessage), d.Attempts, d.DeadAt)
				return nil
			})
			if err != nil {
				return err
			}
			if n == 0 {
				_, err := fmt.Fprintln(a.stdout, "no dead letters")
				return err
			}
			return t.flush()
		}),
	}
	filterFlags(cmd.Flags(), &f)
	return cmd
}

func (a *app) deadShowCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "show KEY",
		Short:   "Show a dead letter: why it died, its payload and result",
		Example: "  enqueue dead show dismiss:2f0c5d0e9b1a4c3d8e7f6a5b4c3d2e1f",
		Args:    cobra.ExactArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			c, err := a.connect(cmd.Context())
			if err != nil {
				return err
			}
			d, err := c.DeadLetter(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if a.json() {
				return writeJSON(a.stdout, d)
			}
			t := newTable(a.stdout)
			t.row("key", d.Key)
			t.row("op", d.Op)
			t.row("queue", d.Queue)
			t.row("reason", d.Reason)
			t.row("status", d.Status)
			t.row("error code", d.ErrorCode)
			t.row("error message", d.ErrorMsg)
			t.row("request id", d.RequestID)
			t.row("attempts", d.Attempts)
			t.row("dead at", d.DeadAt)
			if err := t.flush(); err != nil {
				return err
			}
			_, err = fmt.Fprintf(a.stdout, "payload:\n%s\nresult:\n%s\n", indentJSON(d.Payload, "  "), indentJSON(d.Result, "  "))
			return err
		}),
	}
}

// selection is the dead letters a requeue or purge acts on: KEYs, or --all
// with an optional filter.
type selection struct {
	all    bool
	filter meetops.DeadLetterFilter
}

func (s *selection) register(fs *pflag.FlagSet, verb string) {
	fs.BoolVar(&s.all, "all", false, verb+" every dead letter (that --op and --reason select)")
	filterFlags(fs, &s.filter)
}

func (s *selection) check(args []string) error {
	switch {
	case s.all && len(args) > 0:
		return usageErrorf("give KEYs or --all, not both")
	case !s.all && len(args) == 0:
		return usageErrorf("give the KEYs of the dead letters, or --all")
	case !s.all && s.filter != (meetops.DeadLetterFilter{}):
		return usageErrorf("--op and --reason select with --all; drop them when naming KEYs")
	}
	return nil
}

// keyFailure is one key a requeue or purge could not handle.
type keyFailure struct {
	Key   string `json:"key"`
	Error string `json:"error"`
}

// split separates the keys a requeue or purge handled from those it could
// not.
func split(results []meetops.KeyResult) (done []meetops.KeyResult, failures []keyFailure) {
	failures = []keyFailure{}
	for _, r := range results {
		if r.Err != nil {
			failures = append(failures, keyFailure{Key: r.Key, Error: bulk.OneLine(r.Err)})
			continue
		}
		done = append(done, r)
	}
	return done, failures
}

// reportFailures prints the keys that failed and returns exit 1 when any
// did.
func (a *app) reportFailures(failures []keyFailure) error {
	if len(failures) == 0 {
		return nil
	}
	for _, f := range failures {
		fmt.Fprintf(a.stderr, "enqueue: %s: %s\n", termtext.Escape(f.Key), termtext.Escape(f.Error))
	}
	return &exitError{code: exitFailure}
}

func (a *app) deadRequeueCommand() *cobra.Command {
	var sel selection
	cmd := &cobra.Command{
		Use:   "requeue (KEY... | --all)",
		Short: "Put dead letters back to pending with a fresh retry budget",
		Long: `Put dead letters back to pending with a fresh retry budget: each is enqueued
again from its stored payload, under the same key and queue, even when asynq
has already trimmed it from its archive. An operation that may have reached
the upstream keeps counting its "already done" answer as success.`,
		Example: "  enqueue dead requeue dismiss:2f0c5d0e9b1a4c3d8e7f6a5b4c3d2e1f\n  enqueue dead requeue --all --op reclaim",
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			if err := sel.check(args); err != nil {
				return err
			}
			c, err := a.connect(cmd.Context())
			if err != nil {
				return err
			}
			var results []meetops.KeyResult
			if sel.all {
				if results, err = c.RequeueAll(cmd.Context(), sel.filter); err != nil {
					return err
				}
			} else {
				results = c.Requeue(cmd.Context(), args...)
			}
			done, failures := split(results)
			infos := make([]meetops.Info, len(done))
			var unserved []string
			for i, r := range done {
				infos[i] = r.Info
				if r.Info.Unserved {
					unserved = append(unserved, r.Info.Queue)
				}
			}

			if a.json() {
				if err := writeJSON(a.stdout, struct {
					Requeued []meetops.Info `json:"requeued"`
					Failed   []keyFailure   `json:"failed"`
				}{infos, failures}); err != nil {
					return err
				}
			} else if len(infos) > 0 {
				if err := a.printInfos(infos); err != nil {
					return err
				}
			}
			if !a.json() {
				fmt.Fprintf(a.stdout, "requeued %d dead letter%s\n", len(infos), plural(len(infos)))
			}
			err = a.reportFailures(failures)
			if len(unserved) > 0 {
				a.warnUnserved(cmd.Context(), c, unserved...)
			}
			return err
		}),
	}
	sel.register(cmd.Flags(), "requeue")
	return cmd
}

func (a *app) deadPurgeCommand() *cobra.Command {
	var sel selection
	var yes bool
	cmd := &cobra.Command{
		Use:   "purge (KEY... | --all)",
		Short: "Delete dead letters for good",
		Long: `Delete dead letters for good, from meetops' store and asynq's archive. On a
terminal it asks first; elsewhere it needs --yes.`,
		Example: "  enqueue dead purge dismiss:2f0c5d0e9b1a4c3d8e7f6a5b4c3d2e1f\n  enqueue dead purge --all --reason invalid_payload --yes",
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			if err := sel.check(args); err != nil {
				return err
			}
			c, err := a.connect(cmd.Context())
			if err != nil {
				return err
			}
			if !yes {
				n := int64(len(args))
				if sel.all {
					if n, err = c.CountDeadLetters(cmd.Context(), sel.filter); err != nil {
						return err
					}
				}
				if err := a.confirm(fmt.Sprintf("Purge %d dead letter%s? This cannot be undone.", n, plural(int(n)))); err != nil {
					return err
				}
			}
			var results []meetops.KeyResult
			if sel.all {
				if results, err = c.PurgeAll(cmd.Context(), sel.filter); err != nil {
					return err
				}
			} else {
				results = c.Purge(cmd.Context(), args...)
			}
			done, failures := split(results)
			n := len(done)
			if a.json() {
				if err := writeJSON(a.stdout, struct {
					Purged int          `json:"purged"`
					Failed []keyFailure `json:"failed"`
				}{n, failures}); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(a.stdout, "purged %d dead letter%s\n", n, plural(n))
			}
			return a.reportFailures(failures)
		}),
	}
	sel.register(cmd.Flags(), "purge")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}

// confirm asks question on the terminal; without one it refuses.
func (a *app) confirm(question string) error {
	if !a.isTerminal(a.stdin) {
		return usageErrorf("refusing to purge without confirmation: standard input is not a terminal; pass --yes")
	}
	fmt.Fprintf(a.stderr, "%s [y/N] ", question)
	answer, _ := bufio.NewReader(a.stdin).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(answer)) {
	case "y", "yes":
		return nil
	}
	return &exitError{code: exitFailure, err: errors.New("nothing purged")}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
