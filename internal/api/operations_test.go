package api_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops"
	apidoc "github.com/meetops/meetops/api"
	"github.com/meetops/meetops/internal/redistest"
)

const dismiss = `{"op":"dismiss","app_id":"demo-app","room_id":"room-001"}`

// The key of dismiss, as tasks.Key derives it (README's examples use it).
const dismissKey = "dismiss:322599b02d2d9687eab31a5c938aded0"

func TestEnqueueThenDuplicateThenStatus(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	a := r.post("/v1/operations", dismiss)
	require.Equal(t, http.StatusCreated, a.status, "%s", a.body)
	// No worker runs in this test: the task waits, and the answer says so.
	require.JSONEq(t, `{"key":"`+dismissKey+`","queue":"default","state":"pending","duplicate":false,"unserved":true}`, string(a.body))
	require.Equal(t, "/v1/operations/"+url.PathEscape(dismissKey), a.header.Get("Location"))

	a = r.post("/v1/operations", "{\n  \"room_id\": \"room-001\",\n  \"op\": \"dismiss\",  \"app_id\": \"demo-app\"\n}\n")
	require.Equal(t, http.StatusOK, a.status, "%s", a.body)
	require.Equal(t, true, a.json(t)["duplicate"])

	a = r.get("/v1/operations/"+dismissKey, "svc")
	require.Equal(t, http.StatusOK, a.status, "%s", a.body)
	st := a.json(t)
	require.Equal(t, "svc", st["origin"], "the token's name is the origin")
	require.Equal(t, "dismiss", st["op"])
	require.Equal(t, "pending", st["state"])
	require.Equal(t, true, st["unserved"])
	require.Equal(t, map[string]any{"app_id": "demo-app", "room_id": "room-001"}, st["payload"])

	r.get("/v1/operations/nope", "svc").problem(t, http.StatusNotFound, "not-found")
}

func TestEnqueueOptionsAndKeys(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	a := r.post("/v1/operations", `{"op":"cancel","conference_id":"900000001","end_ongoing":true,"key":"off/4711#1?%","queue":"critical","process_at":"2099-01-06T09:00:00Z","max_retry":0}`)
	require.Equal(t, http.StatusCreated, a.status, "%s", a.body)
	require.JSONEq(t, `{"key":"off/4711#1?%","queue":"critical","state":"scheduled","duplicate":false,"unserved":true}`, string(a.body))
	// A key with / ? # and a space, percent-encoded in the path.
	a = r.get("/v1/operations/"+url.PathEscape("off/4711#1?%"), "svc")
	require.Equal(t, http.StatusOK, a.status, "%s", a.body)
	st := a.json(t)
	require.Equal(t, "critical", st["queue"])
	require.Equal(t, "2099-01-06T09:00:00Z", st["next_process_at"])
	require.EqualValues(t, 0, st["max_retry"])

	// Another operation under the same key: 409.
	p := r.post("/v1/operations", `{"op":"disable","app_id":"a","key":"off/4711#1?%","queue":"critical"}`).problem(t, http.StatusConflict, "key-reused")
	require.Contains(t, p.Detail, "off/4711#1?%")
	// The same key in another queue is another task.
	a = r.post("/v1/operations", `{"op":"disable","app_id":"a","key":"off/4711#1?%"}`)
	require.Equal(t, http.StatusCreated, a.status, "%s", a.body)
}

func TestIdempotencyKeyHeader(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	post := func(body, key string) answer {
		return r.do(req{method: http.MethodPost, path: "/v1/operations", token: "svc", ctype: "application/json", body: body,
			header: map[string]string{"Idempotency-Key": key}})
	}
	a := post(`{"op":"disable","app_id":"a"}`, "job-1")
	require.Equal(t, http.StatusCreated, a.status, "%s", a.body)
	require.Equal(t, "job-1", a.json(t)["key"])
	a = post(`{"op":"disable","app_id":"a","key":"job-1"}`, "job-1")
	require.Equal(t, http.StatusOK, a.status, "%s", a.body)
	require.Equal(t, true, a.json(t)["duplicate"])
	post(`{"op":"disable","app_id":"b"}`, "job-1").problem(t, http.StatusConflict, "key-reused")
	post(`{"op":"disable","app_id":"a","key":"job-2"}`, "job-1").problem(t, http.StatusBadRequest, "idempotency-key-mismatch")

	hr := r.do(req{method: http.MethodPost, path: "/v1/operations", token: "svc", ctype: "application/json", body: `{"op":"disable","app_id":"a"}`,
		header: map[string]string{"Idempotency-Key": "has space"}, invalid: true})
	p := hr.problem(t, http.StatusUnprocessableEntity, "invalid")
	require.Equal(t, "Idempotency-Key", p.Errors[0].Field)
}

func TestOpenAPIIsServedAsIs(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	a := r.get("/v1/openapi.yaml", "")
	require.Equal(t, http.StatusOK, a.status)
	require.Equal(t, "application/yaml", a.header.Get("Content-Type"))
	require.Equal(t, apidoc.OpenAPI, a.body)
}

