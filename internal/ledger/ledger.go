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
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/meetops/meetops/internal/groupcommit"
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
	// DefaultLease is how long a lease lasts unless renewed (KeepAlive) or
	// released: after a worker dies, its keys are free again this soon.
	DefaultLease = 30 * time.Second
)

// Ledger stores entries in Redis.
type Ledger struct {
	rdb         redis.UniversalClient
	ttl         time.Duration
	lease       time.Duration
	subscribers func(key string) string
	keep        keeper
	// group sends Begin's and Succeed's commands, those of concurrent
	// attempts in one round trip.
	group *groupcommit.Group
}

// Options configure a Ledger; zero values mean defaults.
type Options struct {
	// TTL is the entry lifetime after its last write; 0 means 24 h.
	TTL time.Duration
	// Lease is the lease lifetime; 0 means 30 s. A running attempt renews
	// it (KeepAlive); a crashed worker's lease expires after it.
	Lease time.Duration
	// Subscribers, when set, names for an idempotency key a Redis set in
	// the same Cluster slot (the key as hash tag) whose members want to hear
	// of the key's outcomes: Succeed, Fail and Release read it in the same
	// script, at no extra round trip, and Lease.Subscribers returns it. The
	// batch records use it to find the batches a task belongs to. Nil: none.
	Subscribers func(key string) string
	// Group, when set, sends Begin's and Succeed's commands in the round
	// trips it shares with its other callers (the worker's: asynq's and
	// the ledger's script calls, through Group.Hook). Nil: a group of the
	// ledger's own on rdb.
	Group *groupcommit.Group
}

// New returns a ledger on rdb.
func New(rdb redis.UniversalClient, o Options) *Ledger {
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	if o.Lease <= 0 {
		o.Lease = DefaultLease
	}
	if o.Group == nil {
		o.Group = groupcommit.New(rdb)
	}
	return &Ledger{rdb: rdb, ttl: o.TTL, lease: o.Lease, subscribers: o.Subscribers, group: o.Group}
}

// Redis keys. The idempotency key is the hash tag, so an entry and its lease
// live on one Redis Cluster slot and one script can touch both.
func entryKey(key string) string { return "meetops:l:{" + key + "}" }
func leaseKey(key string) string { return "meetops:lease:{" + key + "}" }

// An entry is one string, as small as it can be since one is kept per task
// for the whole dedup window: a state letter, the attempt count, and for a
// succeeded entry "|" and the result. "R2" is started after 2 attempts,
// "S1|{…}" succeeded, "F1" failed; a first attempt's marker also names the
// attempt's lease token, "R1.<token>" (see begin), until its outcome
// replaces it.
const (
	codeStarted   = "R"
	codeSucceeded = "S"
	codeFailed    = "F"
)

func decode(v string) Entry {
	if v == "" {
		return Entry{}
	}
	var e Entry
	switch v[:1] {
	case codeStarted:
		e.State = Started
	case codeSucceeded:
		e.State = Succeeded
	case codeFailed:
		e.State = Failed
	}
	// The attempt count, then "|" and a result, or "." and a token.
	rest := v[1:]
	i := 0
	for i < len(rest) && '0' <= rest[i] && rest[i] <= '9' {
		i++
	}
	e.Attempts, _ = strconv.Atoi(rest[:i])
	if result, ok := strings.CutPrefix(rest[i:], "|"); ok && result != "" {
		e.Result = []byte(result)
	}
	return e
}

// Lease is the right to execute one key, returned by Begin.
type Lease struct {
	key   string
	token string
	// attempts is the attempt count Begin recorded.
	attempts int
	// prev is the entry as Begin found it ("" for none), for Unbegin.
	prev string
	// subscribers is what the last Succeed, Fail or Release read of the
	// key's subscriber set (Options.Subscribers); began what Begin read.
	subscribers, began []string
}

// BeganWith returns the members of the key's subscriber set as Begin read
// them, so that a caller can act on them in Succeed's round trip (see
// Succeed's more); Subscribers after Succeed says whether one joined since.
func (ls *Lease) BeganWith() []string { return ls.began }

