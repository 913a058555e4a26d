package main

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/meetops/meetops"
	"github.com/meetops/meetops/internal/ratelimit"
	"github.com/meetops/meetops/internal/tasks"
)

// exitDead ends bulk --wait and batch status --watch when the batch
// completed with dead letters.
const exitDead = 4

// cliOrigin is the origin of the CLI's batches: user@host.
func cliOrigin() string {
	name := "unknown"
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	return name + "@" + host
}

func (a *app) batchCommand() *cobra.Command {
	b := &cobra.Command{
		Use:   "batch",
		Short: "Follow batches: the bulk runs and their exact progress",
		Long: `Every bulk run is a batch: its members are the operations of the file, each
with its line, and its progress says how many are pending, succeeded, already
done or dead, exactly, whatever its size. A requeued dead letter makes its
batch incomplete again. Batches expire with the dedup window.`,
		Example: "  enqueue batch list\n  enqueue batch status b_3f0c5d0e9b1a4c3d8e7f6a5b --watch\n  enqueue batch report b_3f0c5d0e9b1a4c3d8e7f6a5b",
		Args:    noArgs,
		RunE:    a.showHelp,
	}
	b.AddCommand(a.batchListCommand(), a.batchStatusCommand(), a.batchReportCommand())
	return b
}

func (a *app) batchListCommand() *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List recent batches, newest first",
		Example: "  enqueue batch list\n  enqueue batch list --limit 5 -o json",
		Args:    cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			c, err := a.connect(cmd.Context())
			if err != nil {
				return err
			}
			list, err := c.Batches(cmd.Context(), limit)
			if err != nil {
				return err
			}
			if a.json() {
				return writeJSON(a.stdout, append([]meetops.BatchProgress{}, list...))
			}
			if len(list) == 0 {
				_, err := fmt.Fprintln(a.stdout, "no batches")
				return err
			}
			t := newTable(a.stdout, "BATCH", "LABEL", "ORIGIN", "CREATED", "TOTAL", "PENDING", "SUCCEEDED", "ALREADY_DONE", "DEAD", "COMPLETE")
			for _, p := range list {
				t.row(p.BatchID, p.Label, p.Origin, p.CreatedAt, fmt.Sprint(p.Total), fmt.Sprint(p.Pending), fmt.Sprint(p.Succeeded),
					fmt.Sprint(p.AlreadyDone), fmt.Sprint(p.Dead), p.Complete)
			}
			return t.flush()
		}),
	}
	cmd.Flags().IntVar(&limit, "limit", 20, "how many batches at most")
	return cmd
}

func (a *app) batchStatusCommand() *cobra.Command {
	var watch bool
	cmd := &cobra.Command{
		Use:   "status ID",
		Short: "Show a batch's progress (--watch: until it is complete)",
		Long: `Show a batch's progress: its members pending, succeeded, already done and
dead, and whether it is complete. With --watch, follow it until it is complete
(exit 4 when it completed with dead letters). An unknown or expired batch
exits 1.`,
		Example: "  enqueue batch status b_3f0c5d0e9b1a4c3d8e7f6a5b\n  enqueue batch status b_3f0c5d0e9b1a4c3d8e7f6a5b --watch",
		Args:    cobra.ExactArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			if watch {
				return a.waitBatch(cmd.Context(), "", args[0])
			}
			c, err := a.connect(cmd.Context())
			if err != nil {
				return err
			}
			p, err := c.Batch(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if a.json() {
				return writeJSON(a.stdout, p)
			}
			return a.printProgress(p)
		}),
	}
	cmd.Flags().BoolVar(&watch, "watch", false, "follow the batch until it is complete")
	return cmd
}

