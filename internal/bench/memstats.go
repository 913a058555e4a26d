package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"text/tabwriter"

	"github.com/redis/go-redis/v9"
)

// memStat is what the keys of one kind hold after a drain: how many there
// are and their MEMORY USAGE (key, value and dict entry; not the expiry
// entry of a key with a TTL).
type memStat struct {
	keys  int64
	bytes int64
}

// idPart is what varies between the keys of one kind: task IDs (hex
// digests), room numbers, batch IDs.
var idPart = regexp.MustCompile(`[0-9a-f]{16,}|[0-9]+`)

// memoryByKind sums MEMORY USAGE over every key of a single-node store,
// grouped by the key with its IDs replaced by "*" (nil for a cluster,
// whose nodes include replicas).
func (s *store) memoryByKind(ctx context.Context) (map[string]memStat, error) {
	if len(s.nodes) != 1 {
		return nil, nil
	}
	rdb := s.nodes[0]
	out := map[string]memStat{}
	var cursor uint64
	for {
		keys, next, err := rdb.Scan(ctx, cursor, "*", 1000).Result()
		if err != nil {
			return nil, err
		}
		pipe := rdb.Pipeline()
		cmds := make([]*redis.IntCmd, len(keys))
		for i, k := range keys {
			cmds[i] = pipe.MemoryUsage(ctx, k, 0)
		}
		if len(keys) > 0 {
			if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
				return nil, err
			}
		}
		for i, k := range keys {
			kind := idPart.ReplaceAllString(k, "*")
			m := out[kind]
			m.keys++
			m.bytes += cmds[i].Val() // 0 for a key gone since SCAN
			out[kind] = m
		}
		if cursor = next; cursor == 0 {
			return out, nil
		}
	}
}

// printMemory writes the retained memory of two runs by key kind, per
// task, the largest first.
func printMemory(w io.Writer, n int, ours, bare map[string]memStat) {
	list := heaviestFirst(ours, bare, func(m memStat) float64 { return float64(m.bytes) })
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "key kind\tours keys\tours B/task\tbare keys\tbare B/task\t")
	for _, k := range list {
		o, b := ours[k], bare[k]
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%d\t%.1f\t\n", k, o.keys, float64(o.bytes)/float64(n), b.keys, float64(b.bytes)/float64(n))
	}
	tw.Flush()
}
