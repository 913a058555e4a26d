package tasks_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/meetops/meetops/internal/tasks"
)

// FuzzDecode feeds Decode arbitrary task types and payloads (seeds in
// testdata/fuzz/FuzzDecode; `make fuzz` explores further). Nothing panics;
// every rejection matches ErrInvalid and is made only of *FieldError (a
// join of them for several bad fields); an accepted payload validates, and
// its canonical form decodes to the same operation with the same canonical
// bytes and key.
func FuzzDecode(f *testing.F) {
	f.Add(tasks.TypeDismiss, []byte(`{"app_id":"demo-app","room_id":"room-001"}`))
	f.Add(tasks.TypeHangUp, []byte(`{"conference_id":"900000010","participant_ids":["p-2","p-1","p-2"]}`))
	f.Add(tasks.TypeReclaim, []byte(`{"account":"a","account_type":1,"vmr_ids":["v"]}`))
	f.Fuzz(func(t *testing.T, taskType string, payload []byte) {
		op, err := tasks.Decode(taskType, payload)
		if err != nil {
			if op != nil {
				t.Fatalf("Decode returned both %v and %v", op, err)
			}
			if !errors.Is(err, tasks.ErrInvalid) {
				t.Fatalf("rejection does not match ErrInvalid: %T %v", err, err)
			}
			checkFieldErrors(t, err)
			return
		}
		if op.TaskType() != taskType {
			t.Fatalf("decoded %T for task type %q", op, taskType)
		}
		if err := op.Validate(); err != nil {
			t.Fatalf("accepted payload %q does not validate: %v", payload, err)
		}
		canonical := tasks.Canonical(op)
		again, err := tasks.Decode(taskType, canonical)
		if err != nil {
			t.Fatalf("canonical form %s of accepted payload %q is rejected: %v", canonical, payload, err)
		}
		if got := tasks.Canonical(again); !bytes.Equal(got, canonical) {
			t.Fatalf("canonical form does not round-trip: %s → %s", canonical, got)
		}
		if tasks.Key(op) != tasks.Key(again) {
			t.Fatalf("key changed across the round trip: %s → %s", tasks.Key(op), tasks.Key(again))
		}
		p, err := tasks.Prepare(op, tasks.TaskOptions{})
		if err != nil {
			t.Fatalf("Prepare refuses an accepted payload %q: %v", payload, err)
		}
		if !bytes.Equal(p.Payload, canonical) || p.Key != tasks.Key(op) {
			t.Fatalf("Prepare enqueues %s under %s, want %s under %s", p.Payload, p.Key, canonical, tasks.Key(op))
		}
	})
}

// checkFieldErrors fails t unless err is a *FieldError or a join whose
// every leaf is one, each with a message.
func checkFieldErrors(t *testing.T, err error) {
	t.Helper()
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		if len(j.Unwrap()) == 0 {
			t.Fatalf("empty joined error %q", err)
		}
		for _, e := range j.Unwrap() {
			checkFieldErrors(t, e)
		}
		return
	}
	fe, ok := err.(*tasks.FieldError)
	if !ok {
		t.Fatalf("rejection is %T, not *tasks.FieldError: %v", err, err)
	}
	if fe.Msg == "" {
		t.Fatalf("FieldError without a message: %+v", fe)
	}
}

// FuzzResultJSON checks Result.JSON's reflection-free path against
// json.Marshal: the same bytes for any field values.
func FuzzResultJSON(f *testing.F) {
	f.Add("succeeded", "", 202, "", "", "9c5b8b68-1fd7-4eeb-bdc8-5510ba0bcbe6", 1, "")
	f.Add("dead_letter", "http_4xx", 404, "RTC.00001003", "room not found", "r/1", 3, "")
	f.Add("already_done", "", 200, "", "", "", 2, "DISABLED")
	f.Add("a<b>&", "\"q\"", -1, "\u2028", "é", "\x00", 0, "\\")
	f.Fuzz(func(t *testing.T, outcome, reason string, status int, code, msg, requestID string, attempts int, appState string) {
		r := tasks.Result{Outcome: outcome, Reason: reason, Status: status, ErrorCode: code, ErrorMsg: msg,
			RequestID: requestID, Attempts: attempts, AppState: appState}
		want, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.JSON(); !bytes.Equal(got, want) {
			t.Fatalf("JSON() = %s, json.Marshal = %s", got, want)
		}
	})
}
