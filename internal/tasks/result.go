package tasks

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Outcomes recorded in task results.
const (
	OutcomeSucceeded   = "succeeded"
	OutcomeAlreadyDone = "already_done"
	OutcomeDeadLetter  = "dead_letter"
)

// Dead-letter reasons.
const (
	ReasonHTTP4xx          = "http_4xx"
	ReasonInvalidPayload   = "invalid_payload"
	ReasonRetriesExhausted = "retries_exhausted"
	ReasonAuth             = "auth"
)

// Result is the JSON a task leaves behind (asynq ResultWriter): for a
// completed task outcome succeeded or already_done, for a dead letter
// outcome dead_letter with the reason and the upstream's answer.
type Result struct {
	Outcome   string `json:"outcome"`
	Reason    string `json:"reason,omitempty"`
	Status    int    `json:"status,omitempty"`
	ErrorCode string `json:"error_code,omitempty"`
	ErrorMsg  string `json:"error_msg,omitempty"`
	RequestID string `json:"request_id,omitempty"`
	Attempts  int    `json:"attempts"`
	// AppState is the application state a disable answered with.
	AppState string `json:"app_state,omitempty"`
}

// JSON encodes r.
//
// It writes the bytes json.Marshal would, without reflection when every
// string is plain (letters, digits and -_.:/ — what outcomes, reasons,
// codes and request IDs are): every completed task encodes one.
func (r Result) JSON() []byte {
	if !plain(r.Outcome) || !plain(r.Reason) || !plain(r.ErrorCode) || !plain(r.ErrorMsg) || !plain(r.RequestID) || !plain(r.AppState) {
		b, _ := json.Marshal(r) // strings and ints only: cannot fail
		return b
	}
	b := make([]byte, 0, 64+len(r.Outcome)+len(r.Reason)+len(r.ErrorCode)+len(r.ErrorMsg)+len(r.RequestID)+len(r.AppState))
	b = append(b, `{"outcome":"`...)
	b = append(b, r.Outcome...)
	b = append(b, '"')
	str := func(name, v string) {
		if v != "" {
			b = append(b, `,"`...)
			b = append(b, name...)
			b = append(b, `":"`...)
			b = append(b, v...)
			b = append(b, '"')
		}
	}
	str("reason", r.Reason)
	if r.Status != 0 {
		b = append(b, `,"status":`...)
		b = strconv.AppendInt(b, int64(r.Status), 10)
	}
	str("error_code", r.ErrorCode)
	str("error_msg", r.ErrorMsg)
	str("request_id", r.RequestID)
	b = append(b, `,"attempts":`...)
	b = strconv.AppendInt(b, int64(r.Attempts), 10)
	str("app_state", r.AppState)
	return append(b, '}')
}

// plain reports whether json.Marshal writes s as it is between quotes.
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':' || c == '/') {
			return false
		}
	}
	return true
}

// Compact encodes a completed task's result for the execution ledger, which
// keeps one entry per task for the whole dedup window:
// "<o>|<status>|<app state>|<error code>" with o "s" (succeeded) or "a"
// (already done). The attempts travel in the ledger entry itself, and the
// request ID is left out: the full result JSON is in the asynq task, and
// the entry stays short enough for Redis to store it inline (≤ 44 bytes),
// which matters at one entry per task (see README, benchmarks).
func (r Result) Compact() []byte {
	o := "s"
	if r.Outcome == OutcomeAlreadyDone {
		o = "a"
	}
	return []byte(o + "|" + strconv.Itoa(r.Status) + "|" + r.AppState + "|" + r.ErrorCode)
}

// ParseCompact decodes Compact's encoding; attempts comes from the ledger.
// A value that is JSON (an older entry) is decoded as such.
func ParseCompact(b []byte, attempts int) (Result, error) {
	if len(b) > 0 && b[0] == '{' {
		var r Result
		err := json.Unmarshal(b, &r)
		return r, err
	}
	parts := strings.Split(string(b), "|")
	if len(parts) != 4 {
		return Result{}, fmt.Errorf("ledger result %q: want 4 fields", b)
	}
	status, err := strconv.Atoi(parts[1])
	if err != nil {
		return Result{}, fmt.Errorf("ledger result %q: status: %w", b, err)
	}
	r := Result{Outcome: OutcomeSucceeded, Status: status, AppState: parts[2], ErrorCode: parts[3], Attempts: attempts}
	if parts[0] == "a" {
		r.Outcome = OutcomeAlreadyDone
	}
	return r, nil
}
