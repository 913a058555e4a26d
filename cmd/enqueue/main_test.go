package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops"
	"github.com/meetops/meetops/internal/deadletter"
	"github.com/meetops/meetops/internal/redistest"
)

// batchID matches a batch ID.
var batchID = regexp.MustCompile(`b_[0-9a-f]{24}`)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

func TestMain(m *testing.M) {
	redis.SetLogger(quietLogger{})
	redistest.Main(m)
}

// testBundle is a private Redis database and direct access to it.
type testBundle struct {
	ctx    context.Context
	url    string
	rdb    *redis.Client
	client *meetops.Client
	insp   *asynq.Inspector
	dead   *deadletter.Store
	// deaths numbers the dead letters added, to give each its own time.
	deaths int
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	url := redistest.URL(t)
	ro, err := redis.ParseURL(url)
	require.NoError(t, err)
	rdb := redis.NewClient(ro)
	t.Cleanup(func() { _ = rdb.Close() })
	return &testBundle{
		ctx:    context.Background(),
		url:    url,
		rdb:    rdb,
		client: meetops.NewClientFromRedis(rdb),
		insp:   asynq.NewInspectorFromRedisClient(rdb),
		dead:   deadletter.New(rdb, deadletter.Options{}),
	}
}

// result is what one invocation did.
type result struct {
	args           []string
	code           int
	stdout, stderr string
	elapsed        time.Duration
}

// invocation configures a run beyond its arguments.
type invocation struct {
	ctx      context.Context
	stdin    string
	terminal bool // stdin and stderr are terminals
	env      map[string]string
}

// run runs enqueue with args against the bundle's database.
func (b *testBundle) run(t *testing.T, args ...string) result {
	t.Helper()
	return b.runWith(t, invocation{}, args...)
}

func (b *testBundle) runWith(t *testing.T, inv invocation, args ...string) result {
	t.Helper()
	return runEnqueue(t, inv, append([]string{"--redis-url", b.url}, args...)...)
}

// runEnqueue runs enqueue in-process with exactly args.
func runEnqueue(t *testing.T, inv invocation, args ...string) result {
	t.Helper()
	ctx := inv.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	var stdout, stderr bytes.Buffer
	a := &app{
		stdin:      strings.NewReader(inv.stdin),
		stdout:     &stdout,
		stderr:     &stderr,
		getenv:     func(k string) string { return inv.env[k] },
		isTerminal: func(any) bool { return inv.terminal },
	}
	start := time.Now()
	code := a.run(ctx, args)
	return result{args: args, code: code, stdout: stdout.String(), stderr: stderr.String(), elapsed: time.Since(start)}
}

// transcript renders a result for a golden file, without --redis-url.
func (r result) transcript() string {
	var args []string
	for i := 0; i < len(r.args); i++ {
		if r.args[i] == "--redis-url" {
			i++
			continue
		}
		args = append(args, r.args[i])
	}
	// Batch IDs are random: the transcript shows them masked.
	mask := func(s string) string { return batchID.ReplaceAllString(s, "b_<id>") }
	return fmt.Sprintf("$ enqueue %s\nexit %d\n--- stdout\n%s--- stderr\n%s", strings.Join(args, " "), r.code, mask(r.stdout), mask(r.stderr))
}

// golden compares the transcripts of results with testdata/golden/NAME.txt,
// rewriting it with -update.
func golden(t *testing.T, name string, results ...result) {
	t.Helper()
	var b strings.Builder
	for i, r := range results {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString(r.transcript())
	}
	path := filepath.Join("testdata", "golden", name+".txt")
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, []byte(b.String()), 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test -update to create the golden file")
	require.Equal(t, string(want), b.String(), "golden file %s (go test -update rewrites it)", path)
}

// requireCode checks the exit code and that stderr is at most lines lines
// and never a stack trace or a usage dump.
func requireCode(t *testing.T, r result, code int) {
	t.Helper()
	require.Equal(t, code, r.code, "exit code\nstdout: %s\nstderr: %s", r.stdout, r.stderr)
	require.NotContains(t, r.stderr, "goroutine ")
	require.NotContains(t, r.stderr, "Flags:", "no usage dump")
}

// unservedDefault is the warning of an enqueue into "default" while no
// worker runs, as in most tests here.
const unservedDefault = `enqueue: warning: no running worker serves queue "default" (no worker is running); its tasks wait until a worker serving it starts` + "\n"

// deadAt is when the test dead letters died.
var deadAt = time.Date(2030, 1, 6, 9, 30, 0, 0, time.UTC)

// addDeadLetter stores a dead letter as the worker would, with the given
// upstream answer.
func (b *testBundle) addDeadLetter(t *testing.T, key string, op meetops.Op, queue string, res map[string]any) {
	t.Helper()
	payload, err := json.Marshal(op)
	require.NoError(t, err)
	res["outcome"] = "dead_letter"
	result, err := json.Marshal(res)
	require.NoError(t, err)
	b.deaths++
	require.NoError(t, b.dead.Add(b.ctx, deadletter.Record{Key: key, Type: op.TaskType(), Queue: queue,
		Reason: res["reason"].(string), Payload: payload, Result: result, DeadAt: deadAt.Add(time.Duration(b.deaths) * time.Minute)}))
}

// archive enqueues op, archives it in asynq and records the dead letter,
// as a worker that dead-lettered it would; it returns the key.
func (b *testBundle) archive(t *testing.T, op meetops.Op, res map[string]any) string {
	t.Helper()
	info, err := b.client.Enqueue(b.ctx, op)
	require.NoError(t, err)
	require.NoError(t, b.insp.ArchiveTask(info.Queue, info.Key))
	b.addDeadLetter(t, info.Key, op, info.Queue, res)
	return info.Key
}

// dbSize counts the keys in the bundle's database.
func (b *testBundle) dbSize(t *testing.T) int64 {
	t.Helper()
	n, err := b.rdb.DBSize(b.ctx).Result()
	require.NoError(t, err)
	return n
}

// writeFile writes content to a file in a temporary directory.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
	return path
}
