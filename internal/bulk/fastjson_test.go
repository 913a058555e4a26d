package bulk

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// generalParse parses b with the general path only.
func generalParse(line int, b []byte, derive bool) Item {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return Item{Line: line, Err: malformed("malformed JSON: " + jsonErr(err))}
	}
	return build(line, m, nil, derive)
}

// fastAccepts are lines the fast path takes.
var fastAccepts = []string{
	`{"op":"dismiss","app_id":"demo-app","room_id":"room-001"}`,
	`{ "room_id" : "r" ,	"app_id":"a" , "op" : "dismiss" }`,
	`{"op":"disable","app_id":"démo-✓","key":"k-2","queue":"critical","max_retry":0}`,
	`{"op":"disable","app_id":"a","max_retry":-0,"process_at":"2030-01-06T09:00:00+01:00"}`,
	`{"op":"cancel","conference_id":"900000001","end_ongoing":true,"user_uuid":"u1","process_at":"2030-01-06T09:00:00Z"}`,
	`{"op":"cancel","conference_id":"900000001","end_ongoing":false,"user_uuid":""}`,
	`{"op":"hangup","conference_id":"900000010","participant_ids":["p-002","p-001","p-002"]}`,
	`{"op":"hangup","conference_id":"9","participant_ids":[ "p" ]}`,
	`{"op":"reclaim","account":"tp-user-bob","account_type":1,"vmr_ids":["vmr-bob-1"],"max_retry":123456789012345678}`,
	`{"op":"reclaim","account":"a","account_type":0,"vmr_ids":["v"],"key":"my/key:1"}`,
}

// fastDeclines are lines the fast path leaves to the general one, valid
// or not.
var fastDeclines = []string{
	`{}`,
	`{"op":"dismiss","app_id":"a\u0041","room_id":"r"}`,        // escape
	`{"op":"dismiss","app_id":"a","room_id":"r\/"}`,            // escape
	`{"op":"dismiss","app_id":null,"room_id":"r"}`,             // null
	`{"op":"dismiss","app_id":"a","room_id":"r","app_id":"b"}`, // twice
	`{"op":"dismiss","app_id":"a","room_id":"r","vmr_ids":["v"]}`,
	`{"OP":"dismiss","app_id":"a","room_id":"r"}`,
	`{"op":"dismiss","App_ID":"a","room_id":"r"}`,
	`{"op":"dismiss","app_id":"a","room_id":"r","colour":"red"}`,
	`{"op":"explode","app_id":"a"}`,
	`{"app_id":"a"}`,
	`{"op":1,"app_id":"a"}`,
	`{"op":"disable","app_id":"a","max_retry":1.5}`,
	`{"op":"disable","app_id":"a","max_retry":1.0}`,
	`{"op":"disable","app_id":"a","max_retry":1e2}`,
	`{"op":"disable","app_id":"a","max_retry":01}`,
	`{"op":"disable","app_id":"a","max_retry":1234567890123456789}`,
	`{"op":"disable","app_id":"a","max_retry":-1}`,
	`{"op":"disable","app_id":"a","max_retry":"1"}`,
	`{"op":"disable","app_id":"a","max_retry":-}`,
	`{"op":"disable","app_id":"a","key":"a b"}`,
	`{"op":"disable","app_id":"a","key":""}`,
	`{"op":"disable","app_id":"a","queue":""}`,
	`{"op":"disable","app_id":"a","process_at":"tomorrow"}`,
	`{"op":"disable","app_id":""}`,
	"{\"op\":\"disable\",\"app_id\":\"a\xff\"}", // invalid UTF-8
	"{\"op\":\"disable\",\"app_id\":\"a\x07\"}", // a raw control character
	`{"op":"disable","app_id":"a"} {}`,
	`{"op":"disable","app_id":"a"}}`,
	`{"op":"disable","app_id":"a",}`,
	`{"op":"disable","app_id":"a"`,
	`{"op":"disable" "app_id":"a"}`,
	`{"op":"cancel","conference_id":"c","end_ongoing":truex}`,
	`{"op":"cancel","conference_id":"c","end_ongoing":"true"}`,
	`{"op":"hangup","conference_id":"c","participant_ids":[]}`,
	`{"op":"hangup","conference_id":"c","participant_ids":["p",]}`,
	`{"op":"hangup","conference_id":"c","participant_ids":["p",""]}`,
	`{"op":"hangup","conference_id":"c","participant_ids":"p"}`,
	`{"op":"hangup","conference_id":"c","participant_ids":[1]}`,
	`{"op":"reclaim","account":"a","account_type":2,"vmr_ids":["v"]}`,
}

