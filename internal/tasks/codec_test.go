package tasks_test

import (
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/tasks"
)

func TestDecodeRejectsBadPayloadsNamingTheField(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 129)
	many := func(n int) string {
		ids := make([]string, n)
		for i := range ids {
			ids[i] = `"p` + strings.Repeat("0", 3) + string(rune('a'+i%26)) + `"`
		}
		return "[" + strings.Join(ids, ",") + "]"
	}
	tests := []struct {
		name, typ, payload, field string
	}{
		{"missing room", tasks.TypeDismiss, `{"app_id":"a"}`, "room_id"},
		{"empty app", tasks.TypeDismiss, `{"app_id":"","room_id":"r"}`, "app_id"},
		{"too long", tasks.TypeDisable, `{"app_id":"` + long + `"}`, "app_id"},
		{"control char", tasks.TypeDisable, `{"app_id":"a\u0007b"}`, "app_id"},
		{"dot segment", tasks.TypeDisable, `{"app_id":".."}`, "app_id"},
		{"unknown field", tasks.TypeDisable, `{"app_id":"a","secret":"x"}`, "secret"},
		{"wrong type", tasks.TypeDisable, `{"app_id":7}`, "app_id"},
		{"bad bool", tasks.TypeCancel, `{"conference_id":"c","end_ongoing":"yes"}`, "end_ongoing"},
		{"bad user uuid", tasks.TypeCancel, `{"conference_id":"c","user_uuid":"\u0000"}`, "user_uuid"},
		{"empty participant list", tasks.TypeHangUp, `{"conference_id":"c","participant_ids":[]}`, "participant_ids"},
		{"null participant list", tasks.TypeHangUp, `{"conference_id":"c","participant_ids":null}`, "participant_ids"},
		{"too many participants", tasks.TypeHangUp, `{"conference_id":"c","participant_ids":` + many(501) + `}`, "participant_ids"},
		{"bad participant", tasks.TypeHangUp, `{"conference_id":"c","participant_ids":["ok",""]}`, "participant_ids[1]"},
		{"too many vmrs", tasks.TypeReclaim, `{"account":"a","vmr_ids":` + many(101) + `}`, "vmr_ids"},
		{"bad account type", tasks.TypeReclaim, `{"account":"a","account_type":2,"vmr_ids":["v"]}`, "account_type"},
		{"trailing data", tasks.TypeDisable, `{"app_id":"a"} {}`, ""},
		{"not json", tasks.TypeDisable, `app_id=a`, ""},
		{"empty", tasks.TypeDisable, ``, ""},
		{"unknown type", "rtc:room:explode", `{}`, ""},
		{"oversized", tasks.TypeDisable, `{"app_id":"` + strings.Repeat("a", tasks.MaxPayloadBytes) + `"}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := tasks.Decode(tt.typ, []byte(tt.payload))
			require.Error(t, err)
			require.ErrorIs(t, err, tasks.ErrInvalid)
			var fe *tasks.FieldError
			require.True(t, errors.As(err, &fe))
			require.Equal(t, tt.field, fe.Field, "error: %v", err)
			if tt.field != "" {
				require.Contains(t, err.Error(), tt.field)
			}
		})
	}
}

func TestDecodeReportsEveryBadField(t *testing.T) {
	t.Parallel()
	_, err := tasks.Decode(tasks.TypeDismiss, []byte(`{"app_id":"","room_id":""}`))
	require.ErrorContains(t, err, "app_id")
	require.ErrorContains(t, err, "room_id")
}

func TestDecodeAcceptsHostileButValidIDs(t *testing.T) {
	t.Parallel()
	for _, id := range []string{"../x", "a/b", "a?b=c", "%2F", "房间-1", "a b", strings.Repeat("é", 64)} {
		op, err := tasks.Decode(tasks.TypeDismiss, mustJSON(t, map[string]string{"app_id": id, "room_id": id}))
		require.NoError(t, err, id)
		require.Equal(t, tasks.Dismiss{AppID: id, RoomID: id}, op)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

func TestKeyIsStableAndCanonical(t *testing.T) {
	t.Parallel()
	keyRe := regexp.MustCompile(`^(dismiss|disable|cancel|hangup|reclaim):[0-9a-f]{32}$`)
	a := tasks.HangUp{ConferenceID: "c", ParticipantIDs: []string{"p2", "p1", "p2"}}
	b := tasks.HangUp{ConferenceID: "c", ParticipantIDs: []string{"p1", "p2"}}
	require.Equal(t, tasks.Key(a), tasks.Key(b), "order and duplicates must not change the key")
	require.Regexp(t, keyRe, tasks.Key(a))
	require.NotEqual(t, tasks.Key(a), tasks.Key(tasks.HangUp{ConferenceID: "c", ParticipantIDs: []string{"p1"}}))

	// Optional fields at their default are left out of the canonical form.
	require.Equal(t, `{"conference_id":"c"}`, string(tasks.Canonical(tasks.Cancel{ConferenceID: "c"})))
	require.Equal(t, `{"conference_id":"c","end_ongoing":true,"user_uuid":"u"}`,
		string(tasks.Canonical(tasks.Cancel{ConferenceID: "c", UserUUID: "u", EndOngoing: true})))
	require.Equal(t, `{"account":"a","vmr_ids":["v1","v2"]}`,
		string(tasks.Canonical(tasks.Reclaim{Account: "a", VMRIDs: []string{"v2", "v1", "v1"}})))
	require.Equal(t, `{"account":"a","account_type":1,"vmr_ids":["v"]}`,
		string(tasks.Canonical(tasks.Reclaim{Account: "a", AccountType: 1, VMRIDs: []string{"v"}})))

	// The key is sha256 over exactly that canonical form (a fixed vector,
	// printf %s '{"app_id":"A","room_id":"R"}' | sha256sum, so
	// a change of canonicalisation cannot go unnoticed).
	require.Equal(t, "dismiss:be05dd04c00b1e520c7a4bb7a28c8e83", tasks.Key(tasks.Dismiss{AppID: "A", RoomID: "R"}))
	require.Equal(t, "disable:", tasks.Key(tasks.Disable{AppID: "a"})[:8])
}

func TestCanonicalKeysSorted(t *testing.T) {
	t.Parallel()
	ops := []tasks.Op{
		tasks.Dismiss{AppID: "a", RoomID: "r"},
		tasks.Disable{AppID: "a"},
		tasks.Cancel{ConferenceID: "c", UserUUID: "u", EndOngoing: true},
		tasks.HangUp{ConferenceID: "c", ParticipantIDs: []string{"p"}},
		tasks.Reclaim{Account: "a", AccountType: 1, VMRIDs: []string{"v"}},
	}
	for _, op := range ops {
		c := tasks.Canonical(op)
		var m map[string]any
		require.NoError(t, json.Unmarshal(c, &m))
		sorted, err := json.Marshal(m) // encoding/json sorts map keys
		require.NoError(t, err)
		require.JSONEq(t, string(sorted), string(c))
		require.Equal(t, string(sorted), string(c), "%T fields must be declared in JSON-key order", op)
	}
}

func TestPrepare(t *testing.T) {
	t.Parallel()
	p, err := tasks.Prepare(tasks.Reclaim{Account: "acc", VMRIDs: []string{"v2", "v1"}}, tasks.TaskOptions{})
	require.NoError(t, err)
	require.Equal(t, tasks.Key(tasks.Reclaim{Account: "acc", VMRIDs: []string{"v1", "v2"}}), p.Key)
	require.Equal(t, "default", p.Queue)
	require.Equal(t, tasks.TypeReclaim, p.Task.Type())
	require.Equal(t, `{"account":"acc","vmr_ids":["v1","v2"]}`, string(p.Task.Payload()))

	p, err = tasks.Prepare(tasks.Disable{AppID: "a"}, tasks.TaskOptions{Key: "my-key-1", Queue: "critical"})
	require.NoError(t, err)
	require.Equal(t, "my-key-1", p.Key)
	require.Equal(t, "critical", p.Queue)

	_, err = tasks.Prepare(tasks.Disable{AppID: "a"}, tasks.TaskOptions{Key: "has space"})
	require.ErrorContains(t, err, "key")
	_, err = tasks.Prepare(tasks.Disable{AppID: ""}, tasks.TaskOptions{})
	require.ErrorContains(t, err, "app_id")
	_, err = tasks.Prepare(tasks.Disable{AppID: "a"}, tasks.TaskOptions{Queue: "\n"})
	require.ErrorContains(t, err, "queue")
}

func TestTypeNames(t *testing.T) {
	t.Parallel()
	ops := []tasks.Op{tasks.Dismiss{}, tasks.Disable{}, tasks.Cancel{}, tasks.HangUp{}, tasks.Reclaim{}}
	require.Len(t, tasks.Names, len(ops))
	require.Len(t, tasks.Types, len(ops))
	for i, name := range tasks.Names {
		typ, ok := tasks.TypeOf(name)
		require.True(t, ok)
		require.Equal(t, tasks.Types[i], typ)
		require.Equal(t, name, tasks.NameOf(typ))
		require.Contains(t, tasks.Groups, tasks.GroupOf(typ))
		require.Equal(t, name, ops[i].Name(), "the table and the payload type agree")
		require.Equal(t, typ, ops[i].TaskType())
	}
	require.Empty(t, tasks.GroupOf("x"))
	require.Equal(t, ops, tasks.All(), "All lists the zero operations in the order of Names")
	_, ok := tasks.TypeOf("explode")
	require.False(t, ok)
	require.Empty(t, tasks.NameOf("x"))
}

func TestCompactResultRoundTrip(t *testing.T) {
	t.Parallel()
	for _, r := range []tasks.Result{
		{Outcome: tasks.OutcomeSucceeded, Status: 202, Attempts: 3},
		{Outcome: tasks.OutcomeSucceeded, Status: 200, Attempts: 1, AppState: "DEACTIVATION"},
		{Outcome: tasks.OutcomeAlreadyDone, Status: 404, ErrorCode: "RTC.00001003", Attempts: 2},
	} {
		got, err := tasks.ParseCompact(r.Compact(), r.Attempts)
		require.NoError(t, err)
		require.Equal(t, r, got)
		require.LessOrEqual(t, len(r.Compact())+len("S12|"), 44, "Redis stores values up to 44 bytes inline")
	}
	old := tasks.Result{Outcome: tasks.OutcomeSucceeded, Status: 202, Attempts: 1}
	got, err := tasks.ParseCompact(old.JSON(), 1)
	require.NoError(t, err)
	require.Equal(t, old, got)
	_, err = tasks.ParseCompact([]byte("s|x|"), 1)
	require.Error(t, err)
}
