package bulk_test

import (
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops"
	"github.com/meetops/meetops/internal/bulk"
	"github.com/meetops/meetops/internal/tasks"
)

// readAll returns every item of r.
func readAll(t *testing.T, r bulk.Reader) []bulk.Item {
	t.Helper()
	var items []bulk.Item
	for {
		it, err := r.Next()
		if errors.Is(err, io.EOF) {
			return items
		}
		require.NoError(t, err)
		items = append(items, it)
	}
}

func TestJSONLValidLines(t *testing.T) {
	t.Parallel()
	in := "\ufeff" + `{"op":"dismiss","app_id":"demo-app","room_id":"room-001"}` + "\r\n" +
		"\n   \n" +
		`{"op":"disable","app_id":"demo-app-2","key":"k-2","queue":"critical","max_retry":0}` + "\n" +
		`{"op":"cancel","conference_id":"900000001","end_ongoing":true,"user_uuid":"u1","process_at":"2030-01-06T09:00:00Z"}` + "\n" +
		`{"op":"hangup","conference_id":"900000010","participant_ids":["p-002","p-001"]}` + "\n" +
		`{"op":"reclaim","account":"tp-user-bob","account_type":1,"vmr_ids":["vmr-bob-1"],"max_retry":3}` // no final newline
	items := readAll(t, bulk.NewJSONL(strings.NewReader(in)))
	require.Len(t, items, 5)
	for _, it := range items {
		require.NoError(t, it.Err, "line %d", it.Line)
	}
	require.Equal(t, []int{1, 4, 5, 6, 7}, []int{items[0].Line, items[1].Line, items[2].Line, items[3].Line, items[4].Line})

	require.Equal(t, meetops.Dismiss{AppID: "demo-app", RoomID: "room-001"}, items[0].Op)
	require.Equal(t, tasks.Key(items[0].Op), items[0].Key, "derived key")
	require.Nil(t, items[0].MaxRetry)

	require.Equal(t, "k-2", items[1].Key)
	require.Equal(t, "critical", items[1].Queue)
	require.Equal(t, 0, *items[1].MaxRetry)

	require.Equal(t, meetops.Cancel{ConferenceID: "900000001", EndOngoing: true, UserUUID: "u1"}, items[2].Op)
	require.Equal(t, time.Date(2030, 1, 6, 9, 0, 0, 0, time.UTC), items[2].ProcessAt)

	require.Equal(t, meetops.HangUp{ConferenceID: "900000010", ParticipantIDs: []string{"p-002", "p-001"}}, items[3].Op)
	require.Equal(t, meetops.Reclaim{Account: "tp-user-bob", AccountType: 1, VMRIDs: []string{"vmr-bob-1"}}, items[4].Op)
	require.Len(t, items[4].Options(), 2)
}

