// Package redisconf is the one Redis topology setting shared by every meetops
// process: the worker, the enqueue CLI, the HTTP API server and the Go
// producer package read the same variables with the same rules, and get a
// client built the same way.
//
// The variables choose one of three topologies:
//
//	REDIS_URL only                    one Redis: redis:// or rediss:// (TLS), password and
//	                                  DB in the URL; default redis://127.0.0.1:6379/0
//	REDIS_CLUSTER_ADDRS=h1:p1,h2:p2   Redis Cluster, seeded with those nodes; credentials
//	                                  and TLS still come from REDIS_URL (its host is ignored)
//	REDIS_SENTINEL_ADDRS=h1:p1,... +  a Sentinel-managed primary with failover
//	REDIS_SENTINEL_MASTER=name        (REDIS_SENTINEL_PASSWORD for the sentinels, optional);
//	                                  credentials, DB and TLS for the data nodes from REDIS_URL
//
// REDIS_ACK_REPLICAS=N is the number of replicas every enqueue waits for with
// WAIT (0, the default, waits for none).
//
// Setting two topologies, half a Sentinel configuration, a REDIS_URL that
// does not parse, or an address that is not host:port is an error at
// start-up ([Config.Validate]), and no error message or description
// ([Config.String]) ever contains a password.
//
// The package imports only go-redis and the standard library, so lean
// producer binaries can link it.
package redisconf

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// DefaultURL is the Redis used when REDIS_URL is empty.
const DefaultURL = "redis://127.0.0.1:6379/0"

// The environment variables of the configuration.
const (
	EnvURL              = "REDIS_URL"
	EnvClusterAddrs     = "REDIS_CLUSTER_ADDRS"
	EnvSentinelAddrs    = "REDIS_SENTINEL_ADDRS"
	EnvSentinelMaster   = "REDIS_SENTINEL_MASTER"
	EnvSentinelPassword = "REDIS_SENTINEL_PASSWORD"
	EnvAckReplicas      = "REDIS_ACK_REPLICAS"
)

// Topology is the kind of Redis deployment a [Config] selects.
type Topology string

// The topologies.
const (
	// Single is one Redis server (or a managed endpoint that looks like one).
	Single Topology = "single"
	// Cluster is Redis Cluster.
	Cluster Topology = "cluster"
	// Sentinel is a primary whose failover Redis Sentinel manages.
	Sentinel Topology = "sentinel"
)

// Config is the Redis topology setting of a process. Its zero value is one
// Redis at [DefaultURL] with no replica acknowledgement.
type Config struct {
	// URL [REDIS_URL] is a redis:// or rediss:// (TLS) URL with the user,
	// password and DB, e.g. redis://:secret@10.0.0.5:6379/0; query
	// parameters of go-redis (?dial_timeout=3s, ?pool_size=...) are
	// honoured. "" means DefaultURL. With Cluster or Sentinel its host is
	// ignored and it gives only the credentials, DB (Sentinel; Cluster has
	// only DB 0), TLS and those parameters for the data nodes.
	URL string
	// ClusterAddrs [REDIS_CLUSTER_ADDRS] are host:port seeds of a Redis
	// Cluster; set, they select Cluster. Empty: not Cluster.
	ClusterAddrs []string
	// SentinelAddrs [REDIS_SENTINEL_ADDRS] are host:port addresses of the
	// sentinels; set together with SentinelMaster, they select Sentinel.
	// Empty: not Sentinel.
	SentinelAddrs []string
	// SentinelMaster [REDIS_SENTINEL_MASTER] is the name the sentinels
	// monitor the primary under. Required with SentinelAddrs.
	SentinelMaster string
	// SentinelPassword [REDIS_SENTINEL_PASSWORD] is the sentinels' own
	// password (their requirepass); a secret. Empty: the sentinels need none.
	SentinelPassword string
	// AckReplicas [REDIS_ACK_REPLICAS] is how many replicas must
	// acknowledge each enqueue (WAIT) before it counts as done; on Cluster,
	// replicas of the node that took the write. Zero waits for none.
	AckReplicas int
}

// Topology returns the topology c selects: Cluster when ClusterAddrs is
// set, Sentinel when SentinelAddrs or SentinelMaster is, else Single. It is
// meaningful only for a Config that passes [Config.Validate].
func (c Config) Topology() Topology {
	switch {
	case len(c.ClusterAddrs) > 0:
		return Cluster
	case len(c.SentinelAddrs) > 0 || c.SentinelMaster != "":
		return Sentinel
	default:
		return Single
	}
}

// url returns the URL, DefaultURL when empty.
func (c Config) url() string {
	if c.URL == "" {
		return DefaultURL
	}
	return c.URL
}

