package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops"
	"github.com/meetops/meetops/internal/api"
)

// ndjson builds n dismiss lines, room-<from>… .
func ndjson(from, n int) string {
	var b strings.Builder
	for i := from; i < from+n; i++ {
		fmt.Fprintf(&b, `{"op":"dismiss","app_id":"demo-app-bulk","room_id":"room-%d"}`+"\n", i)
	}
	return b.String()
}

func (r *rig) postNDJSON(query, body string) answer {
	r.t.Helper()
	return r.do(req{method: http.MethodPost, path: "/v1/batches" + query, token: "svc", ctype: "application/x-ndjson", body: body})
}

func TestBatchJSON(t *testing.T) {
	t.Parallel()
	r := newRig(t, withClientOptions(meetops.WithCallbackHosts("127.0.0.1")))
	body := `{"label":"offboarding","callback_url":"http://127.0.0.1:9/done","operations":[
		{"op":"dismiss","app_id":"a","room_id":"r1"},
		{"op":"disable","app_id":"a","key":"job-1"},
		{"op":"dismiss","app_id":"a","room_id":"r1"},
		{"op":"hangup","conference_id":"c","participant_ids":["p2","p1"]}]}`
	a := r.post("/v1/batches", body)
	require.Equal(t, http.StatusCreated, a.status, "%s", a.body)
	created := a.json(t)
	id := created["batch_id"].(string)
	require.Equal(t, map[string]any{"batch_id": id, "total": 4.0, "enqueued": 3.0, "duplicates": 1.0, "invalid": 0.0, "key_reused": 0.0}, created)
	require.Equal(t, "/v1/batches/"+id, a.header.Get("Location"))

	a = r.get("/v1/batches/"+id, "svc")
	require.Equal(t, http.StatusOK, a.status, "%s", a.body)
	prog := a.json(t)
	require.Equal(t, "offboarding", prog["label"])
	require.Equal(t, "svc", prog["origin"], "the token's name")
	require.EqualValues(t, 3, prog["total"], "an operation twice in a batch is one member")
	require.EqualValues(t, 3, prog["pending"])
	require.Equal(t, false, prog["complete"])
	require.Nil(t, prog["completed_at"])

	// Members are numbered by their place in the request.
	var members []meetops.BatchMember
	require.NoError(t, r.producer.BatchMembers(t.Context(), id, func(m meetops.BatchMember) error {
		members = append(members, m)
		return nil
	}))
	require.Len(t, members, 3)
	require.Equal(t, []int{0, 1, 3}, []int{members[0].Index, members[1].Index, members[2].Index}, "at its first place in the request")
	require.Equal(t, "job-1", members[1].Key)

	// The same operations again: a new batch, all duplicates, and a key
	// taken by another operation is counted, not an error.
	a = r.post("/v1/batches", `{"operations":[{"op":"dismiss","app_id":"a","room_id":"r1"},{"op":"disable","app_id":"b","key":"job-1"}]}`)
	require.Equal(t, http.StatusCreated, a.status, "%s", a.body)
	again := a.json(t)
	require.NotEqual(t, id, again["batch_id"])
	require.EqualValues(t, 1, again["duplicates"])
	require.EqualValues(t, 1, again["key_reused"])
	require.EqualValues(t, 0, again["enqueued"])

	// The origin of each operation is the token's name.
	st, err := r.producer.Status(t.Context(), "job-1")
	require.NoError(t, err)
	require.Equal(t, "svc", st.Origin)

	r.get("/v1/batches/b_0123456789abcdef01234567", "svc").problem(t, http.StatusNotFound, "not-found")
	r.get("/v1/batches/nope", "svc").problem(t, http.StatusNotFound, "not-found")
}

func TestBatchNDJSON(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	body := "\ufeff" + ndjson(0, 3) + "\n  \n" + ndjson(3, 2)
	a := r.postNDJSON("?label=nightly", body)
	require.Equal(t, http.StatusCreated, a.status, "%s", a.body)
	created := a.json(t)
	require.EqualValues(t, 5, created["total"])
	require.EqualValues(t, 5, created["enqueued"])
	prog := r.get("/v1/batches/"+created["batch_id"].(string), "svc").json(t)
	require.Equal(t, "nightly", prog["label"])

	a = r.postNDJSON("", body)
	require.Equal(t, http.StatusCreated, a.status, "%s", a.body)
	require.EqualValues(t, 5, a.json(t)["duplicates"])
}

