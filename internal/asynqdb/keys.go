package asynqdb

import (
	"strings"

	"github.com/redis/go-redis/v9"
)

// asynq's Redis key names (internal/base/base.go). Every key of a queue
// carries the queue name as its hash tag, so on Redis Cluster one queue
// lives in one slot and one script can touch all of its keys.

// QueuesKey is the set of every queue name.
const QueuesKey = "asynq:queues"

// ResultField is the task hash's field holding the task result (what
// asynq's ResultWriter writes and TaskInfo.Result reads).
const ResultField = "result"

// QueuePrefix is the prefix of every key of queue: "asynq:{queue}:".
func QueuePrefix(queue string) string { return "asynq:{" + queue + "}:" }

// TaskKey is the hash asynq keeps task id of queue in.
func TaskKey(queue, id string) string { return QueuePrefix(queue) + "t:" + id }

// PendingKey is queue's list of pending task IDs.
func PendingKey(queue string) string { return QueuePrefix(queue) + "pending" }

// ActiveKey is queue's list of active task IDs.
func ActiveKey(queue string) string { return QueuePrefix(queue) + "active" }

// LeaseKey is queue's sorted set of active task IDs by lease expiry (Unix
// seconds).
func LeaseKey(queue string) string { return QueuePrefix(queue) + "lease" }

// ScheduledKey is queue's sorted set of scheduled task IDs by due time.
func ScheduledKey(queue string) string { return QueuePrefix(queue) + "scheduled" }

// IsDequeue reports whether cmd is a call of asynq's dequeue script, whose
// first key is a queue's pending list (internal/rdb.Dequeue). asynq's
// processor fetches one task at a time with it.
func IsDequeue(cmd redis.Cmder) bool {
	name := cmd.Name()
	if name != "evalsha" && name != "eval" {
		return false
	}
	args := cmd.Args() // EVALSHA sha numkeys key...
	if len(args) < 4 {
		return false
	}
	key, _ := args[3].(string)
	return strings.HasPrefix(key, "asynq:{") && strings.HasSuffix(key, "}:pending")
}
