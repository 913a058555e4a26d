package worker

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops"
	"github.com/meetops/meetops/internal/redisconf"
	"github.com/meetops/meetops/internal/redistest"
	"github.com/meetops/meetops/internal/syncbuf"
)

// At start-up the worker logs, on one line, the queues it serves with their
// weights, in WORKER_QUEUES' syntax, highest weight first; producers see
// the same queues served.
func TestStartupLogsTheQueuesServed(t *testing.T) {
	t.Parallel()
	url := redistest.URL(t)
	var logs syncbuf.Buffer
	cfg := Config{
		Redis: redisconf.Config{URL: url}, HTTPAddr: "127.0.0.1:0", API: validAPI, ShutdownTimeout: time.Second,
		Queues: map[string]int{"low": 1, "critical": 6, "default": 3, "bulk": 3},
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w, err := New(ctx, cfg, zerolog.New(&logs))
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()

	c, err := meetops.NewClient(url)
	require.NoError(t, err)
	defer c.Close()
	var served []meetops.ServedQueue
	require.Eventually(t, func() bool {
		served, err = c.ServedQueues(context.Background())
		return err == nil && len(served) == 4
	}, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, []meetops.ServedQueue{{Name: "critical", Weight: 6, Workers: 1}, {Name: "bulk", Weight: 3, Workers: 1},
		{Name: "default", Weight: 3, Workers: 1}, {Name: "low", Weight: 1, Workers: 1}}, served)
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "worker started") }, 10*time.Second, 10*time.Millisecond)
	cancel()
	require.NoError(t, <-done)

	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &m), l)
		if msg, _ := m["message"].(string); strings.HasPrefix(msg, "serving queues") {
			lines = append(lines, m)
		}
	}
	require.Len(t, lines, 1, "one line:\n%s", logs.String())
	require.Equal(t, "info", lines[0]["level"])
	require.Equal(t, "critical=6,bulk=3,default=3,low=1", lines[0]["queues"])
	require.Equal(t, "serving queues critical=6, bulk=3, default=3, low=1 (WORKER_QUEUES); a task in any other queue waits for a worker that serves it",
		lines[0]["message"])
}
