package tasks

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// What the fast path takes, and what it leaves to decodeStrict.
func TestDecodeFast(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		typ, payload string
		want         Op // nil: declined
	}{
		{TypeDismiss, `{"app_id":"a","room_id":"r"}`, Dismiss{AppID: "a", RoomID: "r"}},
		{TypeDismiss, " { \"room_id\" : \"r\" ,\n\t\"app_id\":\"a\" } \n", Dismiss{AppID: "a", RoomID: "r"}},
		{TypeDismiss, `{}`, Dismiss{}},
		{TypeDisable, `{"app_id":"é-app"}`, Disable{AppID: "é-app"}},
		{TypeCancel, `{"conference_id":"9","end_ongoing":true,"user_uuid":"u"}`, Cancel{ConferenceID: "9", EndOngoing: true, UserUUID: "u"}},
		{TypeCancel, `{"conference_id":"9","end_ongoing":false}`, Cancel{ConferenceID: "9"}},
		{TypeHangUp, `{"conference_id":"9","participant_ids":["p-2","p-1"]}`, HangUp{ConferenceID: "9", ParticipantIDs: []string{"p-2", "p-1"}}},
		{TypeHangUp, `{"conference_id":"9","participant_ids":[]}`, HangUp{ConferenceID: "9", ParticipantIDs: []string{}}},
		{TypeReclaim, `{"account":"a","account_type":1,"vmr_ids":["v"]}`, Reclaim{Account: "a", AccountType: 1, VMRIDs: []string{"v"}}},
		{TypeReclaim, `{"account":"a","account_type":-0,"vmr_ids":["v"]}`, Reclaim{Account: "a", VMRIDs: []string{"v"}}},

		{TypeDismiss, `{"app_id":"a","app_id":"b"}`, nil},  // twice
		{TypeDismiss, `{"app_id":"a","room":"r"}`, nil},    // unknown
		{TypeDismiss, `{"APP_ID":"a"}`, nil},               // another case
		{TypeDismiss, `{"app_id":"a\"b"}`, nil},            // escape
		{TypeDismiss, "{\"app_id\":\"a\x01\"}", nil},       // control character
		{TypeDismiss, "{\"app_id\":\"a\xff\"}", nil},       // invalid UTF-8
		{TypeDismiss, `{"app_id":null}`, nil},              // null
		{TypeDismiss, `{"app_id":"a"} {}`, nil},            // trailing data
		{TypeDismiss, `{"app_id":"a",}`, nil},              // trailing comma
		{TypeDismiss, `{"app_id":"a"`, nil},                // truncated
		{TypeDismiss, `{"app_id":1}`, nil},                 // wrong type
		{TypeCancel, `{"end_ongoing":truex}`, nil},         // not a literal
		{TypeReclaim, `{"account_type":1.0}`, nil},         // fraction
		{TypeReclaim, `{"account_type":1e2}`, nil},         // exponent
		{TypeReclaim, `{"account_type":01}`, nil},          // leading zero
		{TypeReclaim, `{"account_type":1234567890}`, nil},  // more than 9 digits
		{TypeHangUp, `{"participant_ids":["a",1]}`, nil},   // not a string
		{TypeHangUp, `{"participant_ids":["a"}`, nil},      // unclosed
		{TypeHangUp, `{"conference_id":"9","x":[]}`, nil},  // unknown list
		{TypeDisable, `{"app_id":"a","room_id":"r"}`, nil}, // another operation's field
		{TypeDisable, `[]`, nil},                           // not an object
	} {
		op := newOp(tc.typ)
		ok := decodeFast([]byte(tc.payload), op)
		if tc.want == nil {
			require.False(t, ok, "%s %q", tc.typ, tc.payload)
			continue
		}
		require.True(t, ok, "%s %q", tc.typ, tc.payload)
		require.Equal(t, tc.want, deref(op), "%s %q", tc.typ, tc.payload)
	}
}

// FuzzFastDecodeAgrees: whatever the fast path accepts, decodeStrict
// accepts too, with the same operation.
func FuzzFastDecodeAgrees(f *testing.F) {
	f.Add(TypeDismiss, []byte(`{"app_id":"demo-app","room_id":"room-001"}`))
	f.Add(TypeCancel, []byte(`{"conference_id":"9","end_ongoing":true,"user_uuid":"u"}`))
	f.Add(TypeHangUp, []byte(`{"conference_id":"900000010","participant_ids":["p-2","p-1","p-2"]}`))
	f.Add(TypeReclaim, []byte(`{"account":"a","account_type":1,"vmr_ids":["v"]}`))
	f.Add(TypeReclaim, []byte(`{"account":"a","account_type":-12,"vmr_ids":[]}`))
	f.Fuzz(func(t *testing.T, typ string, payload []byte) {
		fast := newOp(typ)
		if fast == nil || !decodeFast(payload, fast) {
			return
		}
		strict := newOp(typ)
		require.NoError(t, decodeStrict(payload, strict), "fast path accepted %q", payload)
		require.Equal(t, deref(strict), deref(fast), "%q", payload)
	})
}

// BenchmarkDecodePaths compares the fast path with decodeStrict, the
// general one, on the payload every drain task carries.
func BenchmarkDecodePaths(b *testing.B) {
	payload := []byte(`{"app_id":"demo-app-bulk","room_id":"worker-1-12345"}`)
	for _, path := range []struct {
		name   string
		decode func([]byte, Op) bool
	}{
		{"strict", func(p []byte, op Op) bool { return decodeStrict(p, op) == nil }},
		{"fast", decodeFast},
	} {
		b.Run(path.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if !path.decode(payload, newOp(TypeDismiss)) {
					b.Fatal("declined")
				}
			}
		})
	}
}
