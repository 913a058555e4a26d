package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/cloudsim"
	"github.com/meetops/meetops/internal/httpguard/httpguardtest"
	"github.com/meetops/meetops/internal/syncbuf"
)

var listening = regexp.MustCompile(`listening on (http://\S+)`)

// start runs the command in the background and returns its URL, its output
// and a function that stops it and returns run's error.
func start(t *testing.T, args ...string) (string, *syncbuf.Buffer, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncbuf.Buffer{}
	errc := make(chan error, 1)
	go func() { errc <- run(ctx, args, out) }()

	deadline := time.Now().Add(5 * time.Second)
	for {
		if m := listening.FindStringSubmatch(out.String()); m != nil {
			stop := func() error {
				cancel()
				return <-errc
			}
			t.Cleanup(func() { cancel() })
			return m[1], out, stop
		}
		select {
		case err := <-errc:
			cancel()
			t.Fatalf("run returned early: %v\n%s", err, out)
		default:
		}
		require.False(t, time.Now().After(deadline), "no listening line: %s", out)
		time.Sleep(time.Millisecond) // polling interval
	}
}

func get(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if v != nil {
		require.NoError(t, json.Unmarshal(b, v), "body: %s", b)
	}
	return resp.StatusCode
}

func TestRun(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fixture := filepath.Join(dir, "fixture.json")
	faults := filepath.Join(dir, "faults.json")
	require.NoError(t, os.WriteFile(fixture, []byte(`{"apps": [{"app_id": "from-fixture"}]}`), 0o600))
	require.NoError(t, os.WriteFile(faults, []byte(`{"dismiss": {"script": ["503"]}}`), 0o600))

	url, out, stop := start(t, "-addr", "127.0.0.1:0", "-demo", "-fixture", fixture, "-faults", faults,
		"-access-token-ttl", "2m", "-seed", "42")
	creds := cloudsim.DemoCredentials()
	require.Contains(t, out.String(), "RTC_AK="+creds.AK)
	require.Contains(t, out.String(), "MEETING_ENDPOINT="+url)

	var state cloudsim.Fixture
	require.Equal(t, http.StatusOK, get(t, url+"/_sim/state", &state))
	var apps []string
	for _, a := range state.Apps {
		apps = append(apps, a.ID)
	}
	require.Contains(t, apps, cloudsim.DemoApp)
	require.Contains(t, apps, "from-fixture")

	var faultsInForce map[string]cloudsim.Fault
	get(t, url+"/_sim/faults", &faultsInForce)
	require.Equal(t, []string{"503"}, faultsInForce[cloudsim.OpDismiss].Script)

	var ttls cloudsim.TokenTTLs
	get(t, url+"/_sim/ttls", &ttls)
	require.Equal(t, 2*time.Minute, ttls.Access)

	require.NoError(t, stop())
	require.Contains(t, out.String(), "shutting down")
}

func TestRunReleasesHangingRequests(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	faults := filepath.Join(dir, "faults.json")
	require.NoError(t, os.WriteFile(faults, []byte(`{"conf_detail": {"rate": 1, "fail": "hang"}}`), 0o600))
	url, _, stop := start(t, "-addr", "127.0.0.1:0", "-faults", faults)

	done := make(chan struct{})
	go func() {
		defer close(done)
		resp, err := http.Get(url + "/v1/mmc/management/conferences/confDetail?conferenceID=1")
		if err == nil {
			resp.Body.Close()
		}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var st cloudsim.Stats
		get(t, url+"/_sim/stats", &st)
		if st.CountStatus(cloudsim.OpConfDetail, cloudsim.OutcomeHang) == 1 {
			break
		}
		require.False(t, time.Now().After(deadline), "the request never hung")
		time.Sleep(time.Millisecond) // polling interval
	}
	require.NoError(t, stop(), "shutdown does not wait for the hang")
	<-done
}

func TestRunErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	require.NoError(t, os.WriteFile(bad, []byte(`{"nope": {}}`), 0o600))
	for name, args := range map[string][]string{
		"unknown flag":    {"-nope"},
		"extra argument":  {"extra"},
		"missing fixture": {"-fixture", filepath.Join(dir, "missing.json")},
		"bad faults":      {"-faults", bad},
		"bad address":     {"-addr", "256.0.0.1:http"},
		"bad credentials": {"-credentials", bad},
	} {
		require.Error(t, run(context.Background(), args, io.Discard), name)
	}
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"-h"}, &out))
	require.Contains(t, out.String(), "-demo")
}

// -credentials replaces the demo credentials field by field.
func TestCredentialsFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "creds.json")
	require.NoError(t, os.WriteFile(path, []byte(`{"iam_password": "Pa<ss>&\"w\\ord", "sk": "other-sk"}`), 0o600))
	sim, err := newSim(config{credentials: path})
	require.NoError(t, err)
	defer sim.Close()
	cr := sim.Credentials()
	require.Equal(t, `Pa<ss>&"w\ord`, cr.IAMPassword)
	require.Equal(t, "other-sk", cr.SK)
	require.Equal(t, cloudsim.DemoCredentials().AK, cr.AK, "unset fields keep the demo ones")
}

// The simulator's listener has every meetops listener's timeouts and size
// limits: oversized headers get 431 (net/http's own cap is 1 MiB).
func TestRunServesWithTimeoutsAndLimits(t *testing.T) {
	t.Parallel()
	// run builds its server with newServer; start runs it.
	srv := newServer(cloudsim.New(cloudsim.Options{}))
	url, _, _ := start(t, "-addr", "127.0.0.1:0")
	httpguardtest.RequireGuarded(t, srv, url+"/_sim/stats")
}
