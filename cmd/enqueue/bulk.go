package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/meetops/meetops"
	"github.com/meetops/meetops/internal/bulk"
	"github.com/meetops/meetops/internal/termtext"
)

// bulkFlags are the flags of the bulk command.
type bulkFlags struct {
	format      string
	dryRun      bool
	skipInvalid bool
	report      string
	concurrency int
	batch       int
	label       string
	callbackURL string
	wait        bool
	// requireServed refuses the input when no running worker serves one
	// of its queues.
	requireServed bool
}

// bulkSummary is what bulk prints at the end.
type bulkSummary struct {
	File string `json:"file"`
	// Total counts the input's lines (blank ones aside); Valid those that
	// passed validation.
	Total int `json:"total"`
	Valid int `json:"valid"`
	bulk.Summary
	DryRun      bool `json:"dry_run,omitempty"`
	Interrupted bool `json:"interrupted,omitempty"`
	// BatchID is the batch record of the run ("" for a dry run).
	BatchID string `json:"batch_id,omitempty"`
	// UnservedQueues are the input's queues that no running worker served
	// when the run started (their tasks wait for one); stderr warns too.
	UnservedQueues []string `json:"unserved_queues,omitempty"`
}

func (a *app) bulkCommand() *cobra.Command {
	var f bulkFlags
	cmd := &cobra.Command{
		Use:   "bulk FILE|-",
		Short: "Enqueue many operations from a JSONL or CSV file (or stdin)",
		Long: `Enqueue many operations from a JSONL or CSV file, or from standard input ("-").

A JSONL line is one flat object: "op" (dismiss, disable, cancel, hangup,
reclaim), the operation's fields, and optionally "key", "queue",
"process_at" (RFC 3339) and "max_retry":

  {"op":"dismiss","app_id":"demo-app","room_id":"room-001"}
  {"op":"hangup","conference_id":"900000010","participant_ids":["p-001","p-002"],"queue":"critical"}

A CSV file has a header row with the same names; list fields are
';'-separated, and an empty cell leaves the field out:

  op,app_id,room_id,conference_id,participant_ids
  dismiss,demo-app,room-001,,
  hangup,,,900000010,p-001;p-002

The format comes from the extension (.jsonl, .ndjson, .csv) unless --format
says otherwise; standard input is JSONL by default.

The whole input is validated first, and every bad line reported as
FILE:LINE: reason. With any bad line nothing is enqueued and the exit code is
2, unless --skip-invalid. Then the lines are enqueued in batches (one
pipelined Redis round trip each, several at once). Running the same input
again enqueues nothing new (every line is a duplicate), so an interrupted
run (Ctrl-C) is finished by running it again.

Before enqueueing, the input's queues are checked once each against the
queues running workers serve: those no worker serves are named in one warning
on stderr (their tasks are enqueued and wait for a worker), and listed as
"unserved_queues" in the -o json summary. With --require-served-queue such
an input is refused instead, nothing enqueued, exit 5 (a queue that loses its
last worker during the run fails its lines, retried as any failed enqueue).
A dry run checks no queue (it needs no Redis).

Exit codes: 0 when every valid line was enqueued or was a duplicate; 1 when
an enqueue failed or the run was interrupted; 2 for invalid lines without
--skip-invalid; 3 when a line's key was already used for another operation;
4 with --wait, when the batch ended with dead letters; 5 with
--require-served-queue, when no running worker serves one of the queues.`,
		Example: `  enqueue bulk examples/ops.jsonl
  enqueue bulk examples/ops.csv --dry-run
  enqueue bulk ops.txt --format csv --skip-invalid --report report.jsonl
  generate-ops | enqueue bulk - --batch 1000 --concurrency 4`,
		Args: cobra.ExactArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			return a.bulk(cmd.Context(), args[0], f)
		}),
	}
	fs := cmd.Flags()
	fs.StringVar(&f.format, "format", "", "input format: jsonl or csv (default: from the extension)")
	fs.BoolVar(&f.dryRun, "dry-run", false, "validate and count only; enqueue nothing")
	fs.BoolVar(&f.skipInvalid, "skip-invalid", false, "enqueue the valid lines even when some are invalid")
	fs.StringVar(&f.report, "report", "", "write one JSON line per input line (line, key, outcome, error) to this file")
	fs.IntVar(&f.concurrency, "concurrency", 4, "how many batches (with --batch 1, lines) are enqueued at once")
	fs.IntVar(&f.batch, "batch", bulk.DefaultBatch, "how many lines one Redis round trip carries (1: a round trip per line)")
	fs.StringVar(&f.label, "label", "", "the batch's label (default: the file name)")
	fs.StringVar(&f.callbackURL, "callback-url", "", "POST the batch's progress here, signed, each time it completes (its host must be in CALLBACK_ALLOW_HOSTS)")
	fs.BoolVar(&f.wait, "wait", false, "then follow the batch until it is complete and list its dead letters by line (exit 4 if any)")
	fs.BoolVar(&f.requireServed, requireServedFlag, false, "refuse the whole input, with exit 5 and nothing enqueued, when no running worker serves one of its queues (default: enqueue and warn)")
	return cmd
}

