package api_test

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops"
	"github.com/meetops/meetops/internal/redistest"
)

// N identical requests at once make exactly one task: one 201, the others
// 200 duplicates. (The write refuses a second task with the same ID.)
func TestConcurrentIdenticalRequestsMakeOneTask(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	const n = 32
	statuses := make([]int, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			statuses[i] = r.post("/v1/operations", `{"op":"disable","app_id":"concurrent","key":"once"}`).status
		})
	}
	close(start)
	wg.Wait()
	created, dup := 0, 0
	for _, s := range statuses {
		switch s {
		case http.StatusCreated:
			created++
		case http.StatusOK:
			dup++
		default:
			t.Fatalf("status %d", s)
		}
	}
	require.Equal(t, 1, created, "%v", statuses)
	require.Equal(t, n-1, dup)
	// Batches racing over the same operations too: one task each.
	var bwg sync.WaitGroup
	enq := make([]float64, 8)
	for i := range enq {
		bwg.Go(func() { enq[i] = r.postNDJSON("", ndjson(0, 50)).json(t)["enqueued"].(float64) })
	}
	bwg.Wait()
	total := 0.0
	for _, e := range enq {
		total += e
	}
	require.EqualValues(t, 50, total, "%v", enq)
	q, err := r.rdb.Keys(t.Context(), "asynq:{default}:t:*").Result()
	require.NoError(t, err)
	require.Len(t, q, 51)
}

// Redis unreachable: 503 with Retry-After, /readyz 503; when Redis comes
// back the API answers again, without a restart.
func TestRedisDownThenBack(t *testing.T) {
	t.Parallel()
	srv := redistest.New(t, redistest.Options{})
	if srv.Embedded() {
		t.Skip("needs a real redis-server to kill and restart")
	}
	r := newRig(t, withRedis(srv.URL(0)), withClientOptions(meetops.WithDialTimeout(500*time.Millisecond)))
	require.Equal(t, http.StatusCreated, r.post("/v1/operations", dismiss).status)
	require.Equal(t, http.StatusOK, r.get("/readyz", "").status)

	srv.Kill()
	for _, a := range []answer{
		r.post("/v1/operations", `{"op":"disable","app_id":"while-down"}`),
		r.postNDJSON("", ndjson(0, 3)),
		r.get("/v1/operations/"+dismissKey, "svc"),
		r.get("/v1/batches/b_0123456789abcdef01234567", "svc"),
		r.get("/v1/dead-letters", "ops"),
		r.do(req{method: http.MethodPost, path: "/v1/dead-letters/k/requeue", token: "ops"}),
		r.do(req{method: http.MethodDelete, path: "/v1/dead-letters/k", token: "ops"}),
	} {
		p := a.problem(t, http.StatusServiceUnavailable, "unavailable")
		n, err := strconv.Atoi(a.header.Get("Retry-After"))
		require.NoError(t, err)
		require.GreaterOrEqual(t, n, 1)
		require.NotContains(t, p.Detail, srv.Addr, "no internal address in an answer")
	}
	a := r.get("/readyz", "")
	require.Equal(t, http.StatusServiceUnavailable, a.status)
	require.NotEmpty(t, a.header.Get("Retry-After"))
	require.True(t, strings.HasPrefix(string(a.body), "redis unavailable: "), "%s", a.body)

	// Back: within a few Retry-Afters, as a client retrying would see
	// it (go-redis redials a failed pool in the background).
	require.NoError(t, srv.StartAgain())
	require.Eventually(t, func() bool { return r.get("/readyz", "").status == http.StatusOK }, 10*time.Second, 50*time.Millisecond)
	for _, send := range []func() answer{
		func() answer { return r.post("/v1/operations", `{"op":"disable","app_id":"after"}`) },
		func() answer { return r.postNDJSON("", ndjson(0, 3)) },
	} {
		var a answer
		require.Eventually(t, func() bool {
			a = send()
			return a.status != http.StatusServiceUnavailable
		}, 10*time.Second, 200*time.Millisecond)
		require.Equal(t, http.StatusCreated, a.status, "%s", a.body)
	}
}

// /healthz, /readyz, /metrics: requests by route and status, latency,
// operations by op and outcome.
func TestOperatingEndpoints(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	require.Equal(t, "ok\n", string(r.get("/healthz", "").body))
	require.Equal(t, "ok\n", string(r.get("/readyz", "").body))
	r.post("/v1/operations", dismiss)
	r.post("/v1/operations", dismiss)
	r.do(req{method: http.MethodPost, path: "/v1/operations", token: "svc", ctype: "application/json", body: `{"op":"dismiss"}`, invalid: true})
	r.postNDJSON("", ndjson(0, 2))
	a := r.get("/metrics", "")
	require.Equal(t, http.StatusOK, a.status)
	m := string(a.body)
	for _, want := range []string{
		`meetops_api_requests_total{route="POST /v1/operations",status="201"} 1`,
		`meetops_api_requests_total{route="POST /v1/operations",status="200"} 1`,
		`meetops_api_requests_total{route="POST /v1/operations",status="422"} 1`,
		`meetops_api_requests_total{route="POST /v1/batches",status="201"} 1`,
		`meetops_api_request_duration_seconds_bucket{route="POST /v1/operations",le="+Inf"} 3`,
		`meetops_api_operations_total{op="dismiss",outcome="enqueued"} 3`,
		`meetops_api_operations_total{op="dismiss",outcome="duplicate"} 1`,
		`meetops_api_operations_total{op="dismiss",outcome="invalid"} 1`,
	} {
		require.Contains(t, m, want)
	}
}