func (a *app) printProgress(p meetops.BatchProgress) error {
	t := newTable(a.stdout)
	t.row("batch", p.BatchID)
	t.row("label", p.Label)
	t.row("origin", p.Origin)
	t.row("created", p.CreatedAt)
	t.row("total", fmt.Sprint(p.Total))
	t.row("pending", fmt.Sprint(p.Pending))
	t.row("succeeded", fmt.Sprint(p.Succeeded))
	t.row("already done", fmt.Sprint(p.AlreadyDone))
	t.row("dead", fmt.Sprint(p.Dead))
	t.row("complete", p.Complete)
	if p.CompletedAt != nil {
		t.row("completed", *p.CompletedAt)
	}
	return t.flush()
}

// reportLine is one member of enqueue batch report.
type reportLine struct {
	Index   int    `json:"index"`
	Line    int    `json:"line,omitempty"`
	Key     string `json:"key"`
	State   string `json:"state"`
	Outcome string `json:"outcome,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

// memberReport describes a member as the report and the dead-letter list
// of --wait show it.
func memberReport(m meetops.BatchMember) reportLine {
	r := reportLine{Index: m.Index, Line: m.Line, Key: m.Key, State: meetops.StatePending}
	switch m.State.Kind() {
	case meetops.MemberSucceeded:
		r.State, r.Outcome = meetops.StateCompleted, "succeeded"
	case meetops.MemberAlreadyDone:
		r.State, r.Outcome = meetops.StateCompleted, "already_done"
	case meetops.MemberDead:
		r.State, r.Outcome, r.Reason = meetops.StateArchived, "dead_letter", m.State.Reason()
	}
	return r
}

func (a *app) batchReportCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "report ID",
		Short: "One JSON line per member: index, line, key, state, outcome, reason",
		Long: `Print one JSON object a line per member of the batch, in index order:
index (0-based), line (the 1-based line of the file, for a batch from a file),
key, state (pending, completed, archived), outcome (succeeded, already_done,
dead_letter) and, for a dead letter, reason.`,
		Example: "  enqueue batch report b_3f0c5d0e9b1a4c3d8e7f6a5b | jq -c 'select(.state == \"archived\")'",
		Args:    cobra.ExactArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			c, err := a.connect(cmd.Context())
			if err != nil {
				return err
			}
			return c.BatchMembers(cmd.Context(), args[0], func(m meetops.BatchMember) error {
				return writeJSON(a.stdout, memberReport(m))
			})
		}),
	}
}

// Following a batch.
const (
	// pollTerminal is how often a terminal's status line is refreshed.
	pollTerminal = 500 * time.Millisecond
	// pollQuiet is how often the batch is read without a terminal; a line
	// is printed every printQuiet.
	pollQuiet  = time.Second
	printQuiet = 10 * time.Second
)

// waitBatch follows batch id until it is complete: a status line on a
// terminal, a line every 10 s otherwise; then it lists the dead members,
// by FILE:LINE when the batch came from file. Exit 0 when none died, 4
// when some did; Ctrl-C stops waiting (exit 1), not the batch.
func (a *app) waitBatch(ctx context.Context, file, id string) error {
	c, err := a.connect(ctx)
	if err != nil {
		return err
	}
	tty := a.isTerminal(a.stderr)
	poll := pollQuiet
	if tty {
		poll = pollTerminal
	}
	start := time.Now()
	first, err := c.Batch(ctx, id)
	if err != nil {
		return err
	}
	eta := newETA(a.getenv, first, pendingByOp(ctx, c, id))
	lastPrint := time.Time{}
	p := first
	for !p.Complete {
		switch now := time.Now(); {
		case tty:
			fmt.Fprintf(a.stderr, "\r\x1b[K%s", progressLine(p, eta.estimate(p, now.Sub(start))))
		case now.Sub(lastPrint) >= printQuiet:
			fmt.Fprintln(a.stderr, progressLine(p, eta.estimate(p, now.Sub(start))))
			lastPrint = now
		}
		t := time.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
			if tty {
				fmt.Fprintln(a.stderr)
			}
			return &exitError{code: exitFailure, err: fmt.Errorf("stopped waiting; batch %s goes on (enqueue batch status %s)", id, id)}
		case <-t.C:
		}
		if p, err = c.Batch(ctx, id); err != nil {
			return err
		}
	}
	if tty {
		fmt.Fprintf(a.stderr, "\r\x1b[K")
	}
	fmt.Fprintln(a.stderr, progressLine(p, ""))
	if p.Dead == 0 {
		return nil
	}
	err = c.BatchMembers(ctx, id, func(m meetops.BatchMember) error {
		if m.State.Kind() != meetops.MemberDead {
			return nil
		}
		where := fmt.Sprintf("#%d", m.Index)
		if file != "" && m.Line > 0 {
			where = fmt.Sprintf("%s:%d", file, m.Line)
		}
		_, err := fmt.Fprintf(a.stdout, "%s: %s: dead letter (%s)\n", where, m.Key, m.State.Reason())
		return err
	})
	if err != nil {
		return err
	}
	return &exitError{code: exitDead, err: fmt.Errorf("batch %s: %d of %d dead (enqueue dead list; enqueue batch report %s)", id, p.Dead, p.Total, id)}
}

// progressLine describes p in one line, with an ETA when one is known.
func progressLine(p meetops.BatchProgress, eta string) string {
	done := p.Succeeded + p.AlreadyDone + p.Dead
	var b strings.Builder
	fmt.Fprintf(&b, "batch %s: %d/%d done (%d succeeded, %d already done, %d dead), %d pending", p.BatchID, done, p.Total,
		p.Succeeded, p.AlreadyDone, p.Dead, p.Pending)
	if p.Complete {
		b.WriteString(", complete")
	}
	if eta != "" {
		b.WriteString(", " + eta)
	}
	return b.String()
}

// eta estimates when a batch will be done: from the rate its members have
// finished at since waiting began, and before any has, from the configured
// rate limits (RATELIMIT_*, else the defaults) of the operations still
// pending — the same limits the workers pace the upstream calls with.
type eta struct {
	startDone int
	// byLimits is the time the pending members need at the rate limits
	// when waiting began (0: unknown).
	byLimits time.Duration
}

func newETA(getenv func(string) string, p meetops.BatchProgress, pendingByOp map[string]int) *eta {
	e := &eta{startDone: p.Succeeded + p.AlreadyDone + p.Dead}
	perGroup := map[string]int{}
	for op, n := range pendingByOp {
		if typ, ok := tasks.TypeOf(op); ok {
			perGroup[tasks.GroupOf(typ)] += n
		}
	}
	for g, n := range perGroup {
		lim := ratelimit.Defaults[g]
		if v := getenv("RATELIMIT_" + strings.ToUpper(g)); v != "" {
			if l, err := ratelimit.ParseLimit(v); err == nil {
				lim = l
			}
		}
		if !lim.Off() {
			e.byLimits = max(e.byLimits, time.Duration(n)*lim.Interval())
		}
	}
	return e
}

// estimate describes the rate and the time left, after elapsed of waiting.
func (e *eta) estimate(p meetops.BatchProgress, elapsed time.Duration) string {
	done := p.Succeeded + p.AlreadyDone + p.Dead - e.startDone
	if done > 0 && elapsed > 0 {
		rate := float64(done) / elapsed.Seconds()
		left := time.Duration(float64(p.Pending) / rate * float64(time.Second)).Round(time.Second)
		return fmt.Sprintf("%.1f/s, ETA %s", rate, left)
	}
	if e.byLimits > 0 {
		return fmt.Sprintf("ETA ~%s at the rate limits", max(e.byLimits-elapsed, 0).Round(time.Second))
	}
	return ""
}

// pendingByOp counts a batch's pending members by operation, from their
// keys (a derived key starts with its operation's name; other keys are not
// counted).
func pendingByOp(ctx context.Context, c *meetops.Client, id string) map[string]int {
	out := map[string]int{}
	_ = c.BatchMembers(ctx, id, func(m meetops.BatchMember) error {
		if m.State.Kind() == meetops.MemberPending {
			if op, _, ok := strings.Cut(m.Key, ":"); ok {
				out[op]++
			}
		}
		return nil
	})
	return out
}
