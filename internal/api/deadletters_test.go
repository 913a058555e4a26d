package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops"
	"github.com/meetops/meetops/internal/deadletter"
)

// addDeadLetter records op under key as a dead letter, as the worker does.
func (r *rig) addDeadLetter(key string, op meetops.Op, reason string, at time.Time) {
	r.t.Helper()
	payload, err := json.Marshal(op)
	require.NoError(r.t, err)
	result := fmt.Sprintf(`{"outcome":"dead_letter","reason":%q,"status":404,"error_code":"RTC.00001003","error_msg":"room not found","request_id":"req-1","attempts":1}`, reason)
	require.NoError(r.t, deadletter.New(r.rdb, deadletter.Options{}).Add(r.t.Context(), deadletter.Record{
		Key: key, Type: op.TaskType(), Queue: "default", Reason: reason, Payload: payload, Result: json.RawMessage(result), DeadAt: at}))
}

func TestDeadLetters(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	at := time.Date(2030, 1, 6, 9, 30, 0, 0, time.UTC)
	var keys []string
	for i := range 5 {
		key := fmt.Sprintf("dismiss:dl/%d", i)
		r.addDeadLetter(key, meetops.Dismiss{AppID: "a", RoomID: fmt.Sprint(i)}, meetops.ReasonHTTP4xx, at.Add(time.Duration(i)*time.Second))
		keys = append(keys, key)
	}
	r.addDeadLetter("disable:x", meetops.Disable{AppID: "a"}, meetops.ReasonAuth, at)

	// Pages of two, filtered.
	var got []string
	cursor := ""
	for range 5 {
		path := "/v1/dead-letters?op=dismiss&reason=http_4xx&limit=2"
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		a := r.get(path, "ops")
		require.Equal(t, http.StatusOK, a.status, "%s", a.body)
		var page struct {
			Items []struct {
				Key, Op, Reason string
			} `json:"items"`
			Next *string `json:"next_cursor"`
		}
		require.NoError(t, json.Unmarshal(a.body, &page))
		for _, d := range page.Items {
			got = append(got, d.Key)
		}
		if page.Next == nil {
			break
		}
		cursor = *page.Next
	}
	require.Equal(t, keys, got)

	a := r.get("/v1/dead-letters", "ops")
	require.Equal(t, http.StatusOK, a.status)
	all := a.json(t)
	require.Len(t, all["items"], 6)
	require.Nil(t, all["next_cursor"])
	first := all["items"].([]any)[0].(map[string]any)
	require.Equal(t, "disable:x", first["key"])
	require.Equal(t, "disable", first["op"], "the CLI name")
	require.Equal(t, "auth", first["reason"])
	require.EqualValues(t, 404, first["status"])

	empty := r.get("/v1/dead-letters?reason=retries_exhausted", "ops").json(t)
	require.Equal(t, []any{}, empty["items"])

	for _, tc := range []struct{ query, field string }{
		{"?op=explode", "op"},
		{"?reason=boredom", "reason"},
		{"?limit=0", "limit"},
		{"?limit=1001", "limit"},
		{"?limit=ten", "limit"},
		{"?cursor=nope", "cursor"},
		{"?colour=red", "colour"},
		{"?op=dismiss&op=disable", "op"},
	} {
		// The document's enums and bounds forbid most of these; an
		// opaque cursor, an unknown or repeated parameter only in words.
		beyond := tc.field == "cursor" || tc.field == "colour" || tc.query == "?op=dismiss&op=disable"
		p := r.do(req{method: http.MethodGet, path: "/v1/dead-letters" + tc.query, token: "ops", invalid: !beyond, beyond: beyond}).
			problem(t, http.StatusBadRequest, "invalid-parameter")
		require.Equal(t, tc.field, p.Errors[0].Field, tc.query)
	}

	// Requeue one, purge another; then both are gone from the list.
	a = r.do(req{method: http.MethodPost, path: "/v1/dead-letters/" + url.PathEscape(keys[0]) + "/requeue", token: "ops"})
	require.Equal(t, http.StatusOK, a.status, "%s", a.body)
	require.JSONEq(t, `{"key":"dismiss:dl/0","queue":"default","state":"pending","duplicate":false,"unserved":true}`, string(a.body))
	a = r.do(req{method: http.MethodDelete, path: "/v1/dead-letters/" + url.PathEscape(keys[1]), token: "ops"})
	require.Equal(t, http.StatusNoContent, a.status, "%s", a.body)
	require.Empty(t, a.body)
	require.Len(t, r.get("/v1/dead-letters", "ops").json(t)["items"], 4)
	st, err := r.producer.Status(t.Context(), keys[0])
	require.NoError(t, err)
	require.Equal(t, meetops.StatePending, st.State)

	r.do(req{method: http.MethodPost, path: "/v1/dead-letters/nope/requeue", token: "ops"}).problem(t, http.StatusNotFound, "not-found")
	r.do(req{method: http.MethodDelete, path: "/v1/dead-letters/nope", token: "ops"}).problem(t, http.StatusNotFound, "not-found")
	r.do(req{method: http.MethodDelete, path: "/v1/dead-letters/" + url.PathEscape(keys[2]), token: "svc"}).problem(t, http.StatusForbidden, "forbidden")
	r.do(req{method: http.MethodPost, path: "/v1/dead-letters/" + url.PathEscape(keys[2]) + "/requeue", token: "ops",
		ctype: "application/json", body: "{}", invalid: true}).problem(t, http.StatusBadRequest, "malformed")
}
