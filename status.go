package meetops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/hibiken/asynq"

	"github.com/meetops/meetops/internal/deadletter"
	"github.com/meetops/meetops/internal/ledger"
	"github.com/meetops/meetops/internal/tasks"
)

// TaskStatus is what Status knows about a key.
type TaskStatus struct {
	// Key is the idempotency key.
	Key string `json:"key"`
	// Queue is the task's queue ("" when only the ledger remembers it).
	Queue string `json:"queue,omitempty"`
	// Op is the operation name ("" when only the ledger remembers it).
	Op string `json:"op,omitempty"`
	// Origin is who enqueued it (WithOrigin; "" when not recorded, or
	// when only the dead-letter store or the ledger remembers it).
	Origin string `json:"origin,omitempty"`
	// State is one of the State constants.
	State string `json:"state"`
	// Payload is the task payload.
	Payload json.RawMessage `json:"payload,omitempty"`
	// Result is the task result: the outcome of a completed task, or why a
	// dead letter died. It is empty until the task finished.
	Result json.RawMessage `json:"result,omitempty"`
	// Retried counts the retries so far; MaxRetry is the budget.
	Retried  int `json:"retried"`
	MaxRetry int `json:"max_retry"`
	// LastError is the error of the last failed attempt.
	LastError string `json:"last_error,omitempty"`
	// NextProcessAt is when a scheduled or retrying task runs next (zero in
	// other states).
	NextProcessAt time.Time `json:"next_process_at,omitzero"`
	// CompletedAt is when a completed task finished.
	CompletedAt time.Time `json:"completed_at,omitzero"`
	// Unserved is true when the task waits (pending, scheduled or retry)
	// in a queue no running worker serves, as the client last saw (see
	// CheckQueues): it will not run until a worker serving Queue starts.
	// It is false when the check could not be made.
	Unserved bool `json:"unserved,omitempty"`
}

// Status reports the task with key. It looks in every queue; then, for a
// dead letter that asynq has trimmed from its archive, in meetops'
// dead-letter store; then, for a completed task past its retention, in the
// execution ledger. An unknown key is ErrNotFound. A task still waiting in
// a queue no running worker serves has Unserved set.
func (c *Client) Status(ctx context.Context, key string) (TaskStatus, error) {
	queues, err := c.inspect.Queues()
	if err != nil {
		return TaskStatus{}, fmt.Errorf("status %s: list queues: %w", key, err)
	}
	slices.Sort(queues)
	for _, q := range queues {
		ti, err := c.inspect.GetTaskInfo(q, key)
		if errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound) {
			continue
		}
		if err != nil {
			return TaskStatus{}, fmt.Errorf("status %s: %w", key, err)
		}
		st := statusOf(ti)
		switch st.State {
		case StatePending, StateScheduled, StateRetry:
			if check, err := c.CheckQueues(ctx, st.Queue); err == nil {
				st.Unserved = len(check.Unserved) > 0
			}
		}
		return st, nil
	}
	rec, err := c.dead.Get(ctx, key)
	if err == nil {
		return TaskStatus{Key: key, Queue: rec.Queue, Op: tasks.NameOf(rec.Type), State: StateArchived,
			Payload: rec.Payload, Result: rec.Result}, nil
	}
	if !errors.Is(err, deadletter.ErrNotFound) {
		return TaskStatus{}, fmt.Errorf("status %s: %w", key, err)
	}
	e, err := c.ledger.Get(ctx, key)
	if err != nil {
		return TaskStatus{}, fmt.Errorf("status %s: %w", key, err)
	}
	if e.State == ledger.Succeeded {
		return TaskStatus{Key: key, State: StateCompleted, Result: rawJSON(e.Result)}, nil
	}
	return TaskStatus{}, fmt.Errorf("no task with key %q: %w", key, ErrNotFound)
}

func statusOf(ti *asynq.TaskInfo) TaskStatus {
	s := TaskStatus{
		Key:         ti.ID,
		Queue:       ti.Queue,
		Op:          tasks.NameOf(ti.Type),
		Origin:      ti.Headers[tasks.OriginHeader],
		State:       ti.State.String(),
		Payload:     rawJSON(ti.Payload),
		Result:      rawJSON(ti.Result),
		Retried:     ti.Retried,
		MaxRetry:    ti.MaxRetry,
		LastError:   ti.LastErr,
		CompletedAt: ti.CompletedAt,
	}
	if ti.State == asynq.TaskStateScheduled || ti.State == asynq.TaskStateRetry {
		s.NextProcessAt = ti.NextProcessAt
	}
	return s
}

// rawJSON returns b as a JSON value: itself when it is valid JSON, else a
// JSON string; nil when empty.
func rawJSON(b []byte) json.RawMessage {
	if len(b) == 0 {
		return nil
	}
	if json.Valid(b) {
		return b
	}
	s, _ := json.Marshal(string(b)) // a string always marshals
	return s
}
