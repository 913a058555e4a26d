package worker

import (
	"net/http"
	"testing"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"
)

// A hostile page cannot drive a writable dashboard: a cross-site POST
// (what a form or a no-cors fetch sends, with the basic-auth credentials
// the browser has cached) is refused with 403 and changes nothing. The
// same requests from the dashboard's own origin work.
func TestDashboardRefusesCrossSiteWrites(t *testing.T) {
	t.Parallel()
	b := setup(t, writable)
	b.schedule(t, "dismiss:sched-1", "dismiss:arch-1")
	require.NoError(t, b.w.insp.ArchiveTask("default", "dismiss:arch-1"))

	crossSite := []map[string]string{
		{"Origin": "https://evil.example", "Content-Type": "text/plain"}, // a browser without Sec-Fetch-Site
		{"Sec-Fetch-Site": "cross-site", "Content-Type": "text/plain"},
		{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example", "Content-Type": "text/plain"},
		{"Sec-Fetch-Site": "same-site", "Origin": "http://other.localhost", "Content-Type": "text/plain"},
	}
	writes := []request{
		{method: http.MethodPost, path: "/monitoring/api/queues/default/scheduled_tasks:archive_all"},
		{method: http.MethodPost, path: "/monitoring/api/queues/default/archived_tasks:batch_delete", body: `{"task_ids":["dismiss:arch-1"]}`},
		{method: http.MethodPost, path: "/monitoring/api/queues/default:pause"},
		{method: http.MethodDelete, path: "/monitoring/api/queues/default/archived_tasks:delete_all"},
	}
	for _, hdr := range crossSite {
		for _, w := range writes {
			w.header, w.auth = hdr, dashAuth
			got := b.do(t, w)
			require.Equal(t, http.StatusForbidden, got.code, "%s %s with %v: %s", w.method, w.path, hdr, got.body)
		}
	}
	require.Equal(t, asynq.TaskStateScheduled, b.state(t, "dismiss:sched-1"), "not archived")
	require.Equal(t, asynq.TaskStateArchived, b.state(t, "dismiss:arch-1"), "not deleted")
	require.False(t, b.paused(t), "not paused")

	// The dashboard's own pages (same-origin), and clients that are not a
	// browser (no Origin, no Sec-Fetch-Site), still write.
	sameOrigin := map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": b.base, "Content-Type": "application/json"}
	got := b.do(t, request{method: http.MethodPost, path: "/monitoring/api/queues/default:pause", header: sameOrigin, auth: dashAuth})
	require.Equal(t, http.StatusNoContent, got.code, got.body)
	require.True(t, b.paused(t))
	got = b.do(t, request{method: http.MethodPost, path: "/monitoring/api/queues/default/archived_tasks:batch_delete",
		header: map[string]string{"Origin": b.base}, body: `{"task_ids":["dismiss:arch-1"]}`, auth: dashAuth})
	require.Equal(t, http.StatusOK, got.code, got.body)
	got = b.do(t, request{method: http.MethodPost, path: "/monitoring/api/queues/default/scheduled_tasks:archive_all", auth: dashAuth})
	require.Equal(t, http.StatusOK, got.code, got.body)
	require.Equal(t, asynq.TaskStateArchived, b.state(t, "dismiss:sched-1"))
	_, err := b.w.insp.GetTaskInfo("default", "dismiss:arch-1")
	require.ErrorIs(t, err, asynq.ErrTaskNotFound)
}
