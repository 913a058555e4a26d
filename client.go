// Package meetops is the producer side of meetops: it enqueues the five
// administrative operations (dismiss an RTC room, disable an RTC app, cancel
// a meeting, hang up participants, reclaim cloud meeting rooms) into Redis
// for meetops workers, reports their state, and manages dead letters.
//
// Every operation is validated exactly as the worker validates it and
// enqueued under an idempotency key (the caller's, or one derived from the
// payload), so enqueueing the same operation twice is a reported no-op and
// the operation takes effect once.
package meetops

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/meetops/meetops/internal/asynqdb"
	"github.com/meetops/meetops/internal/batch"
	"github.com/meetops/meetops/internal/callback"
	"github.com/meetops/meetops/internal/deadletter"
	"github.com/meetops/meetops/internal/ledger"
	"github.com/meetops/meetops/internal/redisconf"
	"github.com/meetops/meetops/internal/tasks"
)

// RedisConfig selects the Redis the operations go to — one server (URL), a
// Redis Cluster (ClusterAddrs) or a Sentinel-managed primary
// (SentinelAddrs and SentinelMaster) — and how many replicas must
// acknowledge each enqueue (AckReplicas). It is the setting every meetops
// process shares, with the same fields, environment variables (REDIS_URL,
// REDIS_CLUSTER_ADDRS, REDIS_SENTINEL_ADDRS, REDIS_SENTINEL_MASTER,
// REDIS_SENTINEL_PASSWORD, REDIS_ACK_REPLICAS; see RedisConfigFromEnv) and
// rules: setting two topologies, or half a Sentinel one, is an error.
type RedisConfig = redisconf.Config

// RedisConfigFromEnv reads a RedisConfig from the environment variables
// the worker reads (getenv is os.Getenv, or a stand-in), and validates it.
func RedisConfigFromEnv(getenv func(string) string) (RedisConfig, error) {
	return redisconf.FromEnv(getenv)
}

// Client enqueues operations and manages dead letters. It is safe for
// concurrent use; create one per process and Close it at the end.
type Client struct {
	rdb       redis.UniversalClient
	ownsRedis bool
	redisOpts *redis.Options // one Redis: its options, for Ping
	// where names the Redis in Ping's errors.
	where string
	// dialTimeout is the connection timeout Ping reports when its context
	// has no deadline.
	dialTimeout time.Duration
	queue       *asynq.Client
	batch       *asynqdb.Writer
	inspect     *asynq.Inspector
	dead        *deadletter.Store
	ledger      *ledger.Ledger
	batches     *batch.Store
	callbacks   callback.Policy
	deliveries  *callback.Enqueuer
	window      time.Duration
	// served is the last read of the queues running workers serve, trusted
	// for servedTTL by the enqueue check.
	served    *servedCache
	servedTTL time.Duration
}

// NewClient returns a client for the Redis at redisURL
// (redis://[:password@]host:port/db, rediss:// for TLS): NewClientFromConfig
// with only the URL. It does not connect; call Ping to check the connection
// up front.
func NewClient(redisURL string, opts ...ClientOption) (*Client, error) {
	return NewClientFromConfig(RedisConfig{URL: redisURL}, opts...)
}

// NewClientFromConfig returns a client for the Redis topology cfg selects:
// one server, a Redis Cluster or a Sentinel-managed primary. A Cluster
// client follows a failover by itself (it reloads its slot map when a node
// fails), a Sentinel client asks the sentinels for the new primary. With
// cfg.AckReplicas every enqueue waits for that many replicas to
// acknowledge it (WAIT) before it is reported enqueued; one that is not
// acknowledged in time fails with an error matching ErrNotReplicated (and
// enqueueing it again is safe). It does not connect; call Ping to check
// the connection up front. An invalid cfg is an error naming the
// variables to fix.
func NewClientFromConfig(cfg RedisConfig, opts ...ClientOption) (*Client, error) {
	conf := config(opts)
	rdb, err := cfg.NewClient(redisconf.ClientOptions{
		DialTimeout: conf.dialTimeout,
		// Let callers' deadlines bound reads and writes, not only dials.
		ContextTimeoutEnabled: true,
	})
	if err != nil {
		return nil, fmt.Errorf("redis: %w", err)
	}
	conf.ackReplicas = cfg.AckReplicas
	c := newClient(rdb, conf)
	c.ownsRedis = true
	c.dialTimeout = 5 * time.Second // go-redis' default
	if conf.dialTimeout > 0 {
		c.dialTimeout = conf.dialTimeout
	}
	switch cfg.Topology() {
	case redisconf.Cluster:
		c.where = "cluster " + strings.Join(cfg.ClusterAddrs, ",")
	case redisconf.Sentinel:
		c.where = "primary " + cfg.SentinelMaster + " (sentinels " + strings.Join(cfg.SentinelAddrs, ",") + ")"
	default:
		c.redisOpts = rdb.(*redis.Client).Options()
		c.where = c.redisOpts.Addr
	}
	return c, nil
}

// NewClientFromRedis returns a client on an existing go-redis client (a
// plain, failover or cluster client). Close does not close rdb.
func NewClientFromRedis(rdb redis.UniversalClient, opts ...ClientOption) *Client {
	return newClient(rdb, config(opts))
}

func config(opts []ClientOption) clientConfig {
	cfg := clientConfig{dedupWindow: tasks.DefaultDedupWindow}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.dedupWindow <= 0 {
		cfg.dedupWindow = tasks.DefaultDedupWindow
	}
	if cfg.servedTTL <= 0 {
		cfg.servedTTL = DefaultServedQueuesTTL
	}
	return cfg
}

func newClient(rdb redis.UniversalClient, cfg clientConfig) *Client {
	c := &Client{
		rdb:       rdb,
		queue:     asynq.NewClientFromRedisClient(rdb),
		batch:     asynqdb.New(rdb, asynqdb.Options{AckReplicas: cfg.ackReplicas}),
		inspect:   asynq.NewInspectorFromRedisClient(rdb),
		dead:      deadletter.New(rdb, deadletter.Options{}),
		ledger:    ledger.New(rdb, ledger.Options{}),
		batches:   batch.New(rdb, batch.Options{TTL: cfg.dedupWindow}),
		callbacks: callback.Policy{AllowHosts: cfg.callbackHosts},
		window:    cfg.dedupWindow,
		servedTTL: cfg.servedTTL,
	}
	c.served = &servedCache{read: c.readServed}
	c.deliveries = &callback.Enqueuer{Client: c.queue, Batches: c.batches, Retention: cfg.dedupWindow}
	return c
}

// Close releases the client's connections (but not those of a go-redis
// client passed to NewClientFromRedis).
func (c *Client) Close() error {
	if !c.ownsRedis {
		return nil
	}
	if err := c.rdb.Close(); err != nil && !errors.Is(err, redis.ErrClosed) {
		return fmt.Errorf("close redis: %w", err)
	}
	return nil
}
