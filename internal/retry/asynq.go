package retry

import (
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
)

// Deferral is an error a handler returns when a task must wait without
// having failed: the rate limit is spent, another worker holds the task's
// lease, or the login it needs failed and is to be tried again. asynq reschedules it after About (plus up to 20 % jitter so waiting
// tasks do not stampede) without counting a retry.
type Deferral struct {
	// After is how long to wait.
	After time.Duration
	// Reason says why, for logs ("ratelimit", "lease", "login").
	Reason string
}

// Error implements error.
func (d *Deferral) Error() string {
	return fmt.Sprintf("deferred (%s) for %s", d.Reason, d.After)
}

// Policy holds the schedules used by the asynq adapters: a default and
// optional per-task-type overrides.
type Policy struct {
	// Default applies to task types without an override.
	Default Schedule
	// PerType overrides Default by asynq task type.
	PerType map[string]Schedule
	// Rand is the jitter source for deferrals; nil means math/rand.
	Rand func() float64
}

// For returns the schedule for a task type.
func (p Policy) For(taskType string) Schedule {
	if s, ok := p.PerType[taskType]; ok {
		return s
	}
	return p.Default
}

// IsFailure is asynq's Config.IsFailure: a deferral is not a failure, so it
// does not consume the task's retry budget.
func IsFailure(err error) bool {
	var d *Deferral
	return !errors.As(err, &d)
}

// RetryDelay is asynq's Config.RetryDelayFunc: deferrals wait as asked;
// failures follow the task type's schedule, honouring Retry-After.
func (p Policy) RetryDelay(n int, err error, t *asynq.Task) time.Duration {
	var d *Deferral
	if errors.As(err, &d) {
		s := p.Default.withDefaults()
		if p.Rand != nil {
			s.Rand = p.Rand
		}
		return d.After + time.Duration(0.2*s.Rand()*float64(d.After))
	}
	return p.For(t.Type()).Delay(n, RetryAfter(err))
}
