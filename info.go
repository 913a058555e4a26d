package meetops

// Task states, as asynq reports them.
const (
	StatePending   = "pending"
	StateScheduled = "scheduled"
	StateActive    = "active"
	StateRetry     = "retry"
	StateArchived  = "archived" // a dead letter
	StateCompleted = "completed"
)

// Info describes an enqueued task.
type Info struct {
	// Key is the idempotency key, which is also the asynq task ID.
	Key string `json:"key"`
	// Queue is the queue the task is in.
	Queue string `json:"queue"`
	// State is the task's state (see the State constants).
	State string `json:"state"`
	// Duplicate is true when the same operation was already enqueued under
	// Key and this call changed nothing; State is then the existing task's.
	Duplicate bool `json:"duplicate"`
	// Unserved is true when no running worker serves Queue, as the client
	// last saw (see DefaultServedQueuesTTL): the task waits until a worker
	// that serves Queue starts. It is a warning, not an error; CheckQueues
	// words it (QueueCheck.Warning), RequireServedQueue refuses such an
	// enqueue instead. It is false when the check could not be made.
	Unserved bool `json:"unserved,omitempty"`
}
