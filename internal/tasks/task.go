package tasks

import (
	"time"

	"github.com/hibiken/asynq"
)

// Defaults for new tasks.
const (
	// DefaultQueue is the queue a task goes to unless told otherwise.
	DefaultQueue = "default"
	// DefaultDedupWindow is how long a completed task (and its ledger
	// entry) is kept, so enqueueing the same key again is a no-op.
	DefaultDedupWindow = 24 * time.Hour
	// DefaultMaxRetry is a task's retry budget.
	DefaultMaxRetry = 12
	// DefaultTimeout bounds one attempt of a handler (a hang-up makes up to
	// four upstream calls, each bounded by the client's own timeout).
	DefaultTimeout = 5 * time.Minute
	// NoRetry as TaskOptions.MaxRetry means a task is never retried.
	NoRetry = -1
)

// TaskOptions say how to enqueue a task. Zero values mean defaults.
type TaskOptions struct {
	// Key is the idempotency key and asynq task ID; "" derives it from the
	// payload (see Key).
	Key string
	// Queue is the asynq queue; "" means "default".
	Queue string
	// ProcessAt schedules the task; the zero time means now.
	ProcessAt time.Time
	// MaxRetry is the retry budget; 0 means 12, NoRetry means none.
	MaxRetry int
	// DedupWindow is how long the completed task is retained; 0 means 24 h.
	DedupWindow time.Duration
	// Timeout bounds one attempt; 0 means 5 min.
	Timeout time.Duration
	// Origin says who enqueues the task (an API token's name), kept in
	// the task as its OriginHeader header; "" for none. It is not part of
	// the payload, so it changes neither the key nor what counts as a
	// duplicate.
	Origin string
	// RequireServedQueue is not part of the task: it asks the producer to
	// refuse the task when no running worker serves Queue (see
	// meetops.RequireServedQueue).
	RequireServedQueue bool
}

// OriginHeader is the asynq task header that carries TaskOptions.Origin
// (asynqdb writes the same header).
const OriginHeader = "origin"

// Prepared is a validated task ready to enqueue.
type Prepared struct {
	// Key is the idempotency key (the asynq task ID).
	Key string
	// Queue is the queue it goes to.
	Queue string
	// Op is the operation.
	Op Op
	// Payload is the canonical payload.
	Payload []byte
	// MaxRetry is the retry budget, defaults applied (0: never retried).
	MaxRetry int
	// Retention is how long the completed task is kept: the dedup window,
	// defaults applied.
	Retention time.Duration
	// Timeout bounds one attempt, defaults applied.
	Timeout time.Duration
	// ProcessAt is when the task is due; the zero time means now.
	ProcessAt time.Time
	// Origin is who enqueued it ("" for nobody in particular).
	Origin string
	// Task is the asynq task, carrying the options above.
	Task *asynq.Task
	// RequireServedQueue is TaskOptions.RequireServedQueue: the producer
	// refuses the task when no running worker serves Queue.
	RequireServedQueue bool
}

// Prepare validates op and o and builds the asynq task: canonical payload,
// the key as task ID, retention set to the dedup window.
func Prepare(op Op, o TaskOptions) (Prepared, error) {
	if err := op.Validate(); err != nil {
		return Prepared{}, err
	}
	payload := Canonical(op)
	if err := CheckPayloadSize(len(payload)); err != nil {
		return Prepared{}, err // unreachable for a valid operation; kept as the worker's rule
	}
	key := o.Key
	if key == "" {
		key = keyOf(op.Name(), payload)
	} else if err := CheckKey(key); err != nil {
		return Prepared{}, err
	}
	queue := o.Queue
	if queue == "" {
		queue = DefaultQueue
	} else if err := CheckID(queue); err != nil {
		return Prepared{}, &FieldError{Field: "queue", Msg: err.Error()}
	}
	maxRetry := o.MaxRetry
	switch {
	case maxRetry == 0:
		maxRetry = DefaultMaxRetry
	case maxRetry < 0:
		maxRetry = 0
	}
	window := o.DedupWindow
	if window <= 0 {
		window = DefaultDedupWindow
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	opts := []asynq.Option{
		asynq.TaskID(key),
		asynq.Queue(queue),
		asynq.MaxRetry(maxRetry),
		asynq.Retention(window),
		asynq.Timeout(timeout),
	}
	if !o.ProcessAt.IsZero() {
		opts = append(opts, asynq.ProcessAt(o.ProcessAt))
	}
	var headers map[string]string
	if o.Origin != "" {
		if err := CheckID(o.Origin); err != nil {
			return Prepared{}, &FieldError{Field: "origin", Msg: err.Error()}
		}
		headers = map[string]string{OriginHeader: o.Origin}
	}
	return Prepared{
		Key:       key,
		Queue:     queue,
		Op:        op.canonical(),
		Payload:   payload,
		MaxRetry:  maxRetry,
		Retention: window,
		Timeout:   timeout,
		ProcessAt: o.ProcessAt,
		Origin:    o.Origin,
		Task:      asynq.NewTaskWithHeaders(op.TaskType(), payload, headers, opts...),

		RequireServedQueue: o.RequireServedQueue,
	}, nil
}
