package breaker

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Keys of a group's breaker. The group is their hash tag, so on Redis
// Cluster all of one group's breaker lives in one slot and one script
// touches all of it.
func stateKey(group string) string  { return "meetops:br:{" + group + "}:state" }
func windowKey(group string) string { return "meetops:br:{" + group + "}:win" }

// buckets is how many buckets Settings.Window is counted in: the window
// slides by a tenth of its length.
const buckets = 10

// stateTTL is how long a group's state outlives its last change: a
// breaker left open by a fleet that went away is closed when it restarts a
// day later.
const stateTTL = 24 * time.Hour

// readLua adds ARGV[1] attempts and ARGV[2] failures to the current bucket
// of the window KEYS[2] (buckets of ARGV[3] ms, ARGV[4] of them), forgets
// the buckets that left the window, and returns {1, now ms, attempts,
// failures, state, version, since, probe at, probe, streak}.
const readLua = `
local function read(addA, addF, bucket, n)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local cur = math.floor(now / bucket)
  if addA > 0 then
    redis.call('HINCRBY', KEYS[2], 'a' .. cur, addA)
    if addF > 0 then redis.call('HINCRBY', KEYS[2], 'f' .. cur, addF) end
    redis.call('PEXPIRE', KEYS[2], bucket * (n + 1))
  end
  local att, fail, old = 0, 0, {}
  local all = redis.call('HGETALL', KEYS[2])
  for i = 1, #all, 2 do
    local f = all[i]
    if tonumber(string.sub(f, 2)) <= cur - n then
      old[#old + 1] = f
    elseif string.sub(f, 1, 1) == 'a' then
      att = att + tonumber(all[i + 1])
    else
      fail = fail + tonumber(all[i + 1])
    end
  end
  if #old > 0 then redis.call('HDEL', KEYS[2], unpack(old)) end
  local s = redis.call('HMGET', KEYS[1], 'st', 'ver', 'since', 'pat', 'probe', 'streak')
  local out = {1, now, att, fail}
  for i = 1, 6 do out[#out + 1] = tonumber(s[i] or '0') end
  return out
end
`

// readScript is readLua as a script: KEYS state, window; ARGV attempts,
// failures, bucket ms, buckets.
var readScript = redis.NewScript(readLua + `
return read(tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]))
`)

// writeScript writes a new state over version ARGV[1]: ARGV state, since,
// probe at, probe, streak, "1" to empty the window, TTL ms, bucket ms,
// buckets. It returns {1} when written, else what readScript returns with
// 0 first: the state someone else wrote.
var writeScript = redis.NewScript(readLua + `
local ver = tonumber(redis.call('HGET', KEYS[1], 'ver') or '0')
if ver ~= tonumber(ARGV[1]) then
  local out = read(0, 0, tonumber(ARGV[9]), tonumber(ARGV[10]))
  out[1] = 0
  return out
end
redis.call('HSET', KEYS[1], 'st', ARGV[2], 'ver', ver + 1, 'since', ARGV[3], 'pat', ARGV[4], 'probe', ARGV[5], 'streak', ARGV[6])
redis.call('PEXPIRE', KEYS[1], ARGV[8])
if ARGV[7] == '1' then redis.call('DEL', KEYS[2]) end
return {1}
`)

// snapshot is one read of a group's breaker.
type snapshot struct {
	sh  Shared
	w   Window
	now time.Time // Redis's clock
}

func (b *Breaker) bucket() time.Duration { return max(b.s.Window/buckets, time.Millisecond) }

// read adds attempts and failures to group's window and returns its state,
// in one round trip.
func (b *Breaker) read(ctx context.Context, group string, attempts, failures int) (snapshot, error) {
	res, err := readScript.Run(ctx, b.rdb, []string{stateKey(group), windowKey(group)},
		attempts, failures, b.bucket().Milliseconds(), buckets).Int64Slice()
	if err != nil {
		return snapshot{}, fmt.Errorf("breaker: %s: %w", group, err)
	}
	return parse(group, res)
}

// write stores next over the version of prev. It returns whether it did,
// and otherwise the state found instead.
func (b *Breaker) write(ctx context.Context, group string, prev, next Shared) (bool, snapshot, error) {
	reset := "0"
	if next.State == Closed {
		reset = "1" // a closed breaker counts afresh
	}
	res, err := writeScript.Run(ctx, b.rdb, []string{stateKey(group), windowKey(group)},
		prev.Version, int(next.State), ms(next.Since), ms(next.ProbeAt), next.Probe, next.Streak, reset,
		stateTTL.Milliseconds(), b.bucket().Milliseconds(), buckets).Int64Slice()
	if err != nil {
		return false, snapshot{}, fmt.Errorf("breaker: %s: %w", group, err)
	}
	if len(res) == 1 && res[0] == 1 {
		return true, snapshot{}, nil
	}
	s, err := parse(group, res)
	return false, s, err
}

func parse(group string, res []int64) (snapshot, error) {
	if len(res) != 10 {
		return snapshot{}, fmt.Errorf("breaker: %s: unexpected answer %v", group, res)
	}
	return snapshot{
		now: time.UnixMilli(res[1]),
		w:   Window{Attempts: int(res[2]), Failures: int(res[3])},
		sh: Shared{State: State(res[4]), Version: res[5], Since: unms(res[6]), ProbeAt: unms(res[7]),
			Probe: res[8], Streak: int(res[9])},
	}, nil
}

func ms(t time.Time) string {
	if t.IsZero() {
		return "0"
	}
	return strconv.FormatInt(t.UnixMilli(), 10)
}

func unms(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v)
}
