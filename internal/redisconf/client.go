package redisconf

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// ClientOptions tune the clients [Config.NewClient] builds. Each zero value
// keeps what REDIS_URL's query parameters say (?pool_size=, ?dial_timeout=,
// ...) or, without one, the go-redis default; a set value wins over the URL.
type ClientOptions struct {
	// PoolSize is the most connections to one server (per node on
	// Cluster). Zero: 10 per CPU (5 per CPU on Cluster).
	PoolSize int
	// MinIdleConns is how many idle connections to keep open. Zero: none.
	MinIdleConns int
	// DialTimeout bounds connecting. Zero: 5s.
	DialTimeout time.Duration
	// ReadTimeout bounds waiting for a reply; -1 waits forever. Zero: 3s
	// (5s on Cluster).
	ReadTimeout time.Duration
	// WriteTimeout bounds sending a command; -1 waits forever. Zero:
	// ReadTimeout.
	WriteTimeout time.Duration
	// PoolTimeout bounds waiting for a free connection. Zero: ReadTimeout
	// plus one second.
	PoolTimeout time.Duration
	// ContextTimeoutEnabled makes reads and writes honour the deadline of
	// the command's context, not only ReadTimeout and WriteTimeout. Zero
	// (false): they do not.
	ContextTimeoutEnabled bool
	// MaxRetries is how often a failed command is retried; -1 never. Zero:
	// 3, or on Cluster none beyond the cluster client's own redirects and
	// retries on other nodes.
	MaxRetries int
	// ClientName is sent with CLIENT SETNAME on every connection. Zero
	// (""): none.
	ClientName string
}

// apply overrides o with the options that are set.
func (co ClientOptions) apply(o *redis.Options) {
	setInt := func(dst *int, v int) {
		if v != 0 {
			*dst = v
		}
	}
	setDur := func(dst *time.Duration, v time.Duration) {
		if v != 0 {
			*dst = v
		}
	}
	setInt(&o.PoolSize, co.PoolSize)
	setInt(&o.MinIdleConns, co.MinIdleConns)
	setInt(&o.MaxRetries, co.MaxRetries)
	setDur(&o.DialTimeout, co.DialTimeout)
	setDur(&o.ReadTimeout, co.ReadTimeout)
	setDur(&o.WriteTimeout, co.WriteTimeout)
	setDur(&o.PoolTimeout, co.PoolTimeout)
	if co.ContextTimeoutEnabled {
		o.ContextTimeoutEnabled = true
	}
	if co.ClientName != "" {
		o.ClientName = co.ClientName
	}
}

// NewClient validates c and returns a client for its topology: a
// *redis.Client for Single, a *redis.ClusterClient for Cluster and a
// failover *redis.Client (go-redis NewFailoverClient) for Sentinel. It does
// not connect; the first command does.
//
// On Cluster and Sentinel the TLS certificate of each node is checked
// against the host it is dialled at (REDIS_URL's host is ignored), and on
// Sentinel the sentinels are dialled with the same TLS setting as the data
// nodes (go-redis has one for both).
//
// The Cluster client follows a failover on its own: when a command fails
// because a node refused or dropped the connection, timed out or answered
// CLUSTERDOWN, it reloads its slot map, so the slots of a crashed primary
// are served by its promoted replica a few hundred milliseconds after the
// promotion, where go-redis alone waits for its 60s reload timer. The
// Sentinel client asks a sentinel for the primary on every new connection
// and follows as fast without help.
func (c Config) NewClient(co ClientOptions) (redis.UniversalClient, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	o, err := parseURL(c.url())
	if err != nil { // Validate parsed it already
		return nil, err
	}
	co.apply(o)
	switch c.Topology() {
	case Cluster:
		return newClusterClient(c.ClusterAddrs, o), nil
	case Sentinel:
		u := universal(c.SentinelAddrs, o)
		u.MasterName, u.SentinelPassword = c.SentinelMaster, c.SentinelPassword
		return redis.NewFailoverClient(u.Failover()), nil
	default:
		return redis.NewClient(o), nil
	}
}

