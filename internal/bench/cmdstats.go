package bench

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/redis/go-redis/v9"
)

// cmdStat is one line of Redis's INFO commandstats: how often a command ran
// and the server time it took. Commands a Lua script calls are counted
// under their own names and again inside the script's EVALSHA time.
type cmdStat struct {
	calls int64
	usec  float64
}

// commandStats sums INFO commandstats over every node of s (on a cluster
// a replica counts the commands it replays too).
func (s *store) commandStats(ctx context.Context) (map[string]cmdStat, error) {
	out := map[string]cmdStat{}
	for _, n := range s.nodes {
		if err := addCommandStats(ctx, n, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// addCommandStats adds one node's INFO commandstats to out, and as
// "(reads)" and "(writes)" (no time of their own) how many times the node
// read a client's commands and wrote its replies: the round trips.
func addCommandStats(ctx context.Context, rdb *redis.Client, out map[string]cmdStat) error {
	info, err := rdb.Info(ctx, "commandstats", "stats").Result()
	if err != nil {
		return err
	}
	for _, line := range strings.Split(info, "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && (k == "total_reads_processed" || k == "total_writes_processed") {
			n, _ := strconv.ParseInt(v, 10, 64)
			name := "(reads)"
			if k == "total_writes_processed" {
				name = "(writes)"
			}
			out[name] = cmdStat{calls: out[name].calls + n}
			continue
		}
		name, rest, ok := strings.Cut(strings.TrimPrefix(line, "cmdstat_"), ":")
		if !ok || name == line {
			continue
		}
		var s cmdStat
		for _, kv := range strings.Split(rest, ",") {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "calls":
				s.calls, _ = strconv.ParseInt(v, 10, 64)
			case "usec":
				s.usec, _ = strconv.ParseFloat(v, 64)
			}
		}
		t := out[name]
		out[name] = cmdStat{calls: t.calls + s.calls, usec: t.usec + s.usec}
	}
	return nil
}

// diffStats is after minus before.
func diffStats(before, after map[string]cmdStat) map[string]cmdStat {
	out := map[string]cmdStat{}
	for k, a := range after {
		b := before[k]
		if d := (cmdStat{calls: a.calls - b.calls, usec: a.usec - b.usec}); d.calls > 0 {
			out[k] = d
		}
	}
	return out
}

// printStats writes the commands of two runs side by side, per task (or
// per second: n is what they are divided by),
// the costliest first.
func printStats(w io.Writer, n int, ours, bare map[string]cmdStat) {
	list := heaviestFirst(ours, bare, func(s cmdStat) float64 { return s.usec })
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "command\tours calls/task\tours µs/task\tbare calls/task\tbare µs/task\t")
	for _, k := range list {
		o, b := ours[k], bare[k]
		fmt.Fprintf(tw, "%s\t%.2f\t%.1f\t%.2f\t%.1f\t\n", k, float64(o.calls)/float64(n), o.usec/float64(n), float64(b.calls)/float64(n), b.usec/float64(n))
	}
	tw.Flush()
}

// heaviestFirst returns the names of two runs' figures (either run's), the
// largest sum of weight over both first.
func heaviestFirst[T any](ours, bare map[string]T, weight func(T) float64) []string {
	var list []string
	for k := range ours {
		list = append(list, k)
	}
	for k := range bare {
		if _, ok := ours[k]; !ok {
			list = append(list, k)
		}
	}
	sort.Slice(list, func(i, j int) bool {
		return weight(ours[list[i]])+weight(bare[list[i]]) > weight(ours[list[j]])+weight(bare[list[j]])
	})
	return list
}
