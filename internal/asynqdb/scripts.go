package asynqdb

import "github.com/redis/go-redis/v9"

// enqueueScript is asynq v0.26's enqueueCmd, byte for byte (so that it has
// the same SHA1 and shares asynq's script cache entry): it refuses a task
// ID that exists, else stores the message and pushes the ID on the
// pending list.
//
//	KEYS[1] asynq:{<queue>}:t:<task id>
//	KEYS[2] asynq:{<queue>}:pending
//	ARGV[1] encoded TaskMessage
//	ARGV[2] task ID
//	ARGV[3] now, Unix nanoseconds (pending_since)
//
// It returns 1 when enqueued, 0 when the task ID exists.
var enqueueScript = redis.NewScript(enqueueSource)

const enqueueSource = `
if redis.call("EXISTS", KEYS[1]) == 1 then
	return 0
end
redis.call("HSET", KEYS[1],
           "msg", ARGV[1],
           "state", "pending",
           "pending_since", ARGV[3])
redis.call("LPUSH", KEYS[2], ARGV[2])
return 1
`

// scheduleScript is asynq v0.26's scheduleCmd, byte for byte: it refuses
// a task ID that exists, else stores the message and adds the ID to the
// scheduled set.
//
//	KEYS[1] asynq:{<queue>}:t:<task id>
//	KEYS[2] asynq:{<queue>}:scheduled
//	ARGV[1] encoded TaskMessage
//	ARGV[2] process-at time, Unix seconds
//	ARGV[3] task ID
//
// It returns 1 when scheduled, 0 when the task ID exists.
var scheduleScript = redis.NewScript(scheduleSource)

const scheduleSource = `
if redis.call("EXISTS", KEYS[1]) == 1 then
	return 0
end
redis.call("HSET", KEYS[1],
           "msg", ARGV[1],
           "state", "scheduled")
redis.call("ZADD", KEYS[2], ARGV[2], ARGV[3])
return 1
`
