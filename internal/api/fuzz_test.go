package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/meetops/meetops"
	"github.com/meetops/meetops/internal/api"
	"github.com/meetops/meetops/internal/tasks"
)

// fakeProducer accepts every operation: the fuzz target looks at request
// decoding, not at Redis.
type fakeProducer struct{}

func (fakeProducer) Enqueue(_ context.Context, op meetops.Op, opts ...meetops.Option) (meetops.Info, error) {
	if err := meetops.Validate(op, opts...); err != nil {
		return meetops.Info{}, err
	}
	return meetops.Info{Key: tasks.Key(op), Queue: "default", State: meetops.StatePending}, nil
}

func (fakeProducer) EnqueueBatch(_ context.Context, reqs []meetops.Request, _ ...meetops.BatchOption) []meetops.BatchResult {
	out := make([]meetops.BatchResult, len(reqs))
	for i, r := range reqs {
		if err := meetops.Validate(r.Op, r.Opts...); err != nil {
			out[i].Err = err
			continue
		}
		out[i].Info = meetops.Info{Key: tasks.Key(r.Op), Queue: "default", State: meetops.StatePending}
	}
	return out
}

func (fakeProducer) CreateBatch(_ context.Context, spec meetops.BatchSpec) (string, error) {
	if spec.CallbackURL != "" {
		return "", &meetops.FieldError{Field: "callback_url", Msg: "not an allowed host"}
	}
	return "b_0123456789abcdef01234567", nil
}

func (fakeProducer) SealBatch(context.Context, string) (meetops.BatchProgress, error) {
	return meetops.BatchProgress{}, nil
}

func (fakeProducer) Batch(context.Context, string) (meetops.BatchProgress, error) {
	return meetops.BatchProgress{}, meetops.ErrNotFound
}

func (fakeProducer) Status(context.Context, string) (meetops.TaskStatus, error) {
	return meetops.TaskStatus{}, meetops.ErrNotFound
}

func (fakeProducer) DeadLetterPage(context.Context, meetops.DeadLetterFilter, string, int) (meetops.DeadLetterPage, error) {
	return meetops.DeadLetterPage{}, nil
}

func (fakeProducer) Requeue(_ context.Context, keys ...string) []meetops.KeyResult {
	return []meetops.KeyResult{{Key: keys[0], Err: meetops.ErrNotFound}}
}

func (fakeProducer) Purge(_ context.Context, keys ...string) []meetops.KeyResult {
	return []meetops.KeyResult{{Key: keys[0], Err: meetops.ErrNotFound}}
}

func (fakeProducer) Ping(context.Context) error { return nil }

var (
	fuzzOnce    sync.Once
	fuzzHandler http.Handler
	fuzzSecret  string
)

// fuzzServer is an API server on the fake producer, with one admin token.
func fuzzServer(t testing.TB) (http.Handler, string) {
	fuzzOnce.Do(func() {
		secret, tok, err := api.NewToken("fuzz", api.ScopeAdmin)
		if err != nil {
			panic(err)
		}
		s, err := api.New(api.Options{Producer: fakeProducer{}, Tokens: []api.Token{tok}})
		if err != nil {
			panic(err)
		}
		fuzzHandler, fuzzSecret = s.Handler(), secret
	})
	return fuzzHandler, fuzzSecret
}

// The routes the fuzz target sends to: kind % len(fuzzRoutes).
var fuzzRoutes = []struct{ method, path, ctype string }{
	{http.MethodPost, "/v1/operations", "application/json"},
	{http.MethodPost, "/v1/batches", "application/json"},
	{http.MethodPost, "/v1/batches", "application/x-ndjson"},
	{http.MethodGet, "/v1/dead-letters", ""},
	{http.MethodPost, "/v1/dead-letters/k/requeue", ""},
}

// FuzzDecode sends arbitrary bodies, Idempotency-Key headers and query
// strings to the API's decoding (seeds in testdata/fuzz/FuzzDecode; `make
// fuzz` explores further), on a producer that accepts every valid
// operation. Nothing panics, nothing is a 5xx: a request is accepted (2xx)
// or refused with a 4xx problem that names its type and status.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"op":"dismiss","app_id":"demo-app","room_id":"room-001"}`), uint8(0), "", "")
	f.Add([]byte(`{"operations":[{"op":"disable","app_id":"a"},{"op":"x"}],"skip_invalid":true}`), uint8(1), "", "")
	f.Add([]byte("{\"op\":\"disable\",\"app_id\":\"a\"}\n{bad\n"), uint8(2), "", "skip_invalid=true&label=x")
	f.Fuzz(func(t *testing.T, body []byte, kind uint8, idemKey, query string) {
		h, secret := fuzzServer(t)
		route := fuzzRoutes[int(kind)%len(fuzzRoutes)]
		target := route.path
		if query != "" {
			target += "?" + strings.NewReplacer("#", "%23", " ", "%20").Replace(query)
		}
		req, err := http.NewRequest(route.method, "http://api.test"+target, bytes.NewReader(body))
		if err != nil {
			t.Skip("not a request line net/http would send")
		}
		req.Header.Set("Authorization", "Bearer "+secret)
		if route.ctype != "" {
			req.Header.Set("Content-Type", route.ctype)
		}
		if idemKey != "" {
			req.Header.Set("Idempotency-Key", idemKey)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch code := rec.Code; {
		case code >= 500:
			t.Fatalf("%s %s %q: %d %s", route.method, target, body, code, rec.Body)
		case code >= 400:
			var p api.Problem
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
				t.Fatalf("%d without a problem body: %q", code, rec.Body)
			}
			if p.Status != code || p.Type == "" || p.Title == "" || p.Detail == "" {
				t.Fatalf("%d with a bad problem: %+v", code, p)
			}
			if rec.Header().Get("Content-Type") != "application/problem+json" {
				t.Fatalf("%d as %s", code, rec.Header().Get("Content-Type"))
			}
		case code >= 300 || code < 200:
			t.Fatalf("unexpected status %d", code)
		}
		if strings.Contains(rec.Body.String(), secret) {
			t.Fatalf("the token in an answer: %q", rec.Body)
		}
	})
}
