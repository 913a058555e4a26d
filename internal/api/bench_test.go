package api_test

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meetops/meetops"
	"github.com/meetops/meetops/internal/api"
	"github.com/meetops/meetops/internal/httpguard"
	"github.com/meetops/meetops/internal/redistest"
)

// BenchmarkEnqueue is POST /v1/operations on a real Redis, 16 clients at
// once, the access log written (to /dev/null): what make bench measures,
// in process, for profiling (-cpuprofile).
func BenchmarkEnqueue(b *testing.B) {
	producer, err := meetops.NewClient(redistest.URL(b))
	if err != nil {
		b.Fatal(err)
	}
	defer producer.Close()
	secret, tok, _ := api.NewToken("bench", api.ScopeAdmin)
	devnull, _ := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	defer devnull.Close()
	reg := prometheus.NewRegistry()
	s, err := api.New(api.Options{Producer: producer, Tokens: []api.Token{tok}, Logger: slog.New(slog.NewJSONHandler(devnull, nil)), Registerer: reg})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	srv := httptest.NewUnstartedServer(nil)
	srv.Config = httpguard.Server(s.Handler(), httpguard.Options{MaxBodyBytes: -1})
	srv.Start()
	defer srv.Close()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	var next atomic.Int64
	b.SetParallelism(8) // 16 on 2 cores
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			body := fmt.Appendf(nil, `{"op":"dismiss","app_id":"bench","room_id":"r-%d"}`, next.Add(1))
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/operations", bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+secret)
			req.Header.Set("Content-Type", "application/json")
			resp, err := hc.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}