func TestJSONLInvalidLinesSayWhy(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct{ line, reason string }{
		"unknown fields named":    {`{"op":"dismiss","app_id":"a","room_id":"r","room":"x","vmr_ids":["v"]}`, `room: unknown field for dismiss (it takes app_id, room_id); vmr_ids: unknown field for dismiss (it takes app_id, room_id)`},
		"every invalid field":     {`{"op":"dismiss","app_id":"","room_id":".."}`, `app_id: must not be empty; room_id: must not be ".."`},
		"wrong type":              {`{"op":"hangup","conference_id":"c","participant_ids":"p-1"}`, `participant_ids: must be a JSON array, got string`},
		"list bounds":             {`{"op":"reclaim","account":"a","vmr_ids":[]}`, `vmr_ids: must list at least one ID`},
		"missing op":              {`{"app_id":"a"}`, `op: missing (want one of dismiss, disable, cancel, hangup, reclaim)`},
		"unknown op":              {`{"op":"explode","app_id":"a"}`, `op: unknown operation "explode" (want one of dismiss, disable, cancel, hangup, reclaim)`},
		"op not a string":         {`{"op":1,"app_id":"a"}`, `op: must be a string`},
		"bad time":                {`{"op":"disable","app_id":"a","process_at":"tomorrow"}`, `process_at: must be an RFC 3339 time like 2030-01-06T09:00:00Z, got "tomorrow"`},
		"negative retries":        {`{"op":"disable","app_id":"a","max_retry":-1}`, `max_retry: must not be negative, got -1`},
		"fractional retries":      {`{"op":"disable","app_id":"a","max_retry":1.5}`, `max_retry: must be an integer`},
		"key with white space":    {`{"op":"disable","app_id":"a","key":"a b"}`, `key: must not contain white space`},
		"empty queue":             {`{"op":"disable","app_id":"a","queue":""}`, `queue: must not be empty`},
		"not an object":           {`["op","disable"]`, `not a JSON object`},
		"malformed":               {`{"op":"disable",}`, `malformed JSON: invalid character '}' looking for beginning of object key string at byte 17`},
		"trailing data":           {`{"op":"disable","app_id":"a"} {}`, `malformed JSON: invalid character '{' after top-level value at byte 31`},
		"unknown field, no op":    {`{"op":"nope","colour":"red"}`, `op: unknown operation "nope" (want one of dismiss, disable, cancel, hangup, reclaim); colour: unknown field`},
		"control char in an ID":   {`{"op":"disable","app_id":"a\u0007"}`, `app_id: must not contain control characters (U+0007 at byte 1)`},
		"account type out of 0|1": {`{"op":"reclaim","account":"a","account_type":2,"vmr_ids":["v"]}`, `account_type: must be 0 or 1, got 2`},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			items := readAll(t, bulk.NewJSONL(strings.NewReader("\n"+tc.line+"\n")))
			require.Len(t, items, 1)
			require.Equal(t, 2, items[0].Line)
			require.Nil(t, items[0].Op)
			require.ErrorIs(t, items[0].Err, meetops.ErrInvalid)
			require.Equal(t, tc.reason, items[0].Reason())
		})
	}
}

func TestJSONLTooLongLineIsInvalidAndReadingGoesOn(t *testing.T) {
	t.Parallel()
	long := `{"op":"disable","app_id":"` + strings.Repeat("a", bulk.MaxLineBytes) + `"}`
	in := long + "\n" + `{"op":"disable","app_id":"a"}` + "\n"
	items := readAll(t, bulk.NewJSONL(strings.NewReader(in)))
	require.Len(t, items, 2)
	require.ErrorContains(t, items[0].Err, "line longer than")
	require.NoError(t, items[1].Err)
	require.Equal(t, 2, items[1].Line)
}

func TestCSV(t *testing.T) {
	t.Parallel()
	in := "op,app_id,room_id,conference_id,participant_ids,end_ongoing,account,account_type,vmr_ids,key,queue,process_at,max_retry\n" +
		"dismiss,demo-app,room-001,,,,,,,,,,\n" +
		"hangup,,,900000010,p-001;p-002,,,,,,critical,,2\n" +
		"cancel,,,900000010,,true,,,,my-key,,2030-01-06T09:00:00Z,\n" +
		"reclaim,,,,,,tp-user-bob,1,vmr-bob-1;vmr-bob-2,,,,\n" +
		"\n" + // blank: skipped
		"dismiss,demo-app,room-001,900000010,,,,,,,,,\n" + // a cancel field on a dismiss
		"cancel,,,c,,maybe,,,,,,,x\n" +
		"disable,a\n" +
		"\"disable\",\"multi\nline\",,,,,,,,,,,\n" +
		"disable,a\"b,,,,,,,,,,,\n"
	items := readAll(t, bulk.NewCSV(strings.NewReader(in)))
	require.Len(t, items, 9)
	for _, it := range items[:4] {
		require.NoError(t, it.Err, "line %d", it.Line)
	}
	require.Equal(t, meetops.Dismiss{AppID: "demo-app", RoomID: "room-001"}, items[0].Op)
	require.Equal(t, 2, items[0].Line)
	require.Equal(t, meetops.HangUp{ConferenceID: "900000010", ParticipantIDs: []string{"p-001", "p-002"}}, items[1].Op)
	require.Equal(t, "critical", items[1].Queue)
	require.Equal(t, 2, *items[1].MaxRetry)
	require.Equal(t, meetops.Cancel{ConferenceID: "900000010", EndOngoing: true}, items[2].Op)
	require.Equal(t, "my-key", items[2].Key)
	require.Equal(t, meetops.Reclaim{Account: "tp-user-bob", AccountType: 1, VMRIDs: []string{"vmr-bob-1", "vmr-bob-2"}}, items[3].Op)

	bad := items[4:]
	require.Equal(t, []int{7, 8, 9, 10, 12}, []int{bad[0].Line, bad[1].Line, bad[2].Line, bad[3].Line, bad[4].Line})
	require.Equal(t, "conference_id: unknown field for dismiss (it takes app_id, room_id)", bad[0].Reason())
	require.Equal(t, `end_ongoing: must be true or false, got "maybe"; max_retry: must be an integer, got "x"`, bad[1].Reason())
	require.Equal(t, "has 2 fields, the header has 13", bad[2].Reason())
	require.Equal(t, `app_id: must not contain control characters (U+000A at byte 5)`, bad[3].Reason())
	require.Equal(t, `malformed CSV: bare " in non-quoted-field`, bad[4].Reason())
}