// Every class of bad input to POST /v1/operations gets its 4xx, a
// problem naming what is wrong, and nothing is enqueued.
func TestEnqueueRefusesBadInput(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	big := `{"op":"dismiss","app_id":"a","room_id":"` + strings.Repeat("r", 70<<10) + `"}`
	for _, tc := range []struct {
		name        string
		ctype, body string
		reader      io.Reader
		path        string
		status      int
		typ         string
		fields      []string
		detail      string
		// beyond: the document forbids it in words its validator
		// cannot check (see apitest.Beyond).
		beyond bool
	}{
		{name: "malformed JSON", body: `{"op":"dismiss",`, status: 400, typ: "malformed", detail: "malformed JSON"},
		{name: "empty body", body: "", status: 400, typ: "malformed", detail: "empty"},
		{name: "blank body", body: " \n\t ", status: 400, typ: "malformed", detail: "empty"},
		{name: "trailing data", body: dismiss + `{"op":"disable","app_id":"a"}`, status: 400, typ: "malformed", beyond: true},
		{name: "trailing garbage", body: dismiss + " x", status: 400, typ: "malformed", beyond: true},
		{name: "an array", body: "[" + dismiss + "]", status: 400, typ: "malformed", detail: "not a JSON object"},
		{name: "not UTF-8", body: "{\"op\":\"disable\",\"app_id\":\"a\xff\"}", status: 400, typ: "malformed", detail: "UTF-8", beyond: true},
		{name: "unknown field", body: `{"op":"disable","app_id":"a","colour":"red"}`, status: 400, typ: "unknown-field", fields: []string{"colour"}},
		{name: "field of another op", body: `{"op":"disable","app_id":"a","room_id":"r"}`, status: 400, typ: "unknown-field", fields: []string{"room_id"}},
		{name: "missing field", body: `{"op":"dismiss","app_id":"a"}`, status: 422, typ: "invalid", fields: []string{"room_id"}},
		{name: "two bad fields", body: `{"op":"dismiss","app_id":"","room_id":".."}`, status: 422, typ: "invalid", fields: []string{"app_id", "room_id"}},
		{name: "wrong type", body: `{"op":"dismiss","app_id":5,"room_id":"r"}`, status: 422, typ: "invalid", fields: []string{"app_id"}},
		{name: "bad option", body: `{"op":"disable","app_id":"a","max_retry":-1,"process_at":"tomorrow"}`, status: 422, typ: "invalid", fields: []string{"max_retry", "process_at"}},
		{name: "too many participants", body: `{"op":"hangup","conference_id":"c","participant_ids":[` + strings.Repeat(`"p",`, 500) + `"q"]}`, status: 422, typ: "invalid", fields: []string{"participant_ids"}},
		{name: "unknown op", body: `{"op":"explode","app_id":"a"}`, status: 422, typ: "invalid", fields: []string{"op"}},
		{name: "no op", body: `{"app_id":"a"}`, status: 422, typ: "invalid", fields: []string{"op"}},
		{name: "no content type", ctype: "-", body: dismiss, status: 415, typ: "unsupported-media-type"},
		{name: "form content type (curl -d without -H)", ctype: "application/x-www-form-urlencoded", body: dismiss, status: 415, typ: "unsupported-media-type"},
		{name: "text", ctype: "text/plain", body: dismiss, status: 415, typ: "unsupported-media-type"},
		{name: "NDJSON to the single path", ctype: "application/x-ndjson", body: dismiss, status: 415, typ: "unsupported-media-type"},
		{name: "latin-1", ctype: "application/json; charset=iso-8859-1", body: dismiss, status: 415, typ: "unsupported-media-type", detail: "UTF-8", beyond: true},
		{name: "too large, declared", body: big, status: 413, typ: "too-large", detail: "64 KiB"},
		{name: "too large, chunked", reader: strings.NewReader(big), status: 413, typ: "too-large"},
		{name: "unknown query parameter", path: "?dry_run=1", body: dismiss, status: 400, typ: "invalid-parameter", fields: []string{"dry_run"}, beyond: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctype := tc.ctype
			switch ctype {
			case "":
				ctype = "application/json"
			case "-":
				ctype = ""
			}
			a := r.with(t).do(req{method: http.MethodPost, path: "/v1/operations" + tc.path, token: "svc", ctype: ctype,
				body: tc.body, reader: tc.reader, invalid: !tc.beyond, beyond: tc.beyond})
			p := a.problem(t, tc.status, tc.typ)
			require.Contains(t, p.Detail, tc.detail)
			var fields []string
			for _, e := range p.Errors {
				require.Nil(t, e.Index)
				require.NotEmpty(t, e.Message)
				fields = append(fields, e.Field)
			}
			for _, f := range tc.fields {
				require.Contains(t, fields, f, "%s", a.body)
			}
		})
	}
	n, err := r.rdb.DBSize(t.Context()).Result()
	require.NoError(t, err)
	require.Zero(t, n, "nothing was written")
}

// With a running worker serving the queue the answer carries no
// "unserved"; a queue nobody serves is flagged, as the CLI warns.
func TestEnqueueFlagsOnlyUnservedQueues(t *testing.T) {
	t.Parallel()
	url := redistest.URL(t)
	opt, err := asynq.ParseRedisURI(url)
	require.NoError(t, err)
	srv := asynq.NewServer(opt, asynq.Config{Queues: map[string]int{"default": 1}, LogLevel: asynq.FatalLevel})
	// The server only has to be running: its no-op handler completes what
	// it takes, which does not change the answers checked here.
	require.NoError(t, srv.Start(asynq.HandlerFunc(func(context.Context, *asynq.Task) error { return nil })))
	t.Cleanup(srv.Shutdown)
	// The short TTL makes the producer read the servers afresh.
	r := newRig(t, withRedis(url), withClientOptions(meetops.WithServedQueuesTTL(time.Millisecond)))
	require.Eventually(t, func() bool {
		a := r.post("/v1/operations", `{"op":"disable","app_id":"app-served"}`)
		_, flagged := a.json(t)["unserved"]
		return a.status < 300 && !flagged
	}, 10*time.Second, 20*time.Millisecond, "a served queue is not flagged")

	a := r.post("/v1/operations", `{"op":"disable","app_id":"app-elsewhere","queue":"nosuchqueue"}`)
	require.Equal(t, http.StatusCreated, a.status, "%s", a.body)
	require.Equal(t, true, a.json(t)["unserved"])
}
