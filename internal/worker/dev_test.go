package worker

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/api/apitest"
	"github.com/meetops/meetops/internal/redisconf"
	"github.com/meetops/meetops/internal/redistest"
	"github.com/meetops/meetops/internal/syncbuf"
)

// The dev banner never prints a Redis password: with a REDIS_URL of its
// own it shows the URL redacted and no export line to copy it from.
func TestDevBannerHidesTheRedisPassword(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	cfg := Config{Redis: redisconf.Config{URL: "redis://user:s3cret-pw@127.0.0.1:6390/2"}}
	_, dev, err := StartDev(cfg, &out)
	require.NoError(t, err)
	t.Cleanup(dev.Close)
	require.NotContains(t, out.String(), "s3cret-pw")
	require.Contains(t, out.String(), "redis://user:xxxxx@127.0.0.1:6390/2")

	out.Reset()
	_, dev, err = StartDev(Config{}, &out)
	require.NoError(t, err)
	t.Cleanup(dev.Close)
	require.Contains(t, out.String(), "export REDIS_URL="+dev.RedisURL, "the embedded Redis has no password: its URL is printed to copy")
}

// worker -dev mounts the HTTP API: its banner prints a dev token and a
// curl line that works as pasted; the API's answers follow the OpenAPI
// document; its metrics are on the worker's /metrics; the worker's own
// paths keep their CSRF check and body limit, the API has its own.
func TestDevModeServesTheAPI(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	var out syncbuf.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	env := map[string]string{"REDIS_URL": redistest.URL(t), "HTTP_ADDR": addr, "LOG_FORMAT": "json"}
	go func() { done <- Main(ctx, []string{"-dev"}, func(k string) string { return env[k] }, &out) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(15 * time.Second):
			t.Error("dev worker did not stop")
		}
	})
	base := "http://" + addr
	require.Eventually(t, func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 15*time.Second, 20*time.Millisecond)

	banner := out.String()
	token := regexp.MustCompile(`Dev token:  (mo_\S+)`).FindStringSubmatch(banner)
	require.NotNil(t, token, banner)
	curlLine := regexp.MustCompile(`(?m)^    (curl .*/v1/operations)$`).FindStringSubmatch(banner)
	require.NotNil(t, curlLine, banner)
	require.Contains(t, curlLine[1], token[1])
	require.Contains(t, banner, "export API="+base+" TOKEN="+token[1]+" ADMIN_TOKEN="+token[1])

	if curl, err := exec.LookPath("curl"); err == nil || os.Getenv("MEETOPS_REQUIRE_CURL") == "1" {
		require.NoError(t, err, "curl")
		_ = curl
		sh, err := exec.LookPath("sh")
		require.NoError(t, err)
		got, err := exec.Command(sh, "-c", curlLine[1]).Output()
		require.NoError(t, err, "%s", got)
		require.JSONEq(t, `{"key":"dismiss:322599b02d2d9687eab31a5c938aded0","queue":"default","state":"pending","duplicate":false}`, string(got))
	} else {
		t.Log("curl not found: the banner's line is not run (MEETOPS_REQUIRE_CURL=1 makes that a failure)")
	}

	client := apitest.Load(t).Client(t)
	do := func(method, path, ctype, body string, hdr map[string]string) *http.Response {
		req, err := http.NewRequest(method, base+path, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+token[1])
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	// The dev token has scope admin; the dashboard's CSRF check does not
	// apply to the API (bearer tokens are never sent by a browser by
	// itself).
	require.Equal(t, http.StatusOK, do(http.MethodGet, "/v1/dead-letters", "", "", nil).StatusCode)
	crossSite := map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}
	require.Equal(t, http.StatusCreated, do(http.MethodPost, "/v1/operations", "application/json", `{"op":"disable","app_id":"demo-app-2"}`, crossSite).StatusCode)
	// The API's body limit, not the worker's 1 MiB: a 2 MiB batch (of
	// one operation and blank lines).
	batch := `{"op":"dismiss","app_id":"demo-app-bulk","room_id":"dev-1"}` + strings.Repeat("\n", 2<<20)
	require.Equal(t, http.StatusCreated, do(http.MethodPost, "/v1/batches", "application/x-ndjson", batch, nil).StatusCode)

	// The worker's own paths: CSRF checked, 1 MiB.
	req, _ := http.NewRequest(http.MethodPost, base+"/monitoring/api/queues", strings.NewReader("{}"))
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	req, _ = http.NewRequest(http.MethodPost, base+"/monitoring/api/queues", strings.NewReader(strings.Repeat("x", 2<<20)))
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)

	resp, err = http.Get(base + "/metrics")
	require.NoError(t, err)
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.True(t, strings.Contains(string(metrics), `meetops_api_operations_total{op="dismiss",outcome="enqueued"}`), "the API's metrics")
	require.True(t, strings.Contains(string(metrics), `meetops_ratelimit_limit_per_second`), "the worker's own metrics still there")
	require.False(t, strings.Contains(string(metrics), token[1]), "no token in the metrics")
	require.Contains(t, out.String(), `"component":"api"`, "the API logs through the worker's logger")
	require.Contains(t, out.String(), `"token":"dev"`)
}