func TestCSVBadHeaderIsFatal(t *testing.T) {
	t.Parallel()
	_, err := bulk.NewCSV(strings.NewReader("op,app_id,colour,app_id\ndisable,a,red,a\n")).Next()
	var he *bulk.HeaderError
	require.ErrorAs(t, err, &he)
	require.ErrorIs(t, err, meetops.ErrInvalid)
	require.Equal(t, `header: unknown column "colour"; column "app_id" twice`, err.Error())

	_, err = bulk.NewCSV(strings.NewReader("app_id\na\n")).Next()
	require.EqualError(t, err, `header: no "op" column`)

	_, err = bulk.NewCSV(strings.NewReader("")).Next()
	require.ErrorIs(t, err, io.EOF, "an empty file has no lines")
}

func TestFormatFor(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, explicit string
		want           bulk.Format
	}{
		{"ops.jsonl", "", bulk.JSONL}, {"ops.NDJSON", "", bulk.JSONL}, {"ops.csv", "", bulk.CSV},
		{"-", "", bulk.JSONL}, {"-", "csv", bulk.CSV}, {"ops.txt", "jsonl", bulk.JSONL},
	} {
		got, err := bulk.FormatFor(tc.name, tc.explicit)
		require.NoError(t, err, tc.name)
		require.Equal(t, tc.want, got, tc.name)
	}
	_, err := bulk.FormatFor("ops.txt", "")
	require.ErrorContains(t, err, "--format")
	_, err = bulk.FormatFor("ops.csv", "xml")
	require.ErrorContains(t, err, `unknown format "xml"`)
}

// cellReader yields a CSV whose third line holds one cell of n bytes,
// without ever holding it in memory.
func cellReader(n int64) io.Reader {
	return io.MultiReader(
		strings.NewReader("op,app_id\ndisable,ok-app\ndisable,"),
		io.LimitReader(repeatReader('x'), n),
		strings.NewReader("\ndisable,after\n"))
}

type repeatReader byte

func (r repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

// A CSV record over MaxLineBytes (here a 50 MB cell) fails the input at
// its line after reading little more than the cap, instead of buffering
// the whole cell (531 MB of RSS before the cap).
func TestCSVRecordTooLongFailsAtItsLineInBoundedMemory(t *testing.T) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	r := bulk.NewCSV(cellReader(50 << 20))
	it, err := r.Next()
	require.NoError(t, err)
	require.NoError(t, it.Err)
	require.Equal(t, 2, it.Line)
	_, err = r.Next()
	var tl *bulk.RecordTooLongError
	require.ErrorAs(t, err, &tl)
	require.Equal(t, 3, tl.Line)
	require.ErrorIs(t, err, meetops.ErrInvalid)
	runtime.ReadMemStats(&after)
	require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(16<<20), "allocated while reading the oversized record")

	// Just under the cap is an ordinary (invalid: the ID is too long) line,
	// and reading goes on.
	r = bulk.NewCSV(cellReader(bulk.MaxLineBytes - 100))
	for _, want := range []int{2, 3, 4} {
		it, err := r.Next()
		require.NoError(t, err)
		require.Equal(t, want, it.Line)
	}
}

