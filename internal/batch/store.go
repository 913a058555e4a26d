package batch

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrNotFound is a batch that does not exist, or whose records expired
// with the dedup window.
var ErrNotFound = errors.New("batch: no such batch (unknown, or expired)")

// ErrSealed is an Add to a sealed batch.
var ErrSealed = errors.New("batch: sealed, no more members")

// State is a member's state in its batch.
type State string

// Member states. A dead member's state carries its reason after the letter
// ("dhttp_4xx"); Dead alone is the kind.
const (
	Pending     State = "p"
	Succeeded   State = "s"
	AlreadyDone State = "a"
	Dead        State = "d"
)

// DeadWith is the state of a member that died for reason.
func DeadWith(reason string) State { return Dead + State(reason) }

// Kind is the state without a dead member's reason.
func (s State) Kind() State {
	if s == "" {
		return ""
	}
	return s[:1]
}

// Reason is a dead member's reason ("" otherwise).
func (s State) Reason() string {
	if s.Kind() != Dead {
		return ""
	}
	return string(s[1:])
}

// Spec describes a batch to create.
type Spec struct {
	// Label is the batch's name for people ("" for none).
	Label string
	// Origin says who made it: an API token's NAME, or user@host for the
	// CLI.
	Origin string
	// CallbackURL, when set, receives one signed POST per completion. It
	// must have passed the callback policy already.
	CallbackURL string
}

// Progress is a batch and its exact progress, as enqueue batch status and
// GET /v1/batches/{id} show it.
type Progress struct {
	BatchID   string    `json:"batch_id"`
	Label     string    `json:"label"`
	Origin    string    `json:"origin"`
	CreatedAt time.Time `json:"created_at"`
	// Total counts the members; the four counts below always sum to it.
	Total       int  `json:"total"`
	Pending     int  `json:"pending"`
	Succeeded   int  `json:"succeeded"`
	AlreadyDone int  `json:"already_done"`
	Dead        int  `json:"dead"`
	Complete    bool `json:"complete"`
	// CompletedAt is when the batch last became complete (null while it is
	// not).
	CompletedAt *time.Time `json:"completed_at"`
	// Sealed is false while members are still being added.
	Sealed bool `json:"-"`
	// Completions counts the times the batch became complete (a requeued
	// dead letter makes it incomplete again).
	Completions int `json:"-"`
	// CallbackURL receives the completions; CallbacksSent counts those
	// whose delivery was enqueued.
	CallbackURL   string `json:"-"`
	CallbacksSent int    `json:"-"`
}

// Member is one member of a batch: the idempotency key of its task, its
// position, and its state.
type Member struct {
	// Key is the task's idempotency key.
	Key string
	// Index is its 0-based position in the request or file.
	Index int
	// Line is its 1-based line in the input file (0: not from a file).
	Line int
	// State is its state in the batch; Add takes it as the initial state
	// (usually Pending).
	State State
}

// Completion is a batch that just became complete, for the N-th time.
type Completion struct {
	BatchID string
	N       int
}

// Options configure a Store; zero values mean defaults.
type Options struct {
	// TTL is how long a batch's records live after their last write: the
	// dedup window. 0 means 24 h.
	TTL time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Store reads and writes batch records in Redis.
type Store struct {
	rdb redis.UniversalClient
	ttl time.Duration
	now func() time.Time
}

// New returns a Store on rdb.
func New(rdb redis.UniversalClient, o Options) *Store {
	if o.TTL <= 0 {
		o.TTL = 24 * time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Store{rdb: rdb, ttl: o.TTL, now: o.Now}
}

// newID returns a batch ID: "b_" and 24 hex digits (96 random bits).
func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return "b_" + hex.EncodeToString(b[:])
}

// ValidID reports whether id has the form of a batch ID, so that a caller
// can refuse anything else without a Redis round trip.
func ValidID(id string) bool {
	if len(id) != 26 || !strings.HasPrefix(id, "b_") {
		return false
	}
	_, err := hex.DecodeString(id[2:])
	return err == nil
}

// Create records a new, open batch and returns its ID.
func (s *Store) Create(ctx context.Context, spec Spec) (string, error) {
	id := newID()
	now := s.now()
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, infoKey(id), fLabel, spec.Label, fOrigin, spec.Origin, fCreatedAt, now.UnixMilli(),
			fCallbackURL, spec.CallbackURL, fSealed, "0", fTotal, 0, fPending, 0, fSucceeded, 0,
			fAlreadyDone, 0, fDead, 0, fCompletions, 0, fCompletedAt, "0", fCallbacksSent, 0)
		p.PExpire(ctx, infoKey(id), s.ttl)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("batch: create: %w", err)
	}
	// The lists live in another slot: written after, in their own calls.
	if err := s.rdb.ZAdd(ctx, listKey, redis.Z{Score: float64(now.UnixMilli()), Member: id}).Err(); err != nil {
		return "", fmt.Errorf("batch: create: %w", err)
	}
	if spec.CallbackURL != "" {
		if err := s.rdb.ZAdd(ctx, callbacksKey, redis.Z{Score: float64(now.UnixMilli()), Member: id}).Err(); err != nil {
			return "", fmt.Errorf("batch: create: %w", err)
		}
	}
	_ = s.rdb.ZRemRangeByScore(ctx, listKey, "-inf", strconv.FormatInt(now.Add(-s.ttl).UnixMilli(), 10)).Err() // best effort
	return id, nil
}

