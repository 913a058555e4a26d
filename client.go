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
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/meetops/meetops/internal/asynqdb"
	"github.com/meetops/meetops/internal/deadletter"
	"github.com/meetops/meetops/internal/ledger"
	"github.com/meetops/meetops/internal/tasks"
)

// Client enqueues operations and manages dead letters. It is safe for
// concurrent use; create one per process and Close it at the end.
type Client struct {
	rdb       redis.UniversalClient
	ownsRedis bool
	redisOpts *redis.Options // set by NewClient
	// dialTimeout is the connection timeout Ping reports when its context
	// has no deadline.
	dialTimeout time.Duration
	queue       *asynq.Client
	batch       *asynqdb.Writer
	inspect     *asynq.Inspector
	dead        *deadletter.Store
	ledger      *ledger.Ledger
	window      time.Duration
}

// NewClient returns a client for the Redis at redisURL
// (redis://[:password@]host:port/db, rediss:// for TLS). It does not
// connect; call Ping to check the connection up front.
func NewClient(redisURL string, opts ...ClientOption) (*Client, error) {
	ro, err := redis.ParseURL(redisURL)
	if err != nil {
		return nil, fmt.Errorf("redis URL: %w", err)
	}
	cfg := config(opts)
	if cfg.dialTimeout > 0 {
		ro.DialTimeout = cfg.dialTimeout
	}
	// Let callers' deadlines bound reads and writes, not only dials.
	ro.ContextTimeoutEnabled = true
	c := newClient(redis.NewClient(ro), cfg)
	c.ownsRedis = true
	c.redisOpts = ro
	c.dialTimeout = ro.DialTimeout
	if c.dialTimeout == 0 {
		c.dialTimeout = 5 * time.Second // go-redis' default
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
	return cfg
}

func newClient(rdb redis.UniversalClient, cfg clientConfig) *Client {
	return &Client{
		rdb:     rdb,
		queue:   asynq.NewClientFromRedisClient(rdb),
		batch:   asynqdb.New(rdb),
		inspect: asynq.NewInspectorFromRedisClient(rdb),
		dead:    deadletter.New(rdb, deadletter.Options{}),
		ledger:  ledger.New(rdb, ledger.Options{}),
		window:  cfg.dedupWindow,
	}
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
