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
	dir, err := os.MkdirTemp("", "meetops-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "enqueue")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/enqueue")
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build enqueue (run make bench from the repository root): %v\n%s", err, out)
	}

	file := filepath.Join(dir, "ops.jsonl")
	f, err := os.Create(file)
	if err != nil {
		return nil, err
	}
	w := bufio.NewWriter(f)
	for i := range n {
		fmt.Fprintf(w, `{"op":"dismiss","app_id":"%s","room_id":"bulk-%d"}`+"\n", cloudsim.DemoAppBulk, i)
	}
	if err := w.Flush(); err != nil {
		return nil, err
	}
	f.Close()

	// Baseline: the naive loop, tasks built beforehand (not timed).
	if err := e.reset(ctx); err != nil {
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
		if _, err := e.client.EnqueueContext(ctx, t); err != nil {
			return nil, err
		}
	}
	naive := time.Since(start)

	// Ours: the enqueue command on the file.
	if err := e.reset(ctx); err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, bin, "bulk", file, "--redis-url", e.redisURL)
	start = time.Now()
	out, err := cmd.CombinedOutput()
	ours := time.Since(start)
	if err != nil {
		return nil, fmt.Errorf("enqueue bulk: %v\n%s", err, out)
	}
	q, err := e.insp.GetQueueInfo("default")
	if err != nil {
		return nil, err
	}
	if q.Pending != n {
		return nil, fmt.Errorf("enqueue bulk left %d pending tasks, want %d:\n%s", q.Pending, n, out)
	}
	oursRate, naiveRate := float64(n)/ours.Seconds(), float64(n)/naive.Seconds()
	return []Row{{Scenario: fmt.Sprintf("1 bulk enqueue %d", n), Metric: "ops/s", Ours: oursRate, Baseline: naiveRate,
		Ratio: oursRate / naiveRate, Goal: "≥ 60000/s, ratio ≥ 4.5", Met: oursRate >= 60000 && oursRate/naiveRate >= 4.5,
		Note: fmt.Sprintf("ours: the enqueue binary, validate pass + enqueue pass, %s; baseline: one goroutine calling asynq Client.Enqueue on pre-built tasks, %s",
			ours.Round(time.Millisecond), naive.Round(time.Millisecond))}}, nil
}
