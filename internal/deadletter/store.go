// Package deadletter is meetops' durable dead-letter store in Redis.
//
// asynq's archive keeps at most 9,999 tasks and drops the oldest silently;
// this store keeps every dead letter (key, type, queue, payload and the
// dead-letter result) with no cap unless one is configured, in which case
// every trim is reported. The CLI reads and requeues from here, so a dead
// letter survives asynq trimming its archive copy.
package deadletter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrNotFound is returned for a key that has no dead letter.
var ErrNotFound = errors.New("deadletter: no dead letter with that key")

// Record is one dead letter.
type Record struct {
	// Key is the idempotency key (the asynq task ID).
	Key string `json:"key"`
	// Type is the asynq task type.
	Type string `json:"type"`
	// Queue is the queue the task ran in.
	Queue string `json:"queue"`
	// Reason is the dead-letter reason (http_4xx, invalid_payload,
	// retries_exhausted, auth), copied from Result for filtering.
	Reason string `json:"reason"`
	// Payload is the task payload as enqueued.
	Payload json.RawMessage `json:"payload"`
	// Result is the dead-letter result JSON written to the task.
	Result json.RawMessage `json:"result"`
	// DeadAt is when the task was dead-lettered.
	DeadAt time.Time `json:"dead_at"`
}

// Redis keys. The hash tag keeps both on one Redis Cluster slot so they can
// be updated in one transaction.
const (
	recordsKey = "meetops:{dead}:records"
	indexKey   = "meetops:{dead}:index"
)

// Options configure a Store; zero values mean defaults.
type Options struct {
	// MaxLen caps the number of records kept; 0 means no cap. When a cap
	// is set, the oldest records beyond it are removed and OnTrim is called
	// with their keys.
	MaxLen int64
	// OnTrim is told about records removed by MaxLen (log and count them).
	OnTrim func(keys []string)
}

// Store keeps dead letters in Redis.
type Store struct {
	rdb  redis.UniversalClient
	opts Options
}

// New returns a store on rdb.
func New(rdb redis.UniversalClient, o Options) *Store {
	return &Store{rdb: rdb, opts: o}
}

// Add stores r, replacing an older record with the same key.
func (s *Store) Add(ctx context.Context, r Record) error {
	if r.DeadAt.IsZero() {
		r.DeadAt = time.Now()
	}
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("deadletter: encode %s: %w", r.Key, err)
	}
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, recordsKey, r.Key, b)
		p.ZAdd(ctx, indexKey, redis.Z{Score: float64(r.DeadAt.UnixMilli()), Member: r.Key})
		return nil
	})
	if err != nil {
		return fmt.Errorf("deadletter: add %s: %w", r.Key, err)
	}
	if s.opts.MaxLen > 0 {
		return s.trim(ctx)
	}
	return nil
}

func (s *Store) trim(ctx context.Context) error {
	n, err := s.rdb.ZCard(ctx, indexKey).Result()
	if err != nil || n <= s.opts.MaxLen {
		return err
	}
	popped, err := s.rdb.ZPopMin(ctx, indexKey, n-s.opts.MaxLen).Result()
	if err != nil {
		return fmt.Errorf("deadletter: trim: %w", err)
	}
	keys := make([]string, 0, len(popped))
	for _, z := range popped {
		keys = append(keys, z.Member.(string))
	}
	if err := s.rdb.HDel(ctx, recordsKey, keys...).Err(); err != nil {
		return fmt.Errorf("deadletter: trim: %w", err)
	}
	if s.opts.OnTrim != nil {
		s.opts.OnTrim(keys)
	}
	return nil
}

// Get returns the dead letter with key, or ErrNotFound.
func (s *Store) Get(ctx context.Context, key string) (Record, error) {
	b, err := s.rdb.HGet(ctx, recordsKey, key).Bytes()
	if errors.Is(err, redis.Nil) {
		return Record{}, ErrNotFound
	}
	if err != nil {
		return Record{}, fmt.Errorf("deadletter: get %s: %w", key, err)
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return Record{}, fmt.Errorf("deadletter: decode %s: %w", key, err)
	}
	return r, nil
}

// Count returns how many dead letters are stored.
func (s *Store) Count(ctx context.Context) (int64, error) {
	n, err := s.rdb.ZCard(ctx, indexKey).Result()
	if err != nil {
		return 0, fmt.Errorf("deadletter: count: %w", err)
	}
	return n, nil
}