// Subscribers returns the members of the key's subscriber set as the last
// Succeed, Fail or Release on ls read them (nil without
// Options.Subscribers, or before).
func (ls *Lease) Subscribers() []string { return ls.subscribers }

// Begin is plain commands in one pipeline, not a script: a script call
// costs Redis several times what its commands do, and Begin runs once per
// attempt. In order, with the idempotency key's entry E and lease L:
//
//	SET L token NX PX lease   take the lease if it is free
//	GET L                     who holds it now
//	GET E                     the entry, read while we hold the lease
//	SET E "R1.token" NX PX ttl   a first attempt's started marker
//	SMEMBERS subscribers      (with Options.Subscribers)
//
// The lease is taken before the entry is read, so no other attempt can
// begin between the read and what this one does with it. When the lease is
// someone else's, the last SET may still have marked a missing entry
// started, by our token: harmless, since the holder is running the key (a
// conservative started marker only means a later "already done" answer
// counts as success).
//
// A first attempt is done in that round trip. A later attempt (the entry
// says started or failed) counts itself with bumpScript in a second round
// trip, holding the lease meanwhile; a succeeded entry is left alone.
//
// When a reply is lost (Redis restarted mid-call) go-redis sends the
// pipeline again, and the resend must answer what the first send saw. It
// finds the lease already ours; the entry tagged with our token means the
// first send created it (the previous entry was none), and a lease value
// "token|prev" means bumpScript ran and prev is what it replaced.
func (l *Ledger) begin(ctx context.Context, key, token string) (Entry, *Lease, error) {
	ek, lk := entryKey(key), leaseKey(key)
	marker := startedBy(token)
	var (
		took          *redis.BoolCmd
		holder, entry *redis.StringCmd
		subs          *redis.StringSliceCmd
	)
	// In the round trip of concurrent attempts' commands.
	l.group.Do(ctx, func(p redis.Pipeliner) {
		took = p.SetNX(ctx, lk, token, l.lease)
		holder = p.Get(ctx, lk)
		entry = p.Get(ctx, ek)
		p.SetNX(ctx, ek, marker, l.ttl)
		if l.subscribers != nil {
			subs = p.SMembers(ctx, l.subscribers(key))
		}
	})
	cmds := []redis.Cmder{took, holder, entry}
	if subs != nil {
		cmds = append(cmds, subs)
	}
	for _, c := range cmds {
		if err := c.Err(); err != nil && !errors.Is(err, redis.Nil) {
			return Entry{}, nil, fmt.Errorf("ledger: begin %s: %w", key, err)
		}
	}
	h := holder.Val()
	if !strings.HasPrefix(h, token) {
		// Held by another attempt, or released by it since our SET.
		return Entry{}, nil, ErrLeaseHeld
	}
	ls := &Lease{key: key, token: token}
	if subs != nil && len(subs.Val()) > 0 {
		ls.began = subs.Val()
	}
	prev := entry.Val()
	switch {
	case len(h) > len(token):
		// A resend after bumpScript: the entry it replaced.
		prev = h[len(token)+1:]
	case prev == "":
		// No entry: ours is the first attempt, and our SET marked it.
	case prev == marker && !took.Val():
		// A resend after a first attempt's round trip: its own marker.
		prev = ""
	default:
		if e := decode(prev); e.State != Succeeded {
			if err := l.bump(ctx, ls, prev, codeStarted+strconv.Itoa(e.Attempts+1)); err != nil {
				return Entry{}, nil, err
			}
		}
	}
	e := decode(prev)
	ls.attempts, ls.prev = e.Attempts+1, prev
	return e, ls, nil
}

// startedBy is a first attempt's started marker: attempt 1, and the token
// of the attempt that wrote it (decode reads it as R1).
func startedBy(token string) string { return codeStarted + "1." + token }