// An invalid operation without skip_invalid: 422 listing every one by its
// index, nothing enqueued; with skip_invalid the valid ones go in.
func TestBatchInvalidOperations(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	lines := []string{
		`{"op":"dismiss","app_id":"a","room_id":"r0"}`,
		`{"op":"dismiss","app_id":"a"}`,
		`{"op":"disable","app_id":"a","colour":"red"}`,
		`not json`,
		`{"op":"explode"}`,
		`{"op":"disable","app_id":"ok"}`,
	}
	body := strings.Join(lines, "\n")
	a := r.do(req{method: http.MethodPost, path: "/v1/batches", token: "svc", ctype: "application/x-ndjson", body: body, invalid: true})
	p := a.problem(t, http.StatusUnprocessableEntity, "invalid")
	require.Contains(t, p.Detail, "4 of 6")
	got := map[int][]string{}
	for _, e := range p.Errors {
		require.NotNil(t, e.Index)
		got[*e.Index] = append(got[*e.Index], e.Field)
	}
	require.Equal(t, map[int][]string{1: {"room_id"}, 2: {"colour"}, 3: {""}, 4: {"op"}}, got)
	n, err := r.rdb.DBSize(t.Context()).Result()
	require.NoError(t, err)
	require.Zero(t, n, "nothing enqueued, no batch made")

	// The same as JSON: the indexes are the array's.
	js := `{"operations":[` + strings.Join([]string{lines[0], lines[1], lines[2], `"not an object"`, lines[4], lines[5]}, ",") + `]}`
	a = r.do(req{method: http.MethodPost, path: "/v1/batches", token: "svc", ctype: "application/json", body: js, invalid: true})
	p = a.problem(t, http.StatusUnprocessableEntity, "invalid")
	got = map[int][]string{}
	for _, e := range p.Errors {
		got[*e.Index] = append(got[*e.Index], e.Field)
	}
	require.Equal(t, map[int][]string{1: {"room_id"}, 2: {"colour"}, 3: {""}, 4: {"op"}}, got)

	a = r.do(req{method: http.MethodPost, path: "/v1/batches?skip_invalid=true", token: "svc", ctype: "application/x-ndjson", body: body, invalid: true})
	require.Equal(t, http.StatusCreated, a.status, "%s", a.body)
	created := a.json(t)
	require.EqualValues(t, 6, created["total"])
	require.EqualValues(t, 4, created["invalid"])
	require.EqualValues(t, 2, created["enqueued"])
	var members []meetops.BatchMember
	require.NoError(t, r.producer.BatchMembers(t.Context(), created["batch_id"].(string), func(m meetops.BatchMember) error {
		members = append(members, m)
		return nil
	}))
	require.Len(t, members, 2)
	require.Equal(t, []int{0, 5}, []int{members[0].Index, members[1].Index}, "members at their place in the request")
}

// Every class of bad batch request gets its 4xx problem and makes no batch.
func TestBatchRefusesBadRequests(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	for _, tc := range []struct {
		name, ctype, query, body string
		header                   map[string]string
		status                   int
		typ, field, detail       string
		beyond                   bool
	}{
		{name: "malformed JSON", body: `{"operations":[{"op":`, status: 400, typ: "malformed"},
		{name: "malformed JSON in an operation", body: `{"operations":[{"op":"disable",]}`, status: 400, typ: "malformed"},
		{name: "empty body", body: "", status: 400, typ: "malformed"},
		{name: "empty NDJSON body", ctype: "application/x-ndjson", body: "", status: 400, typ: "malformed"},
		{name: "trailing data", body: `{"operations":[]} {}`, status: 400, typ: "malformed", beyond: true},
		{name: "not an object", body: `[]`, status: 400, typ: "malformed"},
		{name: "field twice", body: `{"operations":[],"operations":[]}`, status: 400, typ: "malformed", beyond: true},
		{name: "unknown field", body: `{"operations":[],"colour":1}`, status: 400, typ: "unknown-field", field: "colour"},
		{name: "no operations field", body: `{"label":"x"}`, status: 422, typ: "invalid", field: "operations"},
		{name: "operations not an array", body: `{"operations":{}}`, status: 422, typ: "invalid", field: "operations"},
		{name: "no operations", body: `{"operations":[]}`, status: 422, typ: "invalid", field: "operations", beyond: true},
		{name: "only blank lines", ctype: "application/x-ndjson", body: "\n\n", status: 422, typ: "invalid", field: "operations", beyond: true},
		{name: "label of the wrong type", body: `{"operations":[],"label":5}`, status: 422, typ: "invalid", field: "label"},
		{name: "label too long", body: `{"operations":[` + dismiss + `],"label":"` + strings.Repeat("x", 257) + `"}`, status: 422, typ: "invalid", field: "label"},
		{name: "label with a control character", body: `{"operations":[` + dismiss + `],"label":"a\u001bb"}`, status: 422, typ: "invalid", field: "label", beyond: true},
		{name: "callback URL refused", body: `{"operations":[` + dismiss + `],"callback_url":"http://evil.example/x"}`, status: 422, typ: "invalid", field: "callback_url", beyond: true},
		{name: "skip_invalid not a boolean", ctype: "application/x-ndjson", query: "?skip_invalid=maybe", body: dismiss, status: 400, typ: "invalid-parameter", field: "skip_invalid"},
		{name: "unknown query parameter", ctype: "application/x-ndjson", query: "?dry_run=1", body: dismiss, status: 400, typ: "invalid-parameter", field: "dry_run", beyond: true},
		{name: "query parameters with a JSON body", query: "?label=x", body: `{"operations":[` + dismiss + `]}`, status: 400, typ: "invalid-parameter", field: "label", beyond: true},
		{name: "Idempotency-Key", header: map[string]string{"Idempotency-Key": "k"}, body: `{"operations":[` + dismiss + `]}`, status: 400, typ: "invalid-parameter", beyond: true},
		{name: "text", ctype: "text/plain", body: dismiss, status: 415, typ: "unsupported-media-type"},
		{name: "no content type", ctype: "-", body: dismiss, status: 415, typ: "unsupported-media-type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctype := tc.ctype
			switch ctype {
			case "":
				ctype = "application/json"
			case "-":
				ctype = ""
			}
			a := r.with(t).do(req{method: http.MethodPost, path: "/v1/batches" + tc.query, token: "svc", ctype: ctype, body: tc.body,
				header: tc.header, invalid: !tc.beyond, beyond: tc.beyond})
			p := a.problem(t, tc.status, tc.typ)
			require.Contains(t, p.Detail, tc.detail)
			if tc.field != "" {
				require.NotEmpty(t, p.Errors, "%s", a.body)
				require.Equal(t, tc.field, p.Errors[0].Field, "%s", a.body)
			}
		})
	}
	n, err := r.rdb.DBSize(t.Context()).Result()
	require.NoError(t, err)
	require.Zero(t, n, "no batch made")
}

