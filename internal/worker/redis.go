package worker

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/meetops/meetops/internal/redisconf"
)

// NewRedis returns a Redis client for the configured topology (one Redis,
// Cluster or Sentinel), with room in its pool for every task slot plus
// asynq's own background work.
func NewRedis(c Config) (redis.UniversalClient, error) {
	return c.Redis.NewClient(redisconf.ClientOptions{PoolSize: c.Concurrency + 20})
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