// bumpScript records a later attempt: while the lease is ours (KEYS[2],
// token ARGV[1]), it sets the entry to ARGV[2] and keeps the entry it
// replaced (ARGV[3]) in the lease's value, for a resend of Begin.
var bumpScript = redis.NewScript(`
local holder = redis.call('GET', KEYS[2])
if not holder or string.sub(holder, 1, #ARGV[1]) ~= ARGV[1] then
  return false
end
redis.call('SET', KEYS[2], ARGV[1] .. '|' .. ARGV[3], 'PX', ARGV[4])
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[5])
return 1
`)

// bump runs bumpScript for ls; ErrLeaseHeld when the lease was lost
// meanwhile.
func (l *Ledger) bump(ctx context.Context, ls *Lease, prev, value string) error {
	keys := []string{entryKey(ls.key), leaseKey(ls.key)}
	args := []any{ls.token, value, prev, l.lease.Milliseconds(), l.ttl.Milliseconds()}
	// In the round trip of concurrent attempts' commands; a pipeline
	// cannot fall back from EVALSHA to EVAL by itself, so when Redis does
	// not know the script yet (first use, or after a restart) it is sent
	// in full once.
	var cmd *redis.Cmd
	l.group.Do(ctx, func(p redis.Pipeliner) { cmd = bumpScript.EvalSha(ctx, p, keys, args...) })
	err := cmd.Err()
	if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		err = bumpScript.Run(ctx, l.rdb, keys, args...).Err()
	}
	if errors.Is(err, redis.Nil) {
		return ErrLeaseHeld
	}
	if err != nil {
		return fmt.Errorf("ledger: begin %s: %w", ls.key, err)
	}
	return nil
}

// Begin takes key's lease and records the start of an attempt. It returns
// the entry as it was before: when that says Succeeded nothing was changed
// and the caller completes without calling upstream. When another worker
// holds the lease it returns ErrLeaseHeld.
func (l *Ledger) Begin(ctx context.Context, key string) (Entry, *Lease, error) {
	return l.begin(ctx, key, newToken())
}

// unbeginScript restores the entry Begin found (ARGV[2]; empty deletes it)
// and releases the lease, only while the lease is still ours: otherwise
// another attempt may have begun since, and the entry is left alone.
var unbeginScript = redis.NewScript(`
local holder = redis.call('GET', KEYS[2])
if not holder or string.sub(holder, 1, #ARGV[1]) ~= ARGV[1] then
  return 0
end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
redis.call('DEL', KEYS[2])
return 1
`)

// Unbegin releases the lease of an attempt that certainly did not reach
// upstream (its login failed before the operation was sent, or the
// operation was refused unauthenticated) and restores the entry as Begin
// found it: the attempt is not counted, and a later "already done" answer
// is not taken for its effect. A lease no longer held is left alone.
func (l *Ledger) Unbegin(ctx context.Context, ls *Lease) error {
	keys := []string{entryKey(ls.key), leaseKey(ls.key)}
	if err := unbeginScript.Run(ctx, l.rdb, keys, ls.token, ls.prev, l.ttl.Milliseconds()).Err(); err != nil {
		return fmt.Errorf("ledger: unbegin %s: %w", ls.key, err)
	}
	return nil
}

// finishScript records the outcome (unless ARGV[2] is empty) and releases
// the lease if it is still ours. With a third key, the subscriber set, it
// returns that set's members.
var finishScript = redis.NewScript(`
if ARGV[2] ~= '' then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
local holder = redis.call('GET', KEYS[2])
if holder and string.sub(holder, 1, #ARGV[1]) == ARGV[1] then
  redis.call('DEL', KEYS[2])
end
if KEYS[3] then
  return redis.call('SMEMBERS', KEYS[3])
end
return {}
`)

// finishKeys are the keys of finishScript for ls.
func (l *Ledger) finishKeys(ls *Lease) []string {
	keys := []string{entryKey(ls.key), leaseKey(ls.key)}
	if l.subscribers != nil {
		keys = append(keys, l.subscribers(ls.key))
	}
	return keys
}