// ParseObject parses what a line holds, pretty-printed too, and tells a
// malformed object and an unknown field from a field that fails
// validation.
func TestParseObjectClassifiesErrors(t *testing.T) {
	t.Parallel()
	it := bulk.ParseObject([]byte("  {\n  \"op\": \"dismiss\",\n  \"app_id\": \"demo-app\",\n  \"room_id\": \"room-001\"\n}\n"))
	require.NoError(t, it.Err)
	require.Equal(t, meetops.Dismiss{AppID: "demo-app", RoomID: "room-001"}, it.Op)
	require.Empty(t, it.Key, "nothing derived")
	it = bulk.ParseObject([]byte(`{"op":"disable","app_id":"a","key":"k-1"}`))
	require.NoError(t, it.Err)
	require.Equal(t, "k-1", it.Key)

	for _, tc := range []struct {
		in, class, field string
	}{
		{"", "malformed", ""},
		{"   \n", "malformed", ""},
		{`{"op":"dismiss"`, "malformed", ""},
		{`{"op":"disable","app_id":"a"} {"op":"disable","app_id":"b"}`, "malformed", ""},
		{`{"op":"disable","app_id":"a"}x`, "malformed", ""},
		{`[{"op":"disable","app_id":"a"}]`, "malformed", ""},
		{`"dismiss"`, "malformed", ""},
		{`{"op":"disable","app_id":"a","room_id":"r"}`, "unknown", "room_id"},
		{`{"op":"disable","app_id":"a","colour":"red"}`, "unknown", "colour"},
		{`{"op":"nope","colour":"red"}`, "unknown", "colour"},
		{`{"op":"nope"}`, "invalid", "op"},
		{`{"app_id":"a"}`, "invalid", "op"},
		{`{"op":"dismiss","app_id":"a"}`, "invalid", "room_id"},
		{`{"op":"dismiss","app_id":5,"room_id":"r"}`, "invalid", "app_id"},
		{`{"op":"disable","app_id":"a","max_retry":-1}`, "invalid", "max_retry"},
		{`{"op":"disable","app_id":"a","key":"has space"}`, "invalid", "key"},
	} {
		it := bulk.ParseObject([]byte(tc.in))
		require.Error(t, it.Err, tc.in)
		require.Nil(t, it.Op, tc.in)
		require.ErrorIs(t, it.Err, meetops.ErrInvalid, tc.in)
		require.Equal(t, tc.class == "malformed", errors.Is(it.Err, bulk.ErrMalformed), tc.in)
		require.Equal(t, tc.class == "unknown", errors.Is(it.Err, bulk.ErrUnknownField), tc.in)
		if tc.field != "" {
			var named []string
			for _, e := range bulk.Leaves(it.Err) {
				var fe *meetops.FieldError
				require.ErrorAs(t, e, &fe, tc.in)
				named = append(named, fe.Field)
			}
			require.Contains(t, named, tc.field, tc.in)
		}
	}
	require.ErrorIs(t, bulk.ParseObject([]byte(`{"op":"disable","app_id":"`+strings.Repeat("a", bulk.MaxLineBytes)+`"}`)).Err, bulk.ErrMalformed)

	// The same classes in a file.
	items := readAll(t, bulk.NewJSONL(strings.NewReader("{\n"+`{"op":"disable","app_id":"a","x":1}`+"\n")))
	require.ErrorIs(t, items[0].Err, bulk.ErrMalformed)
	require.ErrorIs(t, items[1].Err, bulk.ErrUnknownField)
}

// Collect returns every item in order, keys not derived, and refuses an
// input over its limit.
func TestCollect(t *testing.T) {
	t.Parallel()
	var in strings.Builder
	for i := range 2000 {
		if i%500 == 7 {
			in.WriteString("{bad\n\n")
			continue
		}
		in.WriteString(`{"op":"dismiss","app_id":"a","room_id":"r-` + strings.Repeat("x", i%5) + `"}` + "\n")
	}
	items, err := bulk.Collect(t.Context(), bulk.NewJSONL(strings.NewReader(in.String())), 2000)
	require.NoError(t, err)
	require.Len(t, items, 2000)
	for i, it := range items {
		require.Equal(t, i%500 == 7, it.Err != nil, "item %d", i)
		require.Empty(t, it.Key)
	}
	require.Greater(t, items[1999].Line, 2000, "blank lines count as lines, not items")
	_, err = bulk.Collect(t.Context(), bulk.NewJSONL(strings.NewReader(in.String())), 1999)
	require.ErrorIs(t, err, bulk.ErrTooMany)
	items, err = bulk.Collect(t.Context(), bulk.NewJSONL(strings.NewReader("")), 10)
	require.NoError(t, err)
	require.Empty(t, items)
}
