package cloudsim

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meetops/meetops/internal/apiclient"
)

// benchServer serves a demo simulator on the real clock and returns a
// keep-alive client sized for the parallel benchmark goroutines.
func benchServer(b *testing.B) (*Sim, *httptest.Server, *http.Client) {
	b.Helper()
	sim := New(Options{})
	sim.Demo()
	srv := httptest.NewServer(sim)
	b.Cleanup(func() {
		sim.Close()
		srv.Close()
	})
	tr := srv.Client().Transport.(*http.Transport).Clone()
	tr.MaxIdleConns = 256
	tr.MaxIdleConnsPerHost = 256
	return sim, srv, &http.Client{Transport: tr}
}

// runParallel sends requests built by newReq from parallel goroutines and
// reports the throughput as req/s.
func runParallel(b *testing.B, client *http.Client, want int, newReq func(i int64) *http.Request) {
	b.Helper()
	var n atomic.Int64
	b.SetParallelism(8)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Do(newReq(n.Add(1)))
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != want {
				b.Errorf("status %d, want %d", resp.StatusCode, want)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}

func newBenchRequest(method, url string) *http.Request {
	req, err := http.NewRequestWithContext(context.Background(), method, url, nil)
	if err != nil {
		panic(err)
	}
	return req
}

// BenchmarkDismiss dismisses distinct rooms of an AutoRooms app with an IAM
// token.
func BenchmarkDismiss(b *testing.B) {
	sim, srv, client := benchServer(b)
	sim.mu.Lock()
	tok, _, _ := sim.issueIAMLocked()
	sim.mu.Unlock()
	runParallel(b, client, http.StatusAccepted, func(i int64) *http.Request {
		req := newBenchRequest(http.MethodPost, fmt.Sprintf("%s/v2/apps/%s/rooms/room-%d/dismiss", srv.URL, DemoAppBulk, i))
		req.Header.Set("X-Auth-Token", tok)
		return req
	})
}

// BenchmarkDismissSigned is BenchmarkDismiss with AK/SK signatures (signing
// on the client side is included).
func BenchmarkDismissSigned(b *testing.B) {
	sim, srv, client := benchServer(b)
	creds := sim.Credentials()
	signer := apiclient.Signer{AK: creds.AK, SK: creds.SK}
	runParallel(b, client, http.StatusAccepted, func(i int64) *http.Request {
		req := newBenchRequest(http.MethodPost, fmt.Sprintf("%s/v2/apps/%s/rooms/room-%d/dismiss", srv.URL, DemoAppBulk, i))
		req.Header.Set("X-Project-Id", creds.ProjectID)
		if err := signer.Sign(req, nil, time.Now()); err != nil {
			panic(err)
		}
		return req
	})
}

// BenchmarkConfDetail reads a conference with an access token (a JSON
// answer).
func BenchmarkConfDetail(b *testing.B) {
	sim, srv, client := benchServer(b)
	sim.mu.Lock()
	tok, _ := sim.issueAccessLocked("bench")
	sim.mu.Unlock()
	url := srv.URL + "/v1/mmc/management/conferences/confDetail?conferenceID=" + DemoConfOngoing
	runParallel(b, client, http.StatusOK, func(int64) *http.Request {
		req := newBenchRequest(http.MethodGet, url)
		req.Header.Set("X-Access-Token", tok)
		return req
	})
}
