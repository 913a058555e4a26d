package tasks

import "encoding/json"

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
func (r Result) JSON() []byte {
	b, _ := json.Marshal(r) // strings and ints only: cannot fail
	return b
}
