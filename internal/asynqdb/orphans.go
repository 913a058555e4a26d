package asynqdb

import (
	"context"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// requeueOrphansScript moves up to 1,000 active tasks of one queue whose
// lease expired before ARGV[1] back to pending, each at most ARGV[4] times
// (counted under ARGV[3]..id for a day), as asynq's recoverer would but
// without spending a retry.
//
//	KEYS[1] asynq:{q}:lease    KEYS[2] asynq:{q}:active    KEYS[3] asynq:{q}:pending
//	ARGV[1] cutoff, Unix seconds    ARGV[2] asynq:{q}:t:    ARGV[3] the counter prefix    ARGV[4] max times
var requeueOrphansScript = redis.NewScript(`
local ids = redis.call("ZRANGEBYSCORE", KEYS[1], "-inf", ARGV[1], "LIMIT", 0, 1000)
local n = 0
for _, id in ipairs(ids) do
  local seen = ARGV[3] .. id
  if redis.call("INCR", seen) <= tonumber(ARGV[4]) then
    redis.call("EXPIRE", seen, 86400)
    if redis.call("LREM", KEYS[2], 0, id) > 0 then
      redis.call("ZREM", KEYS[1], id)
      redis.call("RPUSH", KEYS[3], id)
      redis.call("HSET", ARGV[2] .. id, "state", "pending")
      n = n + 1
    end
  end
end
return n
`)

// recoveredPrefix is the prefix of meetops' per-task counters of prompt
// recoveries in queue; it carries the queue's hash tag, so the counters
// live in the queue's slot.
func recoveredPrefix(queue string) string { return "meetops:recovered:{" + queue + "}:" }

// RequeueOrphans puts the active tasks of queue whose asynq lease expired
// before cutoff back to pending, as if they had never been dequeued (no
// retry is spent), and returns how many it moved. A task is moved at most
// maxTimes within a day; after that it is left to asynq's own recoverer,
// which counts a retry each time, so a task that kills every worker that
// runs it cannot loop forever.
func RequeueOrphans(ctx context.Context, rdb redis.Scripter, queue string, cutoff time.Time, maxTimes int) (int, error) {
	return requeueOrphansScript.Run(ctx, rdb,
		[]string{LeaseKey(queue), ActiveKey(queue), PendingKey(queue)},
		strconv.FormatInt(cutoff.Unix(), 10), TaskKey(queue, ""), recoveredPrefix(queue), maxTimes).Int()
}
