// Package bench is `make bench`: side-by-side measurements of meetops
// against plain asynq baselines in the same run, printed as one table of
// ratios and written as JSON. It starts its own redis-server (and, for the
// cluster scenario, its own Redis Cluster of three primaries with a
// replica each, compared with the single node) and an in-process
// simulator, and runs each worker as a process of its own (the bench
// binary re-executed in a role) so memory figures are per worker.
package bench

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Row is one line of the results table.
type Row struct {
	Scenario string  `json:"scenario"`
	Metric   string  `json:"metric"`
	Ours     float64 `json:"ours"`
	Baseline float64 `json:"baseline"`
	// Ratio is Ours/Baseline (for times: Baseline/Ours is not used; the
	// Goal says which way is better).
	Ratio float64 `json:"ratio"`
	Goal  string  `json:"goal"`
	Met   bool    `json:"met"`
	Note  string  `json:"note,omitempty"`
}

// Report is the JSON file's content.
type Report struct {
	Date    string `json:"date"`
	Machine string `json:"machine"`
	Go      string `json:"go"`
	Redis   string `json:"redis"`
	Rows    []Row  `json:"rows"`
}

// Run is the bench command. With -role it is one of its own worker
// processes instead.
func Run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	role := fs.String("role", "", "internal: run as a worker process (worker or bare)")
	jsonOut := fs.String("json", "bench-results.json", "write the results as JSON to this file")
	only := fs.String("only", "", "comma-separated scenarios to run (bulk,drain,latency50,batches,startlat,waiting,cluster,api,breaker); default all")
	scale := fs.Float64("scale", 1, "multiply task counts (0.1 for a quick run)")
	verbose := fs.Bool("v", false, "also print the Redis commands per task of each drain")
	count := fs.Int("count", 3, "run each scenario this many times and report the median run of each figure (1: once)")
	md := fs.String("md", "", "print the results file `FILE` (a -json output) as the README's Markdown table, and exit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *md != "" {
		return markdownFile(stdout, *md)
	}
	if *count < 1 {
		return fmt.Errorf("-count %d: want at least 1", *count)
	}
	switch *role {
	case "worker":
		return runWorkerRole(ctx)
	case "bare":
		return runBareRole(ctx)
	case "":
	default:
		return fmt.Errorf("unknown role %q", *role)
	}

	env, err := newEnv(ctx, stdout)
	if err != nil {
		return err
	}
	defer env.close()
	env.verbose = *verbose
	want := func(name string) bool {
		if *only == "" {
			return true
		}
		for _, s := range strings.Split(*only, ",") {
			if strings.TrimSpace(s) == name {
				return true
			}
		}
		return false
	}
	n := func(base int) int { return max(100, int(float64(base)**scale)) }

	start := time.Now()
	var rows []Row
	type scenario struct {
		name string
		run  func() ([]Row, error)
	}
	for _, s := range []scenario{
		{"bulk", func() ([]Row, error) { return env.bulkEnqueue(ctx, n(100_000)) }},
		{"drain", func() ([]Row, error) { return env.drain(ctx, n(50_000)) }},
		{"latency50", func() ([]Row, error) { return env.latency50(ctx, n(20_000)) }},
		{"batches", func() ([]Row, error) { return env.batches(ctx, n(20_000), n(100_000)) }},
		{"startlat", func() ([]Row, error) {
			return env.startLatency(ctx, 500, time.Duration(float64(20*time.Second)**scale))
		}},
		{"waiting", func() ([]Row, error) { return env.waiting(ctx, n(10_000), 10*time.Second) }},
		{"cluster", func() ([]Row, error) { return env.clusterCost(ctx, n(100_000), n(50_000)) }},
		{"api", func() ([]Row, error) {
			return env.apiBench(ctx, time.Duration(float64(3*time.Second)**scale), n(100_000))
		}},
		{"breaker", func() ([]Row, error) { return env.breakerCost(ctx, n(50_000)) }},
	} {
		if !want(s.name) {
			continue
		}
		var runs [][]Row
		for i := range *count {
			fmt.Fprintf(stdout, "== %s (run %d of %d) …\n", s.name, i+1, *count)
			t0 := time.Now()
			r, err := s.run()
			if err != nil {
				if len(rows) > 0 { // what was measured before the failure is still worth reading
					printTable(stdout, Report{Date: time.Now().UTC().Format(time.RFC3339), Machine: machine(), Go: runtime.Version(), Redis: env.redisVersion, Rows: rows})
				}
				return fmt.Errorf("%s: %w", s.name, err)
			}
			fmt.Fprintf(stdout, "   done in %s\n", time.Since(t0).Round(100*time.Millisecond))
			runs = append(runs, r)
		}
		rows = append(rows, medianRows(runs)...)
	}

	rep := Report{
		Date:    time.Now().UTC().Format(time.RFC3339),
		Machine: machine(),
		Go:      runtime.Version(),
		Redis:   env.redisVersion,
		Rows:    rows,
	}
	printTable(stdout, rep)
	fmt.Fprintf(stdout, "total %s\n", time.Since(start).Round(time.Second))
	b, _ := json.MarshalIndent(rep, "", "  ")
	if err := os.WriteFile(*jsonOut, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", *jsonOut, err)
	}
	fmt.Fprintf(stdout, "wrote %s\n", *jsonOut)
	return nil
}