// Add makes members part of the open batch id, each in its State, and
// then records them in their keys' member indexes — in that order, so a
// worker that finds the batch through an index finds the member in it.
// A key already a member keeps its first position. It returns how many
// members it added; ErrNotFound or ErrSealed when it cannot.
func (s *Store) Add(ctx context.Context, id string, members []Member) (int, error) {
	if len(members) == 0 {
		return 0, nil
	}
	args := make([]any, 0, 1+4*len(members))
	args = append(args, s.ttl.Milliseconds())
	for _, m := range members {
		st := m.State
		if st == "" {
			st = Pending
		}
		args = append(args, m.Key, m.Index, m.Key+"\x1f"+strconv.Itoa(m.Line), string(st))
	}
	n, err := addScript.Run(ctx, s.rdb, []string{infoKey(id), statesKey(id), indexKey(id)}, args...).Int()
	switch {
	case err != nil:
		return 0, fmt.Errorf("batch %s: add: %w", id, err)
	case n == -1:
		return 0, fmt.Errorf("batch %s: %w", id, ErrNotFound)
	case n == -2:
		return 0, fmt.Errorf("batch %s: %w", id, ErrSealed)
	}
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, m := range members {
			p.SAdd(ctx, MemberIndexKey(m.Key), id)
			p.PExpire(ctx, MemberIndexKey(m.Key), s.ttl)
		}
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("batch %s: index members: %w", id, err)
	}
	return n, nil
}

// Seal closes the batch to new members; with nothing pending it completes
// at once (the Completion has N > 0).
func (s *Store) Seal(ctx context.Context, id string) (Completion, error) {
	n, err := sealScript.Run(ctx, s.rdb, []string{infoKey(id), statesKey(id), indexKey(id)},
		s.ttl.Milliseconds(), s.now().UnixMilli()).Int()
	switch {
	case err != nil:
		return Completion{}, fmt.Errorf("batch %s: seal: %w", id, err)
	case n == -1:
		return Completion{}, fmt.Errorf("batch %s: %w", id, ErrNotFound)
	}
	return Completion{BatchID: id, N: n}, nil
}

// Transition moves key to state in each of the batches ids (a key that is
// not a member of one is left alone), with one round trip, and returns the
// batches this completed.
func (s *Store) Transition(ctx context.Context, ids []string, key string, state State) ([]Completion, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	now := s.now().UnixMilli()
	cmds := make([]*redis.Cmd, len(ids))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = transitionScript.EvalSha(ctx, p, []string{infoKey(id), statesKey(id), indexKey(id)},
				s.ttl.Milliseconds(), now, key, string(state))
		}
		return nil
	})
	if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		// A pipeline cannot fall back to EVAL by itself; the script is
		// idempotent, so sending it again in full is safe.
		_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, id := range ids {
				cmds[i] = transitionScript.Eval(ctx, p, []string{infoKey(id), statesKey(id), indexKey(id)},
					s.ttl.Milliseconds(), now, key, string(state))
			}
			return nil
		})
	}
	if err != nil {
		return nil, fmt.Errorf("batch: move %s to %s: %w", key, state, err)
	}
	var done []Completion
	for i, c := range cmds {
		if n, _ := c.Int(); n > 0 {
			done = append(done, Completion{BatchID: ids[i], N: n})
		}
	}
	return done, nil
}

// TransitionIn queues Transition's scripts on p, a pipeline the caller
// sends (the worker's: the one that records the task's outcome), and
// returns the function that reads their results once it was sent. An error
// there (a script Redis did not have cached, NOSCRIPT) means the caller
// should run Transition itself.
func (s *Store) TransitionIn(ctx context.Context, p redis.Pipeliner, ids []string, key string, state State) func() ([]Completion, error) {
	now := s.now().UnixMilli()
	cmds := make([]*redis.Cmd, len(ids))
	for i, id := range ids {
		cmds[i] = transitionScript.EvalSha(ctx, p, []string{infoKey(id), statesKey(id), indexKey(id)},
			s.ttl.Milliseconds(), now, key, string(state))
	}
	return func() ([]Completion, error) {
		var done []Completion
		for i, c := range cmds {
			n, err := c.Int()
			if err != nil {
				return nil, fmt.Errorf("batch: move %s to %s: %w", key, state, err)
			}
			if n > 0 {
				done = append(done, Completion{BatchID: ids[i], N: n})
			}
		}
		return done, nil
	}
}

// BatchesOf returns the batches key is a member of.
func (s *Store) BatchesOf(ctx context.Context, key string) ([]string, error) {
	ids, err := s.rdb.SMembers(ctx, MemberIndexKey(key)).Result()
	if err != nil {
		return nil, fmt.Errorf("batch: batches of %s: %w", key, err)
	}
	return ids, nil
}