// subscribersOf decodes finishScript's reply.
func subscribersOf(v any) []string {
	arr, _ := v.([]any)
	if len(arr) == 0 {
		return nil
	}
	out := make([]string, 0, len(arr))
	for _, m := range arr {
		if s, ok := m.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// HashField is a Redis hash field to set.
type HashField struct {
	Key, Field string
	Value      []byte
}

// Succeed records that the operation took effect, with its result, and
// releases the lease. When also.Key is set, that hash field is written
// first in the same round trip: the handler passes the asynq task's own
// hash and its result JSON, which is what asynq's ResultWriter writes,
// saving a round trip per task. more, when given, adds the caller's own
// commands to that round trip (the executor's batch updates), after the
// ledger's.
//
// Unlike Fail and Release, Succeed is plain commands, not a script (a
// script call is most of what a task costs Redis): the entry is set and
// the lease deleted without checking that the lease is still ours. That
// is safe because of what the entry then says. Had our lease run out and
// another attempt begun meanwhile, deleting its lease lets the next Begin
// in, and that Begin finds Succeeded and completes without calling
// upstream; the attempt already running was running before (Fail and
// Release, whose entry lets the next Begin call upstream, keep checking).
func (l *Ledger) Succeed(ctx context.Context, ls *Lease, result []byte, also HashField, more ...func(redis.Pipeliner)) error {
	value := codeSucceeded + strconv.Itoa(ls.attempts) + "|" + string(result)
	var (
		set  *redis.StatusCmd
		hset *redis.IntCmd
		subs *redis.StringSliceCmd
	)
	// In the round trip of concurrent attempts' commands.
	l.group.Do(ctx, func(p redis.Pipeliner) {
		if also.Key != "" {
			hset = p.HSet(ctx, also.Key, also.Field, also.Value)
		}
		set = p.Set(ctx, entryKey(ls.key), value, l.ttl)
		p.Del(ctx, leaseKey(ls.key))
		if l.subscribers != nil {
			subs = p.SMembers(ctx, l.subscribers(ls.key))
		}
		for _, m := range more {
			m(p)
		}
	})
	// Only the ledger's own commands decide; more's are the caller's to
	// inspect. (A lease left behind by a failed DEL runs out by itself,
	// and until then a Begin is refused and retried, then finds the
	// entry.)
	err := set.Err()
	if hset != nil && hset.Err() != nil {
		err = hset.Err()
	}
	if subs != nil && subs.Err() != nil && err == nil {
		err = subs.Err()
	}
	if err != nil {
		return fmt.Errorf("ledger: record success for %s: %w", ls.key, err)
	}
	ls.subscribers = nil
	if subs != nil && len(subs.Val()) > 0 {
		ls.subscribers = subs.Val()
	}
	return nil
}

// renewScript extends the lease if it is still ours.
var renewScript = redis.NewScript(`
local holder = redis.call('GET', KEYS[1])
if holder and string.sub(holder, 1, #ARGV[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`)

// KeepAlive keeps ls renewed until the returned stop function is called,
// so an attempt longer than the lease keeps it while a dead worker's lease
// runs out quickly. Each lease is renewed once it is a third of the lease
// lifetime old, and every third after; the ledger's one renewal goroutine
// does that for all the leases kept alive at once, in one pipeline. An
// attempt that ends within a third of the lease (almost all do) costs a
// map insert and delete: no timer, no goroutine, no Redis call.
func (l *Ledger) KeepAlive(ctx context.Context, ls *Lease) (stop func()) {
	l.keep.add(l, ls)
	return func() { l.keep.remove(ls) }
}

// keeper renews the leases of running attempts.
type keeper struct {
	mu      sync.Mutex
	leases  map[*Lease]time.Time // when each was last taken or renewed
	running bool
}

func (k *keeper) add(l *Ledger, ls *Lease) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.leases == nil {
		k.leases = map[*Lease]time.Time{}
	}
	k.leases[ls] = time.Now()
	if !k.running {
		k.running = true
		go k.run(l)
	}
}

func (k *keeper) remove(ls *Lease) {
	k.mu.Lock()
	delete(k.leases, ls)
	k.mu.Unlock()
}

// run renews due leases every sixth of the lease lifetime (so a lease is
// renewed between a third and half of its lifetime after the last
// renewal), and ends when no lease is left to keep.
func (k *keeper) run(l *Ledger) {
	tick := time.NewTicker(l.lease / 6)
	defer tick.Stop()
	ctx := context.Background()
	for range tick.C {
		k.mu.Lock()
		if len(k.leases) == 0 {
			k.running = false
			k.mu.Unlock()
			return
		}
		now := time.Now()
		var due []*Lease
		for ls, at := range k.leases {
			if now.Sub(at) >= l.lease/3 {
				due = append(due, ls)
				k.leases[ls] = now
			}
		}
		k.mu.Unlock()
		if len(due) == 0 {
			continue
		}
		// A failed renewal is retried at the next tick; if Redis stays
		// away the attempts' own calls fail too.
		renew := func(eval func(ctx context.Context, c redis.Scripter, keys []string, args ...any) *redis.Cmd) error {
			_, err := l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
				for _, ls := range due {
					eval(ctx, p, []string{leaseKey(ls.key)}, ls.token, l.lease.Milliseconds())
				}
				return nil
			})
			return err
		}
		// As in Succeed: a pipeline cannot fall back to EVAL by itself.
		if err := renew(renewScript.EvalSha); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			_ = renew(renewScript.Eval)
		}
	}
}

