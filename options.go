package meetops

import (
	"fmt"
	"time"

	"github.com/meetops/meetops/internal/tasks"
)

// ClientOption configures a Client.
type ClientOption func(*clientConfig)

type clientConfig struct {
	dialTimeout time.Duration
	dedupWindow time.Duration
	ackReplicas int // from RedisConfig.AckReplicas
	// callbackHosts is the batch callback allow-list.
	callbackHosts []string
	// servedTTL is how long the served queues are trusted.
	servedTTL time.Duration
}

// WithDialTimeout bounds how long NewClient's and NewClientFromConfig's
// connections take to establish (go-redis' DialTimeout; default 5 s). It
// has no effect on NewClientFromRedis, whose caller configured the
// connection.
func WithDialTimeout(d time.Duration) ClientOption {
	return func(c *clientConfig) { c.dialTimeout = d }
}

// WithDedupWindow sets how long a completed task is retained so that
// enqueueing it again is reported as a duplicate (default 24 h). Use the
// worker's DEDUP_WINDOW.
func WithDedupWindow(d time.Duration) ClientOption {
	return func(c *clientConfig) { c.dedupWindow = d }
}

// WithCallbackHosts allows batch callbacks to these hosts (host names or
// IP literals, no ports; the worker's CALLBACK_ALLOW_HOSTS): CreateBatch
// refuses any other callback URL, and any that resolves to a loopback,
// private or link-local address unless its host is that address as a
// listed IP literal. Without it every callback URL is refused.
func WithCallbackHosts(hosts ...string) ClientOption {
	return func(c *clientConfig) { c.callbackHosts = hosts }
}

// Option configures one Enqueue call.
type Option func(*tasks.TaskOptions) error

// WithKey sets the idempotency key (the asynq task ID) instead of deriving
// it from the payload. Reusing a key with a different payload in the same
// queue fails with ErrKeyReused. A key is unique per queue, as asynq task
// IDs are: do not reuse one key for different operations across queues.
func WithKey(key string) Option {
	return func(o *tasks.TaskOptions) error {
		o.Key = key
		return tasks.CheckKey(key)
	}
}

// WithQueue sends the task to queue (default "default").
func WithQueue(queue string) Option {
	return func(o *tasks.TaskOptions) error {
		if err := tasks.CheckID(queue); err != nil {
			return &FieldError{Field: "queue", Msg: err.Error()}
		}
		o.Queue = queue
		return nil
	}
}

// ProcessAt schedules the task for t instead of now.
func ProcessAt(t time.Time) Option {
	return func(o *tasks.TaskOptions) error {
		o.ProcessAt = t
		return nil
	}
}

// ProcessIn schedules the task d from now.
func ProcessIn(d time.Duration) Option {
	return func(o *tasks.TaskOptions) error {
		if d < 0 {
			return &FieldError{Field: "process_in", Msg: fmt.Sprintf("must not be negative, got %s", d)}
		}
		o.ProcessAt = time.Now().Add(d)
		return nil
	}
}

// WithOrigin records who enqueues the operation (a service's name, an API
// token's NAME) in its task, where Status reports it as Origin. It is not
// part of the payload: the key and the duplicate rules do not depend on
// it, and a duplicate keeps the origin of the task that holds the key.
// An origin follows the rules of an ID (1–128 bytes of UTF-8, no control
// characters).
func WithOrigin(origin string) Option {
	return func(o *tasks.TaskOptions) error {
		o.Origin = origin
		return nil
	}
}

// WithMaxRetry sets how many times a transient failure is retried before
// the task is dead-lettered (default 12); 0 means never.
func WithMaxRetry(n int) Option {
	return func(o *tasks.TaskOptions) error {
		switch {
		case n < 0:
			return &FieldError{Field: "max_retry", Msg: fmt.Sprintf("must not be negative, got %d", n)}
		case n == 0:
			o.MaxRetry = tasks.NoRetry
		default:
			o.MaxRetry = n
		}
		return nil
	}
}
