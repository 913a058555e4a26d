// Package ledger is the idempotency execution ledger: a Redis record per
// idempotency key of whether its operation was started, succeeded or
// definitively failed, plus a lease so that one key never runs on two
// workers at once.
//
// asynq delivers at least once; the ledger turns that into "takes effect
// once": a key whose entry says succeeded completes without calling
// upstream, and an entry that says started tells the next attempt that an
// earlier one may have reached upstream.
package ledger

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// State is where an operation stands.
type State string

// The ledger states.
const (
	// None: no attempt recorded (or the entry expired).
	None State = ""
	// Started: an attempt began and may have reached upstream.
	Started State = "started"
	// Succeeded: the operation took effect; Entry.Result holds the result.
	Succeeded State = "succeeded"
	// Failed: an attempt got a definitive answer that it did not take
	// effect (a dead letter); a requeued task starts afresh.
	Failed State = "failed"
)

// ErrLeaseHeld is returned by Begin when another worker is executing the key.
var ErrLeaseHeld = errors.New("ledger: lease held by another worker")

// Entry is the ledger's record of one key.
type Entry struct {
	State    State
	Attempts int
	// Result is the task result recorded with Succeeded.
	Result []byte
}

// Defaults.
const (
	// DefaultTTL is how long an entry lives after its last write: the dedup
	// window.
	DefaultTTL = 24 * time.Hour
	// DefaultLease is how long a lease lasts unless released.
	DefaultLease = 2 * time.Minute
)

// Ledger stores entries in Redis.
type Ledger struct {
	rdb   redis.UniversalClient
	ttl   time.Duration
	lease time.Duration
}

// Options configure a Ledger; zero values mean defaults.
type Options struct {
	// TTL is the entry lifetime after its last write; 0 means 24 h.
	TTL time.Duration
	// Lease is the lease lifetime; 0 means 2 min. It must outlast one
	// attempt; a crashed worker's lease expires after it.
	Lease time.Duration
}

// New returns a ledger on rdb.
func New(rdb redis.UniversalClient, o Options) *Ledger {
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	if o.Lease <= 0 {
		o.Lease = DefaultLease
	}
	return &Ledger{rdb: rdb, ttl: o.TTL, lease: o.Lease}
}

func entryKey(key string) string { return "meetops:ledger:" + key }
func leaseKey(key string) string { return "meetops:lease:" + key }

// Lease is the right to execute one key, returned by Begin.
type Lease struct {
	key   string
	token string
}

// beginScript takes the lease and, unless the entry says succeeded, marks
// it started and counts the attempt. It returns the previous state,
// attempts and result.
var beginScript = redis.NewScript(`
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) == false then
  return false
end
local prev = redis.call('HMGET', KEYS[1], 'state', 'attempts', 'result')
if prev[1] == 'succeeded' then
  return {prev[1], prev[2] or '0', prev[3] or ''}
end
local n = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('HSET', KEYS[1], 'state', 'started')
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {prev[1] or '', tostring(n - 1), ''}
`)

// Begin takes key's lease and records the start of an attempt. It returns
// the entry as it was before: when that says Succeeded nothing was changed
// and the caller completes without calling upstream. When another worker
// holds the lease it returns ErrLeaseHeld.
func (l *Ledger) Begin(ctx context.Context, key string) (Entry, *Lease, error) {
	token := newToken()
	res, err := beginScript.Run(ctx, l.rdb, []string{entryKey(key), leaseKey(key)},
		token, l.lease.Milliseconds(), l.ttl.Milliseconds()).Result()
	if errors.Is(err, redis.Nil) {
		return Entry{}, nil, ErrLeaseHeld
	}
	if err != nil {
		return Entry{}, nil, fmt.Errorf("ledger: begin %s: %w", key, err)
	}
	vals, ok := res.([]any)
	if !ok || len(vals) != 3 {
		return Entry{}, nil, fmt.Errorf("ledger: begin %s: unexpected reply %v", key, res)
	}
	state, _ := vals[0].(string)
	attempts, _ := strconv.Atoi(fmt.Sprint(vals[1]))
	result, _ := vals[2].(string)
	e := Entry{State: State(state), Attempts: attempts}
	if result != "" {
		e.Result = []byte(result)
	}
	return e, &Lease{key: key, token: token}, nil
}

// finishScript records the outcome and releases the lease if still ours.
var finishScript = redis.NewScript(`
if ARGV[2] ~= '' then
  redis.call('HSET', KEYS[1], 'state', ARGV[2], 'result', ARGV[3])
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
end
if redis.call('GET', KEYS[2]) == ARGV[1] then
  redis.call('DEL', KEYS[2])
end
return 1
`)

// Succeed records that the operation took effect, with its result, and
// releases the lease.
func (l *Ledger) Succeed(ctx context.Context, ls *Lease, result []byte) error {
	return l.finish(ctx, ls, Succeeded, result)
}

// Fail records a definitive failure (a dead letter that did not take
// effect) and releases the lease.
func (l *Ledger) Fail(ctx context.Context, ls *Lease) error {
	return l.finish(ctx, ls, Failed, nil)
}

// Release releases the lease and leaves the entry as it is (Started): the
// attempt failed in a way that may have reached upstream.
func (l *Ledger) Release(ctx context.Context, ls *Lease) error {
	return l.finish(ctx, ls, None, nil)
}

func (l *Ledger) finish(ctx context.Context, ls *Lease, s State, result []byte) error {
	err := finishScript.Run(ctx, l.rdb, []string{entryKey(ls.key), leaseKey(ls.key)},
		ls.token, string(s), result, l.ttl.Milliseconds()).Err()
	if err != nil {
		return fmt.Errorf("ledger: record %q for %s: %w", s, ls.key, err)
	}
	return nil
}

// Get returns key's entry (State None when there is none).
func (l *Ledger) Get(ctx context.Context, key string) (Entry, error) {
	vals, err := l.rdb.HMGet(ctx, entryKey(key), "state", "attempts", "result").Result()
	if err != nil {
		return Entry{}, fmt.Errorf("ledger: get %s: %w", key, err)
	}
	var e Entry
	if s, ok := vals[0].(string); ok {
		e.State = State(s)
	}
	if s, ok := vals[1].(string); ok {
		e.Attempts, _ = strconv.Atoi(s)
	}
	if s, ok := vals[2].(string); ok && s != "" {
		e.Result = []byte(s)
	}
	return e, nil
}

// Reset prepares key's entry for a requeued dead letter. A Failed entry
// (a definitive answer that it did not take effect) is forgotten, so the
// next run is a first attempt. A Started entry is kept: an earlier attempt
// may have reached upstream, so the operation's "already done" answer must
// still count as success. A Succeeded entry is an error: that operation took
// effect and must not run again.
func (l *Ledger) Reset(ctx context.Context, key string) error {
	e, err := l.Get(ctx, key)
	if err != nil {
		return err
	}
	switch e.State {
	case Succeeded:
		return fmt.Errorf("ledger: reset %s: the operation already succeeded", key)
	case None, Started:
		return nil
	}
	if err := l.rdb.Del(ctx, entryKey(key)).Err(); err != nil {
		return fmt.Errorf("ledger: reset %s: %w", key, err)
	}
	return nil
}

func newToken() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b[:])
}