// A batch body over 64 MiB is 413 whether its length is declared or not;
// more than 100,000 operations is 413 too; exactly 100,000 is a batch.
func TestBatchLimits(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	// Valid JSON, but one byte over the limit (which the document states
	// in words).
	huge := `{"operations":[` + dismiss + `]` + strings.Repeat(" ", api.MaxBatchBytes-len(dismiss)-16) + `}`
	require.Equal(t, api.MaxBatchBytes+1, len(huge))
	p := r.do(req{method: http.MethodPost, path: "/v1/batches", token: "svc", ctype: "application/json", body: huge, beyond: true}).
		problem(t, http.StatusRequestEntityTooLarge, "too-large")
	require.Contains(t, p.Detail, "64 MiB")
	r.do(req{method: http.MethodPost, path: "/v1/batches", token: "svc", ctype: "application/json", reader: strings.NewReader(huge), beyond: true}).
		problem(t, http.StatusRequestEntityTooLarge, "too-large")

	// 100,001 empty objects in JSON: the document's maxItems rejects
	// them; the server stops reading at the 100,001st.
	many := `{"operations":[` + strings.Repeat(`{},`, api.MaxBatchOperations) + `{}]}`
	p = r.do(req{method: http.MethodPost, path: "/v1/batches", token: "svc", ctype: "application/json", body: many, beyond: true}).
		problem(t, http.StatusRequestEntityTooLarge, "too-many-operations")
	require.Contains(t, p.Detail, "100000")
	p = r.do(req{method: http.MethodPost, path: "/v1/batches", token: "svc", ctype: "application/x-ndjson", body: ndjson(0, api.MaxBatchOperations+1), beyond: true}).
		problem(t, http.StatusRequestEntityTooLarge, "too-many-operations")

	// Exactly 100,000 is a batch. (Invalid ones, skipped, keep the test
	// from enqueueing 100,000 tasks: the count is what is tested here;
	// make bench enqueues 100,000 for real.)
	a := r.do(req{method: http.MethodPost, path: "/v1/batches?skip_invalid=true", token: "svc", ctype: "application/x-ndjson",
		body: strings.Repeat("{}\n", api.MaxBatchOperations-1) + dismiss, beyond: true})
	require.Equal(t, http.StatusCreated, a.status, "%.300s", a.body)
	created := a.json(t)
	require.EqualValues(t, api.MaxBatchOperations, created["total"])
	require.EqualValues(t, api.MaxBatchOperations-1, created["invalid"])
	require.EqualValues(t, 1, created["enqueued"])
	prog := r.get("/v1/batches/"+created["batch_id"].(string), "svc").json(t)
	require.EqualValues(t, 1, prog["total"])
}
