package reliability_test

import (
	"context"
	"os/exec"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/browsertest"
	"github.com/meetops/meetops/internal/proctest"
	"github.com/meetops/meetops/internal/tasks"
)

// dumpDOM loads url in headless Chromium, lets its scripts run, and returns
// the rendered DOM.
func dumpDOM(t *testing.T, browser, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, browser,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+t.TempDir(), "--virtual-time-budget=10000", "--dump-dom", url)
	out, err := cmd.Output()
	require.NoError(t, err, "chromium --dump-dom %s", url)
	return string(out)
}

// The dashboard a person opens shows the tasks with readable payloads and
// results: rendered by a real browser, not just the JSON API.
func TestDashboardShowsReadableTasksInABrowser(t *testing.T) {
	t.Parallel()
	browser := browsertest.Chromium(t)
	r := proctest.NewSharedRig(t)
	w := proctest.StartWorker(t, r.WorkerEnv("RATELIMIT_RTC_ROOMS=off"))

	keys := r.Enqueue(t, []tasks.Op{
		tasks.Dismiss{AppID: "demo-app", RoomID: "room-009"},
		tasks.Dismiss{AppID: "demo-app-missing", RoomID: "room-001"},
	}, tasks.TaskOptions{})
	done, dead := keys[0], keys[1]
	r.WaitSettled(t, 2, 30*time.Second)
	infos := r.Infos(t, keys)
	require.Equal(t, asynq.TaskStateCompleted, infos[done].State)
	require.Equal(t, asynq.TaskStateArchived, infos[dead].State)

	base := "http://" + w.HTTP + "/monitoring/queues/default?status="
	completed := dumpDOM(t, browser, base+"completed")
	require.Contains(t, completed, done)
	require.Contains(t, completed, `"room-009"`, "the payload is shown as readable JSON")
	require.Contains(t, completed, `"outcome"`, "the result is shown as readable JSON")
	archived := dumpDOM(t, browser, base+"archived")
	require.Contains(t, archived, dead)
	require.Contains(t, archived, `"demo-app-missing"`)
	require.Contains(t, archived, "dead letter (http_4xx)")
}