// requireAgrees checks that when the fast path takes line, it gives what
// the general path gives, with and without deriving the key.
func requireAgrees(t *testing.T, line string) (taken bool) {
	t.Helper()
	b := []byte(line)
	for _, derive := range []bool{true, false} {
		fast, ok := parseFast(7, b, derive)
		if !ok {
			return false
		}
		general := generalParse(7, b, derive)
		require.NoError(t, general.Err, "the fast path took an invalid line: %s", line)
		require.Equal(t, general, fast, line)
	}
	return true
}

func TestFastPathAgreesWithTheGeneralPath(t *testing.T) {
	t.Parallel()
	for _, line := range fastAccepts {
		require.True(t, requireAgrees(t, line), "the fast path should take %s", line)
	}
	for _, line := range fastDeclines {
		require.False(t, requireAgrees(t, line), "the fast path should leave %s", line)
		b := []byte(line)
		require.Equal(t, generalParse(3, b, true), parseJSONLine(3, b, true), line)
	}
}

// Every operation takes the fast path, and the fast path carries every
// field of its payload: a line setting them all gives a payload naming
// them all. (When internal/tasks gains a field, this fails until the fast
// path learns it; until then, the general path takes that operation.)
func TestFastPathCoversEveryField(t *testing.T) {
	t.Parallel()
	values := map[kind]string{kindString: `"x"`, kindList: `["x"]`, kindBool: `true`, kindInt: `1`}
	for i, f := range fastFields {
		id, ok := fastFieldOf([]byte(f.name))
		require.True(t, ok, f.name)
		require.Equal(t, fastField(i), id, f.name)
	}
	for name, sc := range schemas {
		k, ok := fastOpOf([]byte(name))
		require.True(t, ok, name)
		require.NotZero(t, fastOps[k], name)
		var line strings.Builder
		line.WriteString(`{"op":"` + name + `"`)
		for _, f := range sc.fields {
			line.WriteString(`,"` + f + `":` + values[kinds[f]])
		}
		line.WriteString(`}`)
		it, ok := parseFast(1, []byte(line.String()), true)
		require.True(t, ok, line.String())
		var payload map[string]any
		require.NoError(t, json.Unmarshal(must(json.Marshal(it.Op)), &payload))
		got := make([]string, 0, len(payload))
		for k := range payload {
			got = append(got, k)
		}
		want := slices.Clone(sc.fields)
		slices.Sort(got)
		slices.Sort(want)
		require.Equal(t, want, got, name)
		requireAgrees(t, line.String())
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// Whatever the line, the fast path either leaves it or agrees with the
// general path.
func FuzzFastPathAgrees(f *testing.F) {
	for _, line := range slices.Concat(fastAccepts, fastDeclines) {
		f.Add(line)
	}
	f.Fuzz(func(t *testing.T, line string) {
		b := bytes.TrimSpace([]byte(line))
		if len(b) == 0 || b[0] != '{' {
			return
		}
		requireAgrees(t, string(b))
	})
}

func BenchmarkParseFast(b *testing.B) {
	line := []byte(`{"op":"dismiss","app_id":"demo-app-bulk","room_id":"bulk-12345"}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := parseFast(1, line, false); !ok {
			b.Fatal("declined")
		}
	}
}

func BenchmarkParseGeneral(b *testing.B) {
	line := []byte(`{"op":"dismiss","app_id":"demo-app-bulk","room_id":"bulk-12345"}`)
	b.ReportAllocs()
	for b.Loop() {
		generalParse(1, line, false)
	}
}