func printTable(w io.Writer, rep Report) {
	fmt.Fprintf(w, "\nmeetops benchmarks — %s — %s — %s — redis %s\n\n", rep.Date, rep.Machine, rep.Go, rep.Redis)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight|tabwriter.Debug)
	fmt.Fprintln(tw, "scenario\tmetric\tours\tbaseline\tratio\tgoal\tmet\t")
	for _, r := range rep.Rows {
		met := "yes"
		if !r.Met {
			met = "NO"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.2f\t%s\t%s\t\n", r.Scenario, r.Metric, num(r.Ours), num(r.Baseline), r.Ratio, r.Goal, met)
	}
	tw.Flush()
	for _, r := range rep.Rows {
		if r.Note != "" {
			fmt.Fprintf(w, "  %s / %s: %s\n", r.Scenario, r.Metric, r.Note)
		}
	}
	fmt.Fprintln(w)
}

// medianRows folds the rows of repeated runs of one scenario: for each
// scenario and metric, the row of the run with the median ratio (so its
// figures, ratio and goal verdict stay one run's), with the spread of the
// ratio over the runs in its note.
func medianRows(runs [][]Row) []Row {
	if len(runs) == 1 {
		return runs[0]
	}
	type id struct{ scenario, metric string }
	var order []id
	byID := map[id][]Row{}
	for _, run := range runs {
		for _, r := range run {
			k := id{r.Scenario, r.Metric}
			if _, ok := byID[k]; !ok {
				order = append(order, k)
			}
			byID[k] = append(byID[k], r)
		}
	}
	out := make([]Row, 0, len(order))
	for _, k := range order {
		rs := byID[k]
		sort.SliceStable(rs, func(i, j int) bool { return rs[i].Ratio < rs[j].Ratio })
		m := rs[(len(rs)-1)/2]
		spread := fmt.Sprintf("median of %d runs, ratio %.2f–%.2f", len(rs), rs[0].Ratio, rs[len(rs)-1].Ratio)
		if m.Note == "" {
			m.Note = spread
		} else {
			m.Note = spread + "; " + m.Note
		}
		out = append(out, m)
	}
	return out
}

func num(f float64) string {
	switch {
	case f == 0:
		return "-"
	case f >= 100:
		return fmt.Sprintf("%.0f", f)
	case f >= 10:
		return fmt.Sprintf("%.1f", f)
	}
	return fmt.Sprintf("%.2f", f)
}

func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	return fmt.Sprintf("%d cores, %s, %s/%s", runtime.NumCPU(), model, runtime.GOOS, runtime.GOARCH)
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}
