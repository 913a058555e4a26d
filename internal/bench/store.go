package bench

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/meetops/meetops/internal/redisconf"
	"github.com/meetops/meetops/internal/redistest"
)

// store is a Redis deployment the scenarios run on: the single redis-server
// most of them use, or the Redis Cluster of the cluster scenario. Both are
// private to the bench, with AOF on (appendfsync everysec).
type store struct {
	// name is what the table calls it.
	name string
	// url is the single node's REDIS_URL ("" for the cluster).
	url string
	// procEnv points a worker process at it (REDIS_URL or
	// REDIS_CLUSTER_ADDRS), cliArgs the enqueue command (the flags).
	procEnv, cliArgs []string
	// rdb, client and insp are a go-redis client (built by redisconf, as
	// the processes build theirs), an asynq client and an inspector.
	rdb    redis.UniversalClient
	client *asynq.Client
	insp   *asynq.Inspector
	// nodes are clients of every redis-server of it, replicas included,
	// for INFO and the AOF rewrite; flush empties it.
	nodes []*redis.Client
	flush func(ctx context.Context) error
	stop  func()
}

// newSingleStore starts the bench's single redis-server.
func newSingleStore() (*store, error) {
	srv, err := redistest.Start(redistest.Options{})
	if err != nil {
		return nil, err
	}
	if srv.Embedded() {
		srv.Close()
		return nil, errors.New("make bench needs a real redis-server in PATH")
	}
	url := srv.URL(0)
	s, err := newStore("single node", redisconf.Config{URL: url}, []string{"--redis-url", url})
	if err != nil {
		srv.Close()
		return nil, err
	}
	s.url = url
	node := redis.NewClient(srv.Options(0))
	s.nodes = []*redis.Client{node}
	s.flush = func(ctx context.Context) error { return node.FlushAll(ctx).Err() }
	s.stop = func() { _ = node.Close(); srv.Close() }
	return s, nil
}

// newClusterStore starts a Redis Cluster of three primaries with a replica
// each (internal/redistest), all on this machine.
func newClusterStore() (*store, error) {
	c, err := redistest.StartCluster(redistest.ClusterOptions{})
	if err != nil {
		return nil, err
	}
	addrs := strings.Join(c.Addrs(), ",")
	s, err := newStore("cluster", redisconf.Config{ClusterAddrs: c.Addrs()}, []string{"--redis-cluster-addrs", addrs})
	if err != nil {
		c.Close()
		return nil, err
	}
	for _, n := range c.Nodes() {
		s.nodes = append(s.nodes, redis.NewClient(n.Options(0)))
	}
	s.flush = c.Flush
	s.stop = func() {
		for _, n := range s.nodes {
			_ = n.Close()
		}
		c.Close()
	}
	return s, nil
}

// newStore makes the clients of a store for cfg.
func newStore(name string, cfg redisconf.Config, cliArgs []string) (*store, error) {
	rdb, err := cfg.NewClient(redisconf.ClientOptions{PoolSize: 64})
	if err != nil {
		return nil, err
	}
	env := []string{redisconf.EnvURL + "=" + cfg.URL}
	if len(cfg.ClusterAddrs) > 0 {
		env = []string{redisconf.EnvClusterAddrs + "=" + strings.Join(cfg.ClusterAddrs, ",")}
	}
	return &store{name: name, procEnv: env, cliArgs: cliArgs, rdb: rdb,
		client: asynq.NewClientFromRedisClient(rdb), insp: asynq.NewInspectorFromRedisClient(rdb)}, nil
}

func (s *store) close() {
	_ = s.rdb.Close()
	s.stop()
}

// reset empties the store and compacts every node's append-only file, so
// that no run pays for a rewrite the previous run's writes triggered (an
// AOF past 64 MB is rewritten in the background, which cost the second of
// two runs ~0.1 s).
func (s *store) reset(ctx context.Context) error {
	if err := s.flush(ctx); err != nil {
		return err
	}
	for _, n := range s.nodes {
		if err := n.BgRewriteAOF(ctx).Err(); err != nil && !strings.Contains(err.Error(), "already in progress") {
			return err
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, n := range s.nodes {
		for {
			info, err := n.Info(ctx, "persistence").Result()
			if err != nil {
				return err
			}
			if !strings.Contains(info, "aof_rewrite_in_progress:1") && !strings.Contains(info, "aof_rewrite_scheduled:1") {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("redis AOF rewrite on %s did not finish in 30s", n.Options().Addr)
			}
			time.Sleep(20 * time.Millisecond) // polling interval, bounded by the deadline
		}
	}
	return nil
}

// infoSum adds up an INFO field over every node of the store.
func (s *store) infoSum(ctx context.Context, section string, fields ...string) float64 {
	var total float64
	for _, n := range s.nodes {
		info, err := n.Info(ctx, section).Result()
		if err != nil {
			continue
		}
		for _, line := range strings.Split(info, "\r\n") {
			for _, k := range fields {
				if v, ok := strings.CutPrefix(line, k+":"); ok {
					f, _ := strconv.ParseFloat(v, 64)
					total += f
				}
			}
		}
	}
	return total
}

// cpuSeconds is the CPU time (user + sys) every redis-server of the store
// used so far.
func (s *store) cpuSeconds(ctx context.Context) float64 {
	return s.infoSum(ctx, "cpu", "used_cpu_sys", "used_cpu_user")
}

// usedMemory is used_memory over every node.
func (s *store) usedMemory(ctx context.Context) int64 {
	return int64(s.infoSum(ctx, "memory", "used_memory"))
}

// commandsProcessed is total_commands_processed over every node.
func (s *store) commandsProcessed(ctx context.Context) int64 {
	return int64(s.infoSum(ctx, "stats", "total_commands_processed"))
}
