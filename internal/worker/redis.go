package worker

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
)

// NewRedis returns a Redis client for the configuration: a cluster client
// when RedisClusterAddrs is set, otherwise one for RedisURL (redis:// or
// rediss:// for TLS, with password and DB in the URL).
func NewRedis(c Config) (redis.UniversalClient, error) {
	if len(c.RedisClusterAddrs) > 0 {
		o := &redis.ClusterOptions{Addrs: c.RedisClusterAddrs}
		if c.RedisURL != "" { // credentials and TLS may still come from the URL
			if u, err := redis.ParseURL(c.RedisURL); err == nil {
				o.Username, o.Password, o.TLSConfig = u.Username, u.Password, u.TLSConfig
			}
		}
		o.PoolSize = c.Concurrency + 20
		return redis.NewClusterClient(o), nil
	}
	o, err := redis.ParseURL(c.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL: %s", redactURLError(err, c.RedisURL))
	}
	// Room for every worker goroutine plus asynq's own background work.
	o.PoolSize = c.Concurrency + 20
	return redis.NewClient(o), nil
}

// pingRedis checks Redis is reachable, with a clear error when not.
func pingRedis(ctx context.Context, rdb redis.UniversalClient, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis unreachable: %w", err)
	}
	return nil
}

// warnIfLossy logs a warning when Redis could silently lose tasks: an
// eviction policy other than noeviction, or no persistence at all.
func warnIfLossy(ctx context.Context, rdb redis.UniversalClient, log zerolog.Logger) {
	get := func(name string) (string, error) {
		m, err := rdb.ConfigGet(ctx, name).Result()
		if err != nil {
			return "", err
		}
		return m[name], nil
	}
	policy, err := get("maxmemory-policy")
	if err != nil {
		log.Warn().Err(err).Msg("cannot read Redis configuration (CONFIG GET refused?); make sure it runs with AOF and maxmemory-policy noeviction")
		return
	}
	if policy != "noeviction" {
		log.Warn().Str("maxmemory-policy", policy).Msg("Redis may evict keys under memory pressure and lose tasks: set maxmemory-policy noeviction")
	}
	aof, _ := get("appendonly")
	save, _ := get("save")
	if aof != "yes" && strings.TrimSpace(save) == "" {
		log.Warn().Msg("Redis has no persistence (appendonly no, no save points): a Redis restart loses every task; turn on appendonly yes")
	}
}