func (a *app) bulk(ctx context.Context, name string, f bulkFlags) error {
	if path := a.getenv(cpuProfileEnv); path != "" {
		stop, err := startCPUProfile(path)
		if err != nil {
			return err
		}
		defer stop()
	}
	if a.getenv("GOGC") == "" {
		defer debug.SetGCPercent(debug.SetGCPercent(bulkGCPercent))
	}
	format, err := bulk.FormatFor(name, f.format)
	if err != nil {
		return usageErrorf("%v", err)
	}
	if f.concurrency < 1 {
		return usageErrorf("--concurrency must be at least 1, got %d", f.concurrency)
	}
	if f.batch < 1 {
		return usageErrorf("--batch must be at least 1, got %d", f.batch)
	}
	in, err := bulk.OpenInput(ctx, name, format, a.stdin)
	if err != nil {
		return err
	}
	defer in.Close()
	var rep *reportWriter
	if f.report != "" {
		if rep, err = newReportWriter(f.report); err != nil {
			return err
		}
		defer rep.close()
	}

	writeInvalid := rep != nil && (f.dryRun || !f.skipInvalid)
	var bar *progressbar.ProgressBar
	var unserved []string
	label := f.label
	if label == "" {
		label = in.Name
	}
	job := bulk.Job{
		Input: in, DryRun: f.dryRun, SkipInvalid: f.skipInvalid,
		Batch: &meetops.BatchSpec{Label: label, Origin: cliOrigin(), CallbackURL: f.callbackURL},
		OnInvalid: func(it bulk.Item) {
			fmt.Fprintf(a.stderr, "%s:%d: %s\n", termtext.Escape(in.Name), it.Line, termtext.Escape(it.Reason()))
			if writeInvalid {
				rep.write(bulk.Result{Line: it.Line, Outcome: bulk.Invalid, Error: it.Reason()})
			}
		},
		OnValidated: func(checked bulk.Summary) { bar = a.progressBar(int64(checked.Lines)) },
		CheckQueues: func(ctx context.Context, e bulk.Enqueuer, queues bulk.QueueSet) error {
			var err error
			unserved, err = a.checkBulkQueues(ctx, e.(*meetops.Client), in.Name, queues, f.requireServed)
			return err
		},
		Options: bulk.Options{
			Concurrency:        f.concurrency,
			Batch:              f.batch,
			RequireServedQueue: f.requireServed,
			OnResult: func(res bulk.Result) {
				rep.write(res)
				if bar != nil {
					_ = bar.Add(1)
				}
			},
		},
	}
	done, err := job.Run(ctx, func(ctx context.Context) (bulk.Enqueuer, error) { return a.connect(ctx) })
	if bar != nil {
		_ = bar.Exit()
	}
	var ve *bulk.ValidationError
	var he *bulk.HeaderError
	var tl *bulk.RecordTooLongError
	switch {
	case errors.As(err, &he):
		return &exitError{code: exitUsage, err: fmt.Errorf("%s:1: %s; nothing enqueued", in.Name, he.Msg)}
	case errors.As(err, &tl):
		return &exitError{code: exitUsage, err: fmt.Errorf("%s:%d: CSV record longer than %d bytes; nothing enqueued", in.Name, tl.Line, bulk.MaxLineBytes)}
	case errors.As(err, &ve) && errors.Is(err, context.Canceled):
		return &exitError{code: exitFailure, err: fmt.Errorf("%s: interrupted while validating line %d; nothing enqueued", in.Name, ve.Line+1)}
	case errors.As(err, &ve):
		return fmt.Errorf("%s: %w", in.Name, ve.Err)
	case errors.Is(err, meetops.ErrInvalid):
		return err // the batch's callback URL
	case errors.Is(err, bulk.ErrInvalidLines):
		return &exitError{code: exitUsage, err: fmt.Errorf("%s: %d invalid line%s; nothing enqueued (fix them, or pass --skip-invalid to enqueue the valid lines)",
			in.Name, done.Checked.Invalid, plural(done.Checked.Invalid))}
	case err != nil:
		return err
	}
	sum := bulkSummary{File: in.Name, Total: done.Checked.Lines, Valid: done.Checked.Lines - done.Checked.Invalid, Summary: done.Summary}
	if f.dryRun {
		sum.DryRun, sum.Complete = true, true
		sum.Lines, sum.Invalid = done.Checked.Lines, done.Checked.Invalid
		if err := a.printBulkSummary(sum); err != nil {
			return err
		}
		if done.Checked.Invalid > 0 && !f.skipInvalid {
			return &exitError{code: exitUsage}
		}
		return rep.close()
	}
	sum.Interrupted = ctx.Err() != nil && !done.Complete
	sum.BatchID = done.Batch.BatchID
	sum.UnservedQueues = unserved
	if err := a.printBulkSummary(sum); err != nil {
		return err
	}
	if err := rep.close(); err != nil {
		return err
	}
	if err := a.bulkOutcome(sum); err != nil || !f.wait {
		return err
	}
	return a.waitBatch(ctx, in.Name, sum.BatchID)
}