// Get returns batch id's progress, or ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (Progress, error) {
	m, err := s.rdb.HGetAll(ctx, infoKey(id)).Result()
	if err != nil {
		return Progress{}, fmt.Errorf("batch %s: %w", id, err)
	}
	if len(m) == 0 {
		return Progress{}, fmt.Errorf("batch %s: %w", id, ErrNotFound)
	}
	return progressOf(id, m), nil
}

func progressOf(id string, m map[string]string) Progress {
	num := func(f string) int { n, _ := strconv.Atoi(m[f]); return n }
	ms := func(f string) time.Time { n, _ := strconv.ParseInt(m[f], 10, 64); return time.UnixMilli(n).UTC() }
	p := Progress{
		BatchID: id, Label: m[fLabel], Origin: m[fOrigin], CreatedAt: ms(fCreatedAt),
		Total: num(fTotal), Pending: num(fPending), Succeeded: num(fSucceeded), AlreadyDone: num(fAlreadyDone), Dead: num(fDead),
		Sealed: m[fSealed] == "1", Completions: num(fCompletions), CallbackURL: m[fCallbackURL], CallbacksSent: num(fCallbacksSent),
	}
	if at := m[fCompletedAt]; at != "" && at != "0" {
		t := ms(fCompletedAt)
		p.CompletedAt, p.Complete = &t, true
	}
	return p
}

// List returns up to limit batches, newest first (those whose records
// expired left out).
func (s *Store) List(ctx context.Context, limit int) ([]Progress, error) {
	if limit <= 0 {
		limit = 100
	}
	ids, err := s.rdb.ZRevRange(ctx, listKey, 0, int64(limit-1)).Result()
	if err != nil {
		return nil, fmt.Errorf("batch: list: %w", err)
	}
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HGetAll(ctx, infoKey(id))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("batch: list: %w", err)
	}
	out := make([]Progress, 0, len(ids))
	for i, c := range cmds {
		if m := c.Val(); len(m) > 0 {
			out = append(out, progressOf(ids[i], m))
		}
	}
	return out, nil
}

// membersPage is how many members Members reads per round trip.
const membersPage = 1000

// Members calls fn for every member of batch id in index order, with its
// current state, reading in pages; it stops at fn's first error.
func (s *Store) Members(ctx context.Context, id string, fn func(Member) error) error {
	if _, err := s.Get(ctx, id); err != nil {
		return err
	}
	// Indexes have gaps where a request's operation was invalid or a
	// duplicate key within the batch: scan the positions hash.
	var positions []Member
	var cursor uint64
	for {
		kv, next, err := s.rdb.HScan(ctx, indexKey(id), cursor, "", membersPage).Result()
		if err != nil {
			return fmt.Errorf("batch %s: members: %w", id, err)
		}
		for i := 0; i+1 < len(kv); i += 2 {
			idx, _ := strconv.Atoi(kv[i])
			key, line, _ := strings.Cut(kv[i+1], "\x1f")
			ln, _ := strconv.Atoi(line)
			positions = append(positions, Member{Key: key, Index: idx, Line: ln})
		}
		if cursor = next; cursor == 0 {
			break
		}
	}
	slices.SortFunc(positions, func(a, b Member) int { return a.Index - b.Index })
	for start := 0; start < len(positions); start += membersPage {
		page := positions[start:min(start+membersPage, len(positions))]
		keys := make([]string, len(page))
		for i, m := range page {
			keys[i] = m.Key
		}
		states, err := s.rdb.HMGet(ctx, statesKey(id), keys...).Result()
		if err != nil {
			return fmt.Errorf("batch %s: members: %w", id, err)
		}
		for i, m := range page {
			if st, ok := states[i].(string); ok {
				m.State = State(st)
			}
			if err := fn(m); err != nil {
				return err
			}
		}
	}
	return nil
}

// CallbacksDue returns the batches whose completions have not all had
// their callback enqueued, oldest first, forgetting those that expired or
// have no completion left to deliver.
func (s *Store) CallbacksDue(ctx context.Context) ([]Progress, error) {
	ids, err := s.rdb.ZRange(ctx, callbacksKey, 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("batch: callbacks: %w", err)
	}
	var due []Progress
	for _, id := range ids {
		p, err := s.Get(ctx, id)
		if errors.Is(err, ErrNotFound) {
			_ = s.rdb.ZRem(ctx, callbacksKey, id).Err() // expired
			continue
		}
		if err != nil {
			return due, err
		}
		if p.Completions > p.CallbacksSent {
			due = append(due, p)
		}
	}
	return due, nil
}

// CallbackSent records that the callback of completion n of batch id was
// enqueued (a lower n than one already recorded changes nothing).
func (s *Store) CallbackSent(ctx context.Context, id string, n int) error {
	if err := sentScript.Run(ctx, s.rdb, []string{infoKey(id)}, n).Err(); err != nil {
		return fmt.Errorf("batch %s: callback %d sent: %w", id, n, err)
	}
	return nil
}