// Validate reports every problem in c, one error per problem joined with
// [errors.Join], each starting with the variable(s) to fix. No message
// contains a password.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	cluster := len(c.ClusterAddrs) > 0
	sentinel := len(c.SentinelAddrs) > 0 || c.SentinelMaster != ""
	if cluster && sentinel {
		add("%s and %s: set one topology, Redis Cluster or Sentinel, not both", EnvClusterAddrs, strings.Join(c.sentinelVarsSet(), " and "))
	}
	if len(c.SentinelAddrs) > 0 && c.SentinelMaster == "" {
		add("%s: required with %s (the name the sentinels monitor the primary under)", EnvSentinelMaster, EnvSentinelAddrs)
	}
	if c.SentinelMaster != "" && len(c.SentinelAddrs) == 0 {
		add("%s: required with %s (the sentinels' host:port addresses)", EnvSentinelAddrs, EnvSentinelMaster)
	}
	if c.SentinelPassword != "" && !sentinel {
		add("%s: set, but %s and %s are not, so it would be ignored", EnvSentinelPassword, EnvSentinelAddrs, EnvSentinelMaster)
	}

	o, err := parseURL(c.url())
	switch {
	case err != nil:
		add("%s: %v", EnvURL, err)
	case (cluster || sentinel) && o.Network != "tcp":
		add("%s: want redis:// or rediss:// for the credentials and TLS of %s, got %s", EnvURL, c.topologyVars(), Redact(c.url()))
	case cluster && o.DB != 0:
		add("%s: selects database %d, but Redis Cluster (%s) has only database 0", EnvURL, o.DB, EnvClusterAddrs)
	}

	checkAddrs := func(env string, addrs []string) {
		for _, a := range addrs {
			if err := checkHostPort(a); err != nil {
				add("%s: %q is not host:port: %v", env, a, err)
			}
		}
	}
	checkAddrs(EnvClusterAddrs, c.ClusterAddrs)
	checkAddrs(EnvSentinelAddrs, c.SentinelAddrs)

	if c.AckReplicas < 0 {
		add("%s: want 0 or more replicas, got %d", EnvAckReplicas, c.AckReplicas)
	}
	return errors.Join(errs...)
}

// sentinelVarsSet names the Sentinel variables that are set.
func (c Config) sentinelVarsSet() []string {
	var vars []string
	if len(c.SentinelAddrs) > 0 {
		vars = append(vars, EnvSentinelAddrs)
	}
	if c.SentinelMaster != "" {
		vars = append(vars, EnvSentinelMaster)
	}
	return vars
}

// topologyVars names the variables that select c's topology.
func (c Config) topologyVars() string {
	if len(c.ClusterAddrs) > 0 {
		return EnvClusterAddrs
	}
	return strings.Join(c.sentinelVarsSet(), "/")
}

// checkHostPort accepts host:port with a non-empty host and a port from 1
// to 65535.
func checkHostPort(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New(strings.TrimPrefix(err.Error(), "address "+addr+": "))
	}
	if host == "" {
		return errors.New("missing host")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q is not a number from 1 to 65535", port)
	}
	return nil
}

// parseURL parses a Redis URL with go-redis. Its error never contains the
// URL's user information: the message is that of the same URL with the
// password masked, or, when only the user information is at fault, says so
// without quoting it.
func parseURL(raw string) (*redis.Options, error) {
	o, err := redis.ParseURL(raw)
	if err == nil {
		return o, nil
	}
	red := Redact(raw)
	if red == raw {
		return nil, err
	}
	if _, rerr := redis.ParseURL(red); rerr != nil {
		return nil, rerr
	}
	return nil, errors.New("invalid user or password in the URL: percent-encode characters such as @ : / % in them")
}

// Redact returns the Redis URL raw with its password masked, for logs and
// error messages: redis://user:secret@host:6379/0 becomes
// redis://user:xxxxx@host:6379/0. Everything up to the last "@" counts as
// user information, so a password containing "@" or "/" is masked whole;
// without a ":" the whole user information is masked, since go-redis reads
// redis://secret@host as a password-less user that may be one. It works on
// strings url.Parse rejects.
func Redact(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		scheme, rest = "", raw
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return raw
	}
	masked := "xxxxx"
	if user, _, hasPassword := strings.Cut(rest[:at], ":"); hasPassword {
		masked = user + ":xxxxx"
	}
	if !ok {
		return masked + rest[at:]
	}
	return scheme + "://" + masked + rest[at:]
}