// checkBulkQueues checks the input's queues, once each, against those
// running workers serve, before anything is enqueued: it warns, once, about
// the ones no worker serves and returns them, or, with requireServed,
// refuses the input (exit 5).
func (a *app) checkBulkQueues(ctx context.Context, c *meetops.Client, name string, queues bulk.QueueSet, requireServed bool) ([]string, error) {
	check, err := c.CheckQueues(ctx, queues.Names...)
	switch {
	case err != nil && requireServed:
		return nil, fmt.Errorf("%s: --%s: %w; nothing enqueued", name, requireServedFlag, err)
	case err != nil:
		return nil, nil // the enqueues say whether Redis works
	}
	more := ""
	if queues.More {
		more = fmt.Sprintf(" (the input names more than %d queues; only the first %d were checked)", bulk.MaxCheckedQueues, bulk.MaxCheckedQueues)
	}
	if requireServed && len(check.Unserved) > 0 {
		return nil, &exitError{code: exitUnserved, err: fmt.Errorf("%s: %w; nothing enqueued (--%s)%s", name, check.Err(), requireServedFlag, more)}
	}
	if w := check.Warning(); w != "" {
		fmt.Fprintf(a.stderr, "enqueue: warning: %s%s\n", termtext.Escape(w), more)
	}
	return check.Unserved, nil
}

// bulkGCPercent is the garbage collector's target during a bulk run,
// unless GOGC says otherwise. The live heap is a few chunks of lines and
// batches in flight, a few MiB whatever the input size, so letting it grow
// fourfold between collections costs a few MiB and saves most of the
// collector's CPU, which a bulk run shares with a local Redis.
const bulkGCPercent = 400