// SetIfAbsent sets a hash field unless it is already set (HSETNX): how a
// redelivered task gets its result without losing the one already there.
func (l *Ledger) SetIfAbsent(ctx context.Context, f HashField) error {
	if err := l.rdb.HSetNX(ctx, f.Key, f.Field, f.Value).Err(); err != nil {
		return fmt.Errorf("ledger: set %s %s: %w", f.Key, f.Field, err)
	}
	return nil
}

// Fail records a definitive failure (a dead letter that did not take
// effect) and releases the lease.
func (l *Ledger) Fail(ctx context.Context, ls *Lease) error {
	return l.finish(ctx, ls, codeFailed+strconv.Itoa(ls.attempts))
}

// Release releases the lease and leaves the entry as it is (Started, or
// Succeeded when Begin found it so).
func (l *Ledger) Release(ctx context.Context, ls *Lease) error {
	return l.finish(ctx, ls, "")
}

func (l *Ledger) finish(ctx context.Context, ls *Lease, value string) error {
	v, err := finishScript.Run(ctx, l.rdb, l.finishKeys(ls), ls.token, value, l.ttl.Milliseconds()).Result()
	if err != nil {
		return fmt.Errorf("ledger: record outcome for %s: %w", ls.key, err)
	}
	ls.subscribers = subscribersOf(v)
	return nil
}

// Get returns key's entry (State None when there is none).
func (l *Ledger) Get(ctx context.Context, key string) (Entry, error) {
	v, err := l.rdb.Get(ctx, entryKey(key)).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return Entry{}, fmt.Errorf("ledger: get %s: %w", key, err)
	}
	return decode(v), nil
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

// newToken returns a lease token unique across workers: this process's
// random prefix and a counter (a lease token only has to differ from every
// other attempt's, not be unguessable; a random read per attempt showed in
// the worker's profile).
//
// Tokens have one length, so no token is a prefix of another (the scripts
// compare a lease's value by its prefix).
func newToken() string {
	var b [16]byte
	hex.Encode(b[:], binary.BigEndian.AppendUint64(nil, tokenSeq.Add(1)))
	return tokenPrefix + string(b[:])
}

var (
	tokenPrefix = func() string {
		var b [9]byte
		_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
		return hex.EncodeToString(b[:]) + "."
	}()
	tokenSeq atomic.Uint64
)
