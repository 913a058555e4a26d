package redisconf_test

import (
	"fmt"
	"time"

	"github.com/meetops/meetops/internal/redisconf"
)

// A process reads its Redis topology from the environment, logs it without
// the password, and builds its client.
func ExampleFromEnv() {
	env := map[string]string{
		"REDIS_URL":           "rediss://app:s3cret@ignored:6379/0",
		"REDIS_CLUSTER_ADDRS": "10.0.0.1:7000, 10.0.0.2:7000",
		"REDIS_ACK_REPLICAS":  "1",
	}
	cfg, err := redisconf.FromEnv(func(name string) string { return env[name] })
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cfg.Topology())
	fmt.Println(cfg)
	// Output:
	// cluster
	// cluster 10.0.0.1:7000,10.0.0.2:7000 (tls, user app, password, ack replicas 1)
}

// Every problem is reported at once, each naming the variable to fix, and
// never with the password.
func ExampleConfig_Validate() {
	cfg := redisconf.Config{
		URL:           "redis://:s3cret@redis:port/0",
		SentinelAddrs: []string{"sentinel-1"},
		AckReplicas:   -1,
	}
	fmt.Println(cfg.Validate())
	// Output:
	// REDIS_SENTINEL_MASTER: required with REDIS_SENTINEL_ADDRS (the name the sentinels monitor the primary under)
	// REDIS_URL: parse "redis://:xxxxx@redis:port/0": invalid port ":port" after host
	// REDIS_SENTINEL_ADDRS: "sentinel-1" is not host:port: missing port in address
	// REDIS_ACK_REPLICAS: want 0 or more replicas, got -1
}

// NewClient returns a client for the topology; it connects on first use.
func ExampleConfig_NewClient() {
	cfg := redisconf.Config{
		URL:            "redis://:s3cret@ignored/0", // the data nodes' password and DB
		SentinelAddrs:  []string{"10.0.0.1:26379", "10.0.0.2:26379", "10.0.0.3:26379"},
		SentinelMaster: "mymaster",
	}
	rdb, err := cfg.NewClient(redisconf.ClientOptions{PoolSize: 70, DialTimeout: 2 * time.Second})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer rdb.Close()
	fmt.Printf("%s: %T\n", cfg.Topology(), rdb)
	// Output:
	// sentinel: *redis.Client
}