// cpuProfileEnv names the file to write a CPU profile of a bulk run to,
// for profiling the real command end to end (go tool pprof FILE).
const cpuProfileEnv = "ENQUEUE_CPUPROFILE"

// startCPUProfile starts profiling into path; the returned func stops it
// and closes the file.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cpuProfileEnv, err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("%s: %w", cpuProfileEnv, err)
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}, nil
}

// bulkOutcome says how the run ended and returns its exit code.
func (a *app) bulkOutcome(s bulkSummary) error {
	rerun := "run the same command again to enqueue the rest (lines already enqueued count as duplicates)"
	switch {
	case s.Interrupted:
		return &exitError{code: exitFailure, err: fmt.Errorf("interrupted after %d of %d lines; %s", s.Lines, s.Total, rerun)}
	case !s.Complete:
		return &exitError{code: exitFailure, err: fmt.Errorf("stopped after %d of %d lines at a failed enqueue (%s); %s", s.Lines, s.Total, s.FirstFailure, rerun)}
	case s.Failed > 0:
		return &exitError{code: exitFailure, err: fmt.Errorf("%d enqueue%s failed, first: %s", s.Failed, plural(s.Failed), s.FirstFailure)}
	case s.KeyReused > 0:
		return &exitError{code: exitKeyReused, err: fmt.Errorf("%d line%s reused a key already taken by another operation", s.KeyReused, plural(s.KeyReused))}
	}
	return nil
}

func (a *app) printBulkSummary(s bulkSummary) error {
	if a.json() {
		return writeJSON(a.stdout, s)
	}
	if s.DryRun {
		t := newTable(a.stdout, "LINES", "VALID", "INVALID")
		t.row(fmt.Sprint(s.Total), fmt.Sprint(s.Valid), fmt.Sprint(s.Invalid))
		if err := t.flush(); err != nil {
			return err
		}
		_, err := fmt.Fprintln(a.stdout, "dry run: nothing enqueued")
		return err
	}
	t := newTable(a.stdout, "LINES", "ENQUEUED", "DUPLICATES", "INVALID", "FAILED", "KEY_REUSED")
	t.row(fmt.Sprintf("%d/%d", s.Lines, s.Total), fmt.Sprint(s.Enqueued), fmt.Sprint(s.Duplicates),
		fmt.Sprint(s.Invalid), fmt.Sprint(s.Failed), fmt.Sprint(s.KeyReused))
	if err := t.flush(); err != nil {
		return err
	}
	if s.BatchID != "" {
		_, err := fmt.Fprintf(a.stdout, "batch %s (enqueue batch status %s)\n", s.BatchID, s.BatchID)
		return err
	}
	return nil
}

// progressBar returns a progress bar on stderr when it is a terminal, and
// nil otherwise (then only the summary is printed).
func (a *app) progressBar(total int64) *progressbar.ProgressBar {
	if !a.isTerminal(a.stderr) {
		return nil
	}
	return progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(a.stderr),
		progressbar.OptionSetDescription("enqueue"),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("ops"),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)
}

// reportWriter writes the --report file. A nil *reportWriter writes
// nothing, so callers need not check.
type reportWriter struct {
	mu  sync.Mutex
	f   *os.File
	w   *bufio.Writer
	err error
}

func newReportWriter(path string) (*reportWriter, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	return &reportWriter{f: f, w: bufio.NewWriter(f)}, nil
}

func (r *reportWriter) write(res bulk.Result) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err == nil {
		r.err = writeJSON(r.w, res)
	}
}

// close flushes and closes the file once; later calls return the first
// result again.
func (r *reportWriter) close() error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return r.err
	}
	if err := r.w.Flush(); r.err == nil {
		r.err = err
	}
	if err := r.f.Close(); r.err == nil {
		r.err = err
	}
	r.f = nil
	if r.err != nil {
		r.err = fmt.Errorf("report: %w", r.err)
	}
	return r.err
}