// String describes c for logs and start-up banners, without any password:
//
//	redis://:xxxxx@10.0.0.5:6379/0
//	cluster 10.0.0.1:7000,10.0.0.2:7000 (tls, password)
//	sentinel master mymaster via 10.0.0.1:26379,10.0.0.2:26379 (db 0, password, sentinel password)
//
// with ", ack replicas N" when AckReplicas is set.
func (c Config) String() string {
	var b strings.Builder
	var details []string
	o, err := parseURL(c.url())
	switch c.Topology() {
	case Single:
		b.WriteString(Redact(c.url()))
	case Cluster:
		fmt.Fprintf(&b, "cluster %s", strings.Join(c.ClusterAddrs, ","))
	case Sentinel:
		fmt.Fprintf(&b, "sentinel master %s via %s", c.SentinelMaster, strings.Join(c.SentinelAddrs, ","))
		if err == nil {
			details = append(details, "db "+strconv.Itoa(o.DB))
		}
	}
	if c.Topology() != Single {
		switch {
		case err != nil:
			details = append(details, "invalid "+EnvURL)
		default:
			if o.TLSConfig != nil {
				details = append(details, "tls")
			}
			if o.Username != "" {
				details = append(details, "user "+o.Username)
			}
			if o.Password != "" {
				details = append(details, "password")
			}
		}
		if c.SentinelPassword != "" {
			details = append(details, "sentinel password")
		}
	}
	if c.AckReplicas > 0 {
		details = append(details, "ack replicas "+strconv.Itoa(c.AckReplicas))
	}
	if len(details) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(details, ", "))
	}
	return b.String()
}

// GoString is String, so that %#v cannot print a password either.
func (c Config) GoString() string { return "redisconf.Config{" + c.String() + "}" }

// Setting binds one variable of the configuration to its environment
// variable and, unless it is a secret, to a command-line flag, so that every
// process binds them identically.
type Setting struct {
	// Env is the environment variable, e.g. REDIS_URL.
	Env string
	// Flag is the flag name without dashes, e.g. redis-url; "" for a
	// secret, which is never taken from the command line (where ps would
	// show it).
	Flag string
	// Usage is the flag's help text.
	Usage string
	// Secret marks a password: taken from the environment only, never
	// printed.
	Secret bool
	// Set parses a value into the Config.
	Set func(string) error
}

// Settings returns the variables of c with their flags and setters:
// REDIS_URL (--redis-url; it may hold a password, so print it only through
// [Redact]),
// REDIS_CLUSTER_ADDRS (--redis-cluster-addrs), REDIS_SENTINEL_ADDRS
// (--redis-sentinel-addrs), REDIS_SENTINEL_MASTER (--redis-sentinel-master),
// REDIS_SENTINEL_PASSWORD (secret, no flag) and REDIS_ACK_REPLICAS
// (--redis-ack-replicas). Address lists are comma-separated; blanks around
// items and empty items are dropped.
func (c *Config) Settings() []Setting {
	list := func(p *[]string) func(string) error {
		return func(v string) error { *p = splitList(v); return nil }
	}
	return []Setting{
		{Env: EnvURL, Flag: "redis-url",
			Usage: "Redis URL: redis://[user:password@]host:port/db, rediss:// for TLS; with Cluster or Sentinel only its credentials, DB and TLS count (default " + DefaultURL + ")",
			Set:   func(v string) error { c.URL = v; return nil }},
		{Env: EnvClusterAddrs, Flag: "redis-cluster-addrs",
			Usage: "Redis Cluster seed nodes, comma-separated host:port; selects Redis Cluster",
			Set:   list(&c.ClusterAddrs)},
		{Env: EnvSentinelAddrs, Flag: "redis-sentinel-addrs",
			Usage: "Redis Sentinel addresses, comma-separated host:port; selects Sentinel (with --redis-sentinel-master)",
			Set:   list(&c.SentinelAddrs)},
		{Env: EnvSentinelMaster, Flag: "redis-sentinel-master",
			Usage: "name of the primary the sentinels monitor",
			Set:   func(v string) error { c.SentinelMaster = strings.TrimSpace(v); return nil }},
		{Env: EnvSentinelPassword, Secret: true,
			Usage: "password of the sentinels themselves (environment only)",
			Set:   func(v string) error { c.SentinelPassword = v; return nil }},
		{Env: EnvAckReplicas, Flag: "redis-ack-replicas",
			Usage: "replicas every enqueue waits for with WAIT (default 0: none)",
			Set: func(v string) error {
				n, err := strconv.Atoi(strings.TrimSpace(v))
				if err != nil || n < 0 {
					return fmt.Errorf("want a non-negative integer, got %q", v)
				}
				c.AckReplicas = n
				return nil
			}},
	}
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// FromEnv reads the configuration from the environment with getenv (an
// empty value counts as unset) and validates it. The error lists every
// problem, each naming its variable.
func FromEnv(getenv func(string) string) (Config, error) {
	var c Config
	var errs []error
	for _, s := range c.Settings() {
		if v := getenv(s.Env); v != "" {
			if err := s.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", s.Env, err))
			}
		}
	}
	if err := c.Validate(); err != nil {
		errs = append(errs, err)
	}
	return c, errors.Join(errs...)
}