// Filter selects dead letters; zero fields match everything.
type Filter struct {
	// Type keeps records of this asynq task type.
	Type string
	// Reason keeps records with this reason.
	Reason string
}

func (f Filter) match(r Record) bool {
	return (f.Type == "" || r.Type == f.Type) && (f.Reason == "" || r.Reason == f.Reason)
}

// pageSize is how many records Each reads per round trip.
const pageSize = 500

// Each calls fn for every matching record, oldest first, reading in pages;
// it stops early when fn returns an error and returns that error.
func (s *Store) Each(ctx context.Context, f Filter, fn func(Record) error) error {
	for start := int64(0); ; start += pageSize {
		keys, err := s.rdb.ZRange(ctx, indexKey, start, start+pageSize-1).Result()
		if err != nil {
			return fmt.Errorf("deadletter: list: %w", err)
		}
		if len(keys) == 0 {
			return nil
		}
		vals, err := s.rdb.HMGet(ctx, recordsKey, keys...).Result()
		if err != nil {
			return fmt.Errorf("deadletter: list: %w", err)
		}
		for i, v := range vals {
			str, ok := v.(string)
			if !ok {
				continue // deleted between the two reads
			}
			var r Record
			if err := json.Unmarshal([]byte(str), &r); err != nil {
				return fmt.Errorf("deadletter: decode %s: %w", keys[i], err)
			}
			if !f.match(r) {
				continue
			}
			if err := fn(r); err != nil {
				return err
			}
		}
		if len(keys) < pageSize {
			return nil
		}
	}
}

// Position is where a page of dead letters ends: the DeadAt (in Unix
// milliseconds, the index's score) and key of its last record. The zero
// Position is the start of the store.
type Position struct {
	DeadAtMilli int64
	Key         string
}

// Page returns up to limit matching records (limit < 1: 1) after the
// position after, oldest first, and whether more follow. A position is
// stable while records come and go: a page starts after the last record
// of the one before, even if that record has been requeued or purged
// since, and a record added later appears on a later page.
func (s *Store) Page(ctx context.Context, f Filter, after Position, limit int) ([]Record, bool, error) {
	limit = max(limit, 1)
	var out []Record
	from := "-inf"
	if after != (Position{}) {
		from = strconv.FormatInt(after.DeadAtMilli, 10)
	}
	for offset := int64(0); ; offset += pageSize {
		zs, err := s.rdb.ZRangeArgsWithScores(ctx, redis.ZRangeArgs{Key: indexKey, Start: from, Stop: "+inf",
			ByScore: true, Offset: offset, Count: pageSize}).Result()
		if err != nil {
			return nil, false, fmt.Errorf("deadletter: list: %w", err)
		}
		if len(zs) == 0 {
			return out, false, nil
		}
		keys := make([]string, 0, len(zs))
		for _, z := range zs {
			key, _ := z.Member.(string)
			// Members of one score are in key order: skip up to the
			// position's key.
			if after != (Position{}) && int64(z.Score) == after.DeadAtMilli && key <= after.Key {
				continue
			}
			keys = append(keys, key)
		}
		if len(keys) > 0 {
			vals, err := s.rdb.HMGet(ctx, recordsKey, keys...).Result()
			if err != nil {
				return nil, false, fmt.Errorf("deadletter: list: %w", err)
			}
			for i, v := range vals {
				str, ok := v.(string)
				if !ok {
					continue // deleted between the two reads
				}
				var r Record
				if err := json.Unmarshal([]byte(str), &r); err != nil {
					return nil, false, fmt.Errorf("deadletter: decode %s: %w", keys[i], err)
				}
				if !f.match(r) {
					continue
				}
				if len(out) == limit {
					return out, true, nil
				}
				out = append(out, r)
			}
		}
		if len(zs) < pageSize {
			return out, false, nil
		}
	}
}

// PositionOf is the position of r in the store, for Page.
func PositionOf(r Record) Position {
	return Position{DeadAtMilli: r.DeadAt.UnixMilli(), Key: r.Key}
}

// Delete removes the dead letters with the given keys and returns how many
// existed.
func (s *Store) Delete(ctx context.Context, keys ...string) (int64, error) {
	if len(keys) == 0 {
		return 0, nil
	}
	var hdel *redis.IntCmd
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		hdel = p.HDel(ctx, recordsKey, keys...)
		members := make([]any, len(keys))
		for i, k := range keys {
			members[i] = k
		}
		p.ZRem(ctx, indexKey, members...)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("deadletter: delete: %w", err)
	}
	return hdel.Val(), nil
}
