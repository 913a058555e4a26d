package batch

import "github.com/redis/go-redis/v9"

// The scripts share these Lua helpers: the count field of a state (its
// first letter), and the completion check that runs after every change.
//
//	KEYS[1] the batch hash   KEYS[2] member states   KEYS[3] member positions
const luaHelpers = `
local counts = {p = 'pending', s = 'succeeded', a = 'already_done', d = 'dead'}
local function field(state) return counts[string.sub(state, 1, 1)] end
local function touch(ttl)
  for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ttl) end
end
-- complete: a sealed batch with nothing pending is complete (returns its
-- new completion count when it becomes so); one with something pending
-- again is not.
local function complete(now)
  local pending = tonumber(redis.call('HGET', KEYS[1], 'pending') or '0')
  local at = redis.call('HGET', KEYS[1], 'completed_at') or '0'
  if pending == 0 and redis.call('HGET', KEYS[1], 'sealed') == '1' then
    if at == '0' then
      redis.call('HSET', KEYS[1], 'completed_at', now)
      return redis.call('HINCRBY', KEYS[1], 'completions', 1)
    end
  elseif at ~= '0' then
    redis.call('HSET', KEYS[1], 'completed_at', '0')
  end
  return 0
end
`

// addScript adds members to an open batch: a key already a member keeps
// its first position. It returns how many it added, -1 for an unknown (or
// expired) batch, -2 for a sealed one.
//
//	ARGV[1] TTL (ms), then per member: key, index, position entry, state
var addScript = redis.NewScript(luaHelpers + `
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if redis.call('HGET', KEYS[1], 'sealed') == '1' then return -2 end
local added = 0
for i = 2, #ARGV, 4 do
  if redis.call('HSETNX', KEYS[2], ARGV[i], ARGV[i + 3]) == 1 then
    redis.call('HSET', KEYS[3], ARGV[i + 1], ARGV[i + 2])
    redis.call('HINCRBY', KEYS[1], field(ARGV[i + 3]), 1)
    added = added + 1
  end
end
redis.call('HINCRBY', KEYS[1], 'total', added)
touch(ARGV[1])
return added
`)

// transitionScript moves one member to a state: the counts change when
// the state's kind does (a dead member's reason alone just updates). It
// returns the batch's new completion count when the move completed it,
// else 0 (also for a key that is not a member, or an expired batch).
//
//	ARGV[1] TTL (ms)   ARGV[2] now (Unix ms)   ARGV[3] member key   ARGV[4] state
var transitionScript = redis.NewScript(luaHelpers + `
local cur = redis.call('HGET', KEYS[2], ARGV[3])
if not cur or cur == ARGV[4] then return 0 end
redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
if field(cur) ~= field(ARGV[4]) then
  redis.call('HINCRBY', KEYS[1], field(cur), -1)
  redis.call('HINCRBY', KEYS[1], field(ARGV[4]), 1)
end
touch(ARGV[1])
return complete(ARGV[2])
`)

// sealScript closes an open batch to new members; it returns the new
// completion count when that completes it (nothing pending), else 0, and
// -1 for an unknown batch.
//
//	ARGV[1] TTL (ms)   ARGV[2] now (Unix ms)
var sealScript = redis.NewScript(luaHelpers + `
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
redis.call('HSET', KEYS[1], 'sealed', '1')
touch(ARGV[1])
return complete(ARGV[2])
`)

// sentScript records that completion ARGV[1]'s callback was enqueued, if
// no later one was recorded.
var sentScript = redis.NewScript(`
local sent = tonumber(redis.call('HGET', KEYS[1], 'callbacks_sent') or '0')
if tonumber(ARGV[1]) > sent then
  redis.call('HSET', KEYS[1], 'callbacks_sent', ARGV[1])
end
return 1
`)
