package bench

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/hibiken/asynq"

	"github.com/meetops/meetops/internal/cloudsim"
	"github.com/meetops/meetops/internal/tasks"
)

// bulkEnqueue is scenario 1: n operations from a JSONL file through the
// real `enqueue bulk` command (a process: parse, validate the whole file,
// key, enqueue) vs a naive single-goroutine asynq.Client.Enqueue loop over
// pre-built tasks.
func (e *env) bulkEnqueue(ctx context.Context, n int) ([]Row, error) {
	s := e.single
	// Baseline: the naive loop, tasks built beforehand (not timed).
	if err := e.reset(ctx, s); err != nil {
		return nil, err
	}
	built := make([]*asynq.Task, n)
	for i := range n {
		p, err := tasks.Prepare(tasks.Dismiss{AppID: cloudsim.DemoAppBulk, RoomID: fmt.Sprintf("bulk-%d", i)}, tasks.TaskOptions{})
		if err != nil {
			return nil, err
		}
		built[i] = p.Task
	}
	start := time.Now()
	for _, t := range built {
		if _, err := s.client.EnqueueContext(ctx, t); err != nil {
			return nil, err
		}
	}
	naive := time.Since(start)

	// Ours: the enqueue command on the file.
	ours, err := e.runBulk(ctx, s, n)
	if err != nil {
		return nil, err
	}
	e.singleBulk[n] = ours
	oursRate, naiveRate := float64(n)/ours.Seconds(), float64(n)/naive.Seconds()
	return []Row{{Scenario: fmt.Sprintf("1 bulk enqueue %d", n), Metric: "ops/s", Ours: oursRate, Baseline: naiveRate,
		Ratio: oursRate / naiveRate, Goal: "≥ 60000/s, ratio ≥ 4.5", Met: oursRate >= 60000 && oursRate/naiveRate >= 4.5,
		Note: fmt.Sprintf("ours: the enqueue binary, validate pass + enqueue pass, %s; baseline: one goroutine calling asynq Client.Enqueue on pre-built tasks, %s",
			ours.Round(time.Millisecond), naive.Round(time.Millisecond))}}, nil
}

// runBulk empties s, runs `enqueue bulk` on a file of n dismissals against
// it, checks that n tasks are pending and returns the command's wall time.
func (e *env) runBulk(ctx context.Context, s *store, n int) (time.Duration, error) {
	file, err := e.bulkFile(ctx, n)
	if err != nil {
		return 0, err
	}
	if err := e.reset(ctx, s); err != nil {
		return 0, err
	}
	cmd := exec.CommandContext(ctx, e.enqueueBin, append([]string{"bulk", file}, s.cliArgs...)...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	elapsed := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("enqueue bulk on the %s: %v\n%s", s.name, err, out)
	}
	q, err := s.insp.GetQueueInfo("default")
	if err != nil {
		return 0, err
	}
	if q.Pending != n {
		return 0, fmt.Errorf("enqueue bulk left %d pending tasks on the %s, want %d:\n%s", q.Pending, s.name, n, out)
	}
	return elapsed, nil
}

// bulkFile returns a JSONL file of n dismissals, building the enqueue
// command (into the bench's temporary directory) on first use.
func (e *env) bulkFile(ctx context.Context, n int) (string, error) {
	if file, ok := e.bulkFiles[n]; ok {
		return file, nil
	}
	if e.tmp == "" {
		dir, err := os.MkdirTemp("", "meetops-bench-")
		if err != nil {
			return "", err
		}
		e.tmp = dir
		bin := filepath.Join(dir, "enqueue")
		build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/enqueue")
		if out, err := build.CombinedOutput(); err != nil {
			return "", fmt.Errorf("build enqueue (run make bench from the repository root): %v\n%s", err, out)
		}
		e.enqueueBin = bin
	}
	file := filepath.Join(e.tmp, fmt.Sprintf("ops-%d.jsonl", n))
	f, err := os.Create(file)
	if err != nil {
		return "", err
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	for i := range n {
		fmt.Fprintf(w, `{"op":"dismiss","app_id":"%s","room_id":"bulk-%d"}`+"\n", cloudsim.DemoAppBulk, i)
	}
	if err := w.Flush(); err != nil {
		return "", err
	}
	e.bulkFiles[n] = file
	return file, f.Close()
}
