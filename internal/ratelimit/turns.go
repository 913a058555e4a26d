package ratelimit

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// The waiting room. Each group's budget is a GCRA with burst 1 (one call
// per Interval, evenly spaced), and the tasks that asked for it and must
// wait are kept in Redis beside it, ordered by priority and then by when
// they first asked. A call slot goes to the best waiter that is asking or
// about to ask: a task of a higher-priority queue takes the next slot ahead
// of lower-priority ones that came first, across all workers.
//
// Every waiter is told when its turn comes (its rank times Interval after
// the next free slot), so a task comes back once, when it can go, instead
// of asking again and again: waiting tasks cost one script call each, not
// one per slot. A waiter only holds back others while it is due (its turn
// within one Interval, or late by at most one Interval plus a second); one
// that does not come back (its worker died, it was deleted) stops blocking
// then and is forgotten after turnGrace.
//
// Lower queues are not starved: once share-1 slots in a row went to higher
// priorities while lower-priority tasks waited, the next slot goes to a
// lower-priority waiter that is due (the share, default 10: at least about
// 1 slot in 10). A waiter behind higher priorities comes back at least
// every share slots, since its turn cannot be foretold.

// turnGrace is how long after its turn a waiter that has not come back is
// kept in the waiting room (it keeps its place if it is merely late).
const turnGrace = 30 * time.Second

// DefaultShare is the default Options.Share.
const DefaultShare = 10

// maxPriority bounds the priority a waiter can have (queue weights are
// small numbers); higher values count as maxPriority.
const maxPriority = 100

// Keys of a group's waiting room, in the group's slot.
func tatKey(group string) string     { return "meetops:rl:{" + group + "}:tat" }
func waitersKey(group string) string { return "meetops:rl:{" + group + "}:w" }
func turnsKey(group string) string   { return "meetops:rl:{" + group + "}:due" }
func starveKey(group string) string  { return "meetops:rl:{" + group + "}:starve" }
func seqKey(group string) string     { return "meetops:rl:{" + group + "}:seq" }

// WaitersKey is the Redis key of group's waiting room, a sorted set of the
// keys of the tasks waiting for a slot (for tools that measure it).
func WaitersKey(group string) string { return waitersKey(group) }

// askScript answers one task's ask for a call slot of a group: {0, 1} when
// it may call now, {wait ms, 0} when it must wait that long (the group's
// throttle pause, or its turn), in one round trip.
//
// KEYS: tat, pause, waiters (zset: rank score), turns (zset: due ms),
// starve counter, arrival counter. ARGV: interval ms, task key, priority,
// share, grace ms. A waiter's rank score is (101 - priority) * 1e13 + its
// arrival number: lower is better, FIFO within a priority; exact in a
// double.
var askScript = redis.NewScript(`
local function fmt(x) return string.format('%.0f', x) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local key = ARGV[2]
local band = 101 - tonumber(ARGV[3])
local share = tonumber(ARGV[4])
local grace = tonumber(ARGV[5])

local pttl = redis.call('PTTL', KEYS[2])
if pttl > 0 then return {pttl, 0} end

local gone = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', fmt(now - grace), 'LIMIT', 0, 64)
if #gone > 0 then
  redis.call('ZREM', KEYS[3], unpack(gone))
  redis.call('ZREM', KEYS[4], unpack(gone))
end

local mine = redis.call('ZSCORE', KEYS[3], key)
if mine then mine = tonumber(mine) else mine = band * 1e13 + redis.call('INCR', KEYS[6]) end
local starve = tonumber(redis.call('GET', KEYS[5]) or '0')

local function due(m)
  local d = redis.call('ZSCORE', KEYS[4], m)
  if not d then return false end
  d = tonumber(d)
  return d <= now + interval and d >= now - interval - 1000
end

-- Is a better waiter due? One of this task's own priority always holds it
-- back; a higher-priority one does unless the lower ones' share is owed.
local owed = starve >= share - 1
local blocked = false
local higher = false
local ahead = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', '(' .. fmt(mine), 'WITHSCORES', 'LIMIT', 0, 32)
for i = 1, #ahead, 2 do
  local m, s = ahead[i], tonumber(ahead[i + 1])
  local mband = math.floor(s / 1e13)
  if mband < band then higher = true end
  if m ~= key and due(m) and (mband == band or not owed) then
    blocked = true
    break
  end
end
-- When the share is owed, a due lower-priority waiter goes first.
local lowerFrom = '(' .. fmt((band + 1) * 1e13 - 1)
if not blocked and owed then
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], lowerFrom, '+inf', 'LIMIT', 0, 32)) do
    if due(m) then blocked = true break end
  end
end

local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
if not blocked and tat <= now then
  redis.call('SET', KEYS[1], fmt(tat + interval), 'PX', interval + 1000)
  redis.call('ZREM', KEYS[3], key)
  redis.call('ZREM', KEYS[4], key)
  -- Count the slots that went to a higher priority while lower ones wait.
  if redis.call('ZCOUNT', KEYS[3], lowerFrom, '+inf') > 0 then
    redis.call('SET', KEYS[5], starve + 1, 'PX', 3600000)
  else
    redis.call('DEL', KEYS[5])
  end
  return {0, 1}
end

local rank = redis.call('ZCOUNT', KEYS[3], '-inf', '(' .. fmt(mine))
local wait = (tat - now) + rank * interval
-- Behind higher priorities the turn cannot be foretold (they keep
-- arriving, and the share decides): come back at least every share slots.
if higher and wait > share * interval then wait = share * interval end
if wait < 1 then wait = 1 end
redis.call('ZADD', KEYS[3], fmt(mine), key)
redis.call('ZADD', KEYS[4], fmt(now + wait), key)
local keep = wait + grace
for i = 3, 4 do
  if redis.call('PTTL', KEYS[i]) < keep then redis.call('PEXPIRE', KEYS[i], keep) end
end
return {wait, 0}
`)

// ask runs askScript for one task of group.
func (l *Limiter) ask(ctx context.Context, group string, lim Limit, key string, priority int) (time.Duration, bool, error) {
	priority = min(max(priority, 0), maxPriority)
	keys := []string{tatKey(group), pauseKey(group), waitersKey(group), turnsKey(group), starveKey(group), seqKey(group)}
	res, err := askScript.Run(ctx, l.rdb, keys, max(lim.Interval().Milliseconds(), 1), key, priority, l.share, turnGrace.Milliseconds()).Int64Slice()
	if err != nil {
		return 0, false, fmt.Errorf("ratelimit: %s: %w", group, err)
	}
	if len(res) != 2 {
		return 0, false, fmt.Errorf("ratelimit: %s: unexpected answer %v", group, res)
	}
	return time.Duration(res[0]) * time.Millisecond, res[1] == 1, nil
}
