package bulk_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/meetops/meetops"
	"github.com/meetops/meetops/internal/bulk"
	"github.com/meetops/meetops/internal/tasks"
)

// FuzzJSONL reads arbitrary input as JSON Lines (seeds in
// testdata/fuzz/FuzzJSONL; `make fuzz` explores further). Nothing panics
// and reading ends with io.EOF; an invalid line is made only of
// *meetops.FieldError; a valid line validates, carries the derived key
// unless it named its own, and written back as a JSONL line — and, when its
// IDs contain no ';', as a CSV record — reads as the same item.
func FuzzJSONL(f *testing.F) {
	f.Add([]byte(`{"op":"dismiss","app_id":"demo-app","room_id":"room-001"}` + "\n"))
	f.Add([]byte(`{"op":"hangup","conference_id":"900000010","participant_ids":["p-2","p-1"],"queue":"critical","max_retry":3}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		items := fzReadAll(t, bulk.NewJSONL(bytes.NewReader(data)), len(data))
		for _, it := range items {
			if it.Err != nil {
				continue
			}
			line := fzJSONLLine(t, it)
			again := fzReadAll(t, bulk.NewJSONL(strings.NewReader(line)), len(line))
			if len(again) != 1 {
				t.Fatalf("line %q written back as %q reads as %d items", data, line, len(again))
			}
			fzSameItem(t, "JSONL", it, again[0], line)
			if rec, ok := fzCSVRecord(it); ok {
				var b bytes.Buffer
				w := csv.NewWriter(&b)
				_ = w.Write(fzCSVHeader)
				_ = w.Write(rec)
				w.Flush()
				viaCSV := fzReadAll(t, bulk.NewCSV(bytes.NewReader(b.Bytes())), b.Len())
				if len(viaCSV) != 1 {
					t.Fatalf("item of %q written as CSV %q reads as %d items", data, b.String(), len(viaCSV))
				}
				fzSameItem(t, "CSV", it, viaCSV[0], b.String())
			}
		}
	})
}

// FuzzCSV reads arbitrary input as CSV (seeds in testdata/fuzz/FuzzCSV).
// Nothing panics; reading ends with io.EOF or a header error matching
// meetops.ErrInvalid; invalid records carry only *meetops.FieldError; valid
// ones validate, and written back as a JSONL line read as the same item.
func FuzzCSV(f *testing.F) {
	f.Add([]byte("op,app_id,room_id\ndismiss,demo-app,room-001\n"))
	f.Add([]byte("op,conference_id,participant_ids,max_retry\nhangup,900000010,p-001;p-002,2\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		items := fzReadAll(t, bulk.NewCSV(bytes.NewReader(data)), len(data))
		for _, it := range items {
			if it.Err != nil {
				continue
			}
			line := fzJSONLLine(t, it)
			again := fzReadAll(t, bulk.NewJSONL(strings.NewReader(line)), len(line))
			if len(again) != 1 {
				t.Fatalf("CSV item written as JSONL %q reads as %d items", line, len(again))
			}
			fzSameItem(t, "JSONL from CSV", it, again[0], line)
		}
	})
}

// fzReadAll reads every item, checking the Reader's contract on the way.
func fzReadAll(t *testing.T, r bulk.Reader, size int) []bulk.Item {
	t.Helper()
	var items []bulk.Item
	for range size + 2 { // never more items than bytes, plus the end
		it, err := r.Next()
		if errors.Is(err, io.EOF) {
			return items
		}
		if err != nil {
			var he *bulk.HeaderError
			if !errors.As(err, &he) || !errors.Is(err, meetops.ErrInvalid) {
				t.Fatalf("fatal error %T that is not a header error: %v", err, err)
			}
			return items
		}
		if len(items) > 0 && it.Line <= items[len(items)-1].Line {
			t.Fatalf("line numbers do not increase: %d after %d", it.Line, items[len(items)-1].Line)
		}
		if it.Err != nil {
			if it.Op != nil {
				t.Fatalf("line %d: invalid (%v) but has an operation", it.Line, it.Err)
			}
			if !errors.Is(it.Err, meetops.ErrInvalid) {
				t.Fatalf("line %d: rejection does not match ErrInvalid: %T %v", it.Line, it.Err, it.Err)
			}
			fzCheckFieldErrors(t, it.Err)
			if it.Reason() == "" || strings.Contains(it.Reason(), "\n") {
				t.Fatalf("line %d: reason is not one line: %q", it.Line, it.Reason())
			}
		} else {
			if it.Op == nil {
				t.Fatalf("line %d: valid but no operation", it.Line)
			}
			if err := it.Op.Validate(); err != nil {
				t.Fatalf("line %d: accepted %+v does not validate: %v", it.Line, it.Op, err)
			}
			if it.Key == "" {
				t.Fatalf("line %d: valid but no key", it.Line)
			}
		}
		items = append(items, it)
	}
	t.Fatalf("more than %d items from %d bytes", size+2, size)
	return nil
}

// fzCheckFieldErrors fails t unless err is a *meetops.FieldError or a join
// whose every leaf is one, each with a message.
func fzCheckFieldErrors(t *testing.T, err error) {
	t.Helper()
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			fzCheckFieldErrors(t, e)
		}
		return
	}
	var fe *meetops.FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("rejection is %T, not *meetops.FieldError: %v", err, err)
	}
	if fe.Msg == "" {
		t.Fatalf("FieldError without a message: %+v", fe)
	}
}

// fzJSONLLine writes a valid item back as a JSONL line: its canonical
// payload, "op", and its options (the key only when it is not derived).
func fzJSONLLine(t *testing.T, it bulk.Item) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(tasks.Canonical(it.Op), &m); err != nil {
		t.Fatal(err)
	}
	m["op"] = it.Op.Name()
	if it.Key != tasks.Key(it.Op) {
		m["key"] = it.Key
	}
	if it.Queue != "" {
		m["queue"] = it.Queue
	}
	if !it.ProcessAt.IsZero() {
		m["process_at"] = it.ProcessAt.Format(time.RFC3339Nano)
	}
	if it.MaxRetry != nil {
		m["max_retry"] = *it.MaxRetry
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b) + "\n"
}

// fzCSVHeader names every column a CSV input may have.
var fzCSVHeader = []string{"op", "key", "queue", "process_at", "max_retry", "app_id", "room_id",
	"conference_id", "user_uuid", "end_ongoing", "participant_ids", "account", "account_type", "vmr_ids"}

// fzCSVRecord writes a valid item as a record under fzCSVHeader; false when a
// list element contains ';' (the CSV list separator).
func fzCSVRecord(it bulk.Item) ([]string, bool) {
	rec := make([]string, len(fzCSVHeader))
	set := func(col, v string) { rec[slices.Index(fzCSVHeader, col)] = v }
	set("op", it.Op.Name())
	if it.Key != tasks.Key(it.Op) {
		set("key", it.Key)
	}
	set("queue", it.Queue)
	if !it.ProcessAt.IsZero() {
		set("process_at", it.ProcessAt.Format(time.RFC3339Nano))
	}
	if it.MaxRetry != nil {
		set("max_retry", strconv.Itoa(*it.MaxRetry))
	}
	list := func(col string, ids []string) bool {
		for _, id := range ids {
			if strings.Contains(id, ";") {
				return false
			}
		}
		set(col, strings.Join(ids, ";"))
		return true
	}
	ok := true
	switch op := it.Op.(type) {
	case tasks.Dismiss:
		set("app_id", op.AppID)
		set("room_id", op.RoomID)
	case tasks.Disable:
		set("app_id", op.AppID)
	case tasks.Cancel:
		set("conference_id", op.ConferenceID)
		set("user_uuid", op.UserUUID)
		if op.EndOngoing {
			set("end_ongoing", "true")
		}
	case tasks.HangUp:
		set("conference_id", op.ConferenceID)
		ok = list("participant_ids", op.ParticipantIDs)
	case tasks.Reclaim:
		set("account", op.Account)
		if op.AccountType != 0 {
			set("account_type", strconv.Itoa(op.AccountType))
		}
		ok = list("vmr_ids", op.VMRIDs)
	}
	return rec, ok
}

// fzSameItem fails t unless b is the item a was written back as.
func fzSameItem(t *testing.T, via string, a, b bulk.Item, written string) {
	t.Helper()
	switch {
	case b.Err != nil:
		t.Fatalf("%s: valid item %+v written as %q is rejected: %v", via, a.Op, written, b.Err)
	case a.Key != b.Key:
		t.Fatalf("%s: key %q became %q (written as %q)", via, a.Key, b.Key, written)
	case !bytes.Equal(tasks.Canonical(a.Op), tasks.Canonical(b.Op)):
		t.Fatalf("%s: %s became %s", via, tasks.Canonical(a.Op), tasks.Canonical(b.Op))
	case a.Queue != b.Queue || !a.ProcessAt.Equal(b.ProcessAt) || (a.MaxRetry == nil) != (b.MaxRetry == nil) ||
		(a.MaxRetry != nil && *a.MaxRetry != *b.MaxRetry):
		t.Fatalf("%s: options changed: %+v → %+v (written as %q)", via, a, b, written)
	}
}