// perNodeTLS returns o's TLS configuration without the server name that
// go-redis took from REDIS_URL's host, which Cluster and Sentinel ignore, so
// each node's certificate is checked against the host it is dialled at.
func perNodeTLS(o *redis.Options) *tls.Config {
	if o.TLSConfig == nil {
		return nil
	}
	t := o.TLSConfig.Clone()
	t.ServerName = ""
	return t
}

// universal carries what REDIS_URL and ClientOptions set in o over to the
// options go-redis derives its Cluster and Sentinel options from, once for
// both.
func universal(addrs []string, o *redis.Options) *redis.UniversalOptions {
	return &redis.UniversalOptions{
		Addrs: addrs,

		ClientName: o.ClientName, Protocol: o.Protocol,
		Username: o.Username, Password: o.Password, DB: o.DB,
		TLSConfig: perNodeTLS(o),

		MaxRetries: o.MaxRetries, MinRetryBackoff: o.MinRetryBackoff, MaxRetryBackoff: o.MaxRetryBackoff,
		DialTimeout: o.DialTimeout, ReadTimeout: o.ReadTimeout, WriteTimeout: o.WriteTimeout,
		ContextTimeoutEnabled: o.ContextTimeoutEnabled,

		PoolFIFO: o.PoolFIFO, PoolSize: o.PoolSize, PoolTimeout: o.PoolTimeout,
		MinIdleConns: o.MinIdleConns, MaxIdleConns: o.MaxIdleConns, MaxActiveConns: o.MaxActiveConns,
		MaxConcurrentDials: o.MaxConcurrentDials,
		ConnMaxIdleTime:    o.ConnMaxIdleTime, ConnMaxLifetime: o.ConnMaxLifetime, ConnMaxLifetimeJitter: o.ConnMaxLifetimeJitter,
	}
}

func newClusterClient(addrs []string, o *redis.Options) *redis.ClusterClient {
	cc := redis.NewClusterClient(universal(addrs, o).Cluster())
	cc.OnNewNode(func(node *redis.Client) { node.AddHook(reloadOnFailure{cc}) })
	return cc
}

// reloadOnFailure is a hook on every node client of a cluster client that
// asks for a reload of the slot map when a command fails in a way that says
// the topology may have changed: the node refused or dropped the
// connection, timed out, or answered CLUSTERDOWN.
//
// go-redis v9 reloads the slot map only on MOVED/ASK and READONLY replies
// and on a timer (ClusterStateReloadInterval, 60s). A SIGKILLed primary
// answers nothing, let alone MOVED, so without this hook a cluster client
// keeps sending that slot's commands to the dead address until the timer
// fires — measured at up to a minute. ReloadState is cheap to call often:
// go-redis runs at most one reload at a time, and folds every request that
// comes in meanwhile into one more reload 200ms later.
type reloadOnFailure struct{ cc *redis.ClusterClient }

// DialHook returns next unchanged: a failed dial surfaces as the error of
// the command that needed the connection.
func (h reloadOnFailure) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook asks for a reload after a command failed with a topology
// error. The cluster client's own CLUSTER SLOTS, sent while it reloads, does
// not count: a dead node that a reload happens to ask first would otherwise
// keep reloads going.
func (h reloadOnFailure) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if err != nil && cmd.Name() != "cluster" && topologyError(err) {
			h.cc.ReloadState(ctx)
		}
		return err
	}
}

// ProcessPipelineHook asks for a reload after a pipeline or transaction
// failed with a topology error.
func (h reloadOnFailure) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		if err == nil {
			for _, cmd := range cmds {
				if err = cmd.Err(); err != nil {
					break
				}
			}
		}
		if err != nil && topologyError(err) {
			h.cc.ReloadState(ctx)
		}
		return err
	}
}

// topologyError reports whether err may mean the node no longer serves its
// slots: a network error (refused, reset, timed out, closed), or a
// CLUSTERDOWN reply. A cancelled context, a nil reply or an ordinary command
// error does not.
func topologyError(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, redis.Nil) {
		return false
	}
	var ne net.Error
	switch {
	case errors.As(err, &ne),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, context.DeadlineExceeded):
		return true
	}
	return strings.HasPrefix(err.Error(), "CLUSTERDOWN ")
}
