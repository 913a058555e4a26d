package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// sentinelCount is how many sentinels watch a [Sentinel]'s primary; a
// failover needs two of them (the quorum and a majority).
const sentinelCount = 3

// DefaultMasterName is the name under which the sentinels of a [Sentinel]
// monitor its primary, unless [SentinelOptions.MasterName] says otherwise.
const DefaultMasterName = "mymaster"

// SentinelOptions configure a Sentinel topology started with
// [StartSentinel] or [NewSentinel]. The zero value has no passwords, the
// master name "mymaster" and a down-after of one second.
type SentinelOptions struct {
	// MasterName is the name the sentinels monitor the primary under.
	// Empty means [DefaultMasterName].
	MasterName string
	// Password, when set, is required from clients by the primary and the
	// replica (requirepass), which also use it to sync (masterauth); the
	// sentinels use it to reach them (sentinel auth-pass).
	Password string
	// SentinelPassword, when set, is required from clients by the sentinels
	// (requirepass in sentinel.conf), which use it among themselves too
	// (sentinel sentinel-pass).
	SentinelPassword string
	// DownAfter is down-after-milliseconds: how long the primary may be
	// unreachable before it is failed over. Zero means one second.
	DownAfter time.Duration
	// FailoverTimeout is failover-timeout. Zero means two seconds.
	FailoverTimeout time.Duration
}

// Sentinel is a real Sentinel-managed Redis: one primary, one replica and
// three sentinels with a quorum of two, every one a redis-server owned by the
// test binary, bound to 127.0.0.1 on free ports with its own directory (and,
// for a sentinel, its own writable sentinel.conf). The data nodes run with
// AOF on and maxmemory-policy noeviction. It is ready when every sentinel
// monitors the primary, knows the replica and the two other sentinels, and
// the replica is in sync.
//
// A Sentinel never uses REDIS_URL: it is always private to the test binary.
type Sentinel struct {
	opts      SentinelOptions
	data      []*Server // primary and replica, in the order they started
	sentinels []*Server
	shared    bool
	admins    admins

	mu       sync.Mutex
	sclients map[string]*redis.SentinelClient
	killed   []string // addresses of the primaries killed by KillPrimary
	closed   bool
}

// StartSentinel starts a Sentinel topology and waits until it is ready.
// Prefer [NewSentinel] or [SharedSentinel] in tests. Without a redis-server
// binary it returns an error (there is no embedded fallback).
func StartSentinel(opts SentinelOptions) (*Sentinel, error) {
	bin, err := realServer()
	if err != nil {
		return nil, err
	}
	if opts.MasterName == "" {
		opts.MasterName = DefaultMasterName
	}
	if opts.DownAfter <= 0 {
		opts.DownAfter = time.Second
	}
	if opts.FailoverTimeout <= 0 {
		opts.FailoverTimeout = 2 * time.Second
	}
	x := &Sentinel{opts: opts}
	dataArgs := []string{"--repl-diskless-sync-delay", "0"}
	if opts.Password != "" {
		dataArgs = append(dataArgs, "--masterauth", opts.Password)
	}
	primary, err := startNode(bin, func(s *Server) error {
		s.opts = Options{Password: opts.Password, Args: dataArgs}
		return nil
	})
	if err != nil {
		return nil, err
	}
	x.data = append(x.data, primary)
	replica, err := startNode(bin, func(s *Server) error {
		s.opts = Options{Password: opts.Password, Args: append(slices.Clone(dataArgs),
			"--replicaof", "127.0.0.1", portOf(primary.Addr))}
		return nil
	})
	if err != nil {
		x.stop()
		return nil, err
	}
	x.data = append(x.data, replica)
	// The sentinels start once the replica is in sync, so that the
	// primary's INFO, which each sentinel asks for at once, lists it
	// (the next one comes ten seconds later).
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if err := x.waitReplica(ctx); err != nil {
		x.stop()
		return nil, err
	}
	if x.sentinels, err = x.startSentinels(bin, primary); err != nil {
		x.stop()
		return nil, err
	}
	if err := x.waitReady(ctx); err != nil {
		x.stop()
		return nil, err
	}
	return x, nil
}

// startSentinels starts the three sentinels. Each one's config names the
// others with their IDs (sentinel known-sentinel), so they need not wait for
// each other's hello messages, published every two seconds; all three ports
// are therefore picked first, and all three are started again on new ports
// if one was taken meanwhile.
func (x *Sentinel) startSentinels(bin string, primary *Server) ([]*Server, error) {
	var lastErr error
	for range 5 {
		ports := make([]int, sentinelCount)
		ids := make([]string, sentinelCount)
		for i := range ports {
			for {
				p, err := freePort()
				if err != nil {
					return nil, err
				}
				if !slices.Contains(ports, p) {
					ports[i] = p
					break
				}
			}
			ids[i] = randomID()
		}
		nodes, err := startNodes(sentinelCount, func(i int) (*Server, error) {
			return startNodeOn(bin, ports[i], func(s *Server) error {
				s.conf = filepath.Join(s.Dir, "sentinel.conf")
				s.opts = Options{Password: x.opts.SentinelPassword}
				return os.WriteFile(s.conf, []byte(x.sentinelConf(s, primary, i, ports, ids)), 0o600)
			})
		})
		if err == nil {
			return nodes, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

// sentinelConf is the config file of sentinel i.
func (x *Sentinel) sentinelConf(s *Server, primary *Server, i int, ports []int, ids []string) string {
	name := x.opts.MasterName
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	line("port %d", ports[i])
	line("bind 127.0.0.1")
	line("protected-mode no")
	line("dir %q", s.Dir)
	line("logfile %q", filepath.Join(s.Dir, "redis.log")) // where a failed start is reported from
	line("sentinel myid %s", ids[i])
	line("sentinel monitor %s 127.0.0.1 %s 2", name, portOf(primary.Addr))
	line("sentinel down-after-milliseconds %s %d", name, x.opts.DownAfter.Milliseconds())
	line("sentinel failover-timeout %s %d", name, x.opts.FailoverTimeout.Milliseconds())
	line("sentinel parallel-syncs %s 1", name)
	if x.opts.Password != "" {
		line("sentinel auth-pass %s %q", name, x.opts.Password)
	}
	if x.opts.SentinelPassword != "" {
		line("requirepass %q", x.opts.SentinelPassword)
		line("sentinel sentinel-pass %q", x.opts.SentinelPassword)
	}
	for j := range ports {
		if j != i {
			line("sentinel known-sentinel %s 127.0.0.1 %d %s", name, ports[j], ids[j])
		}
	}
	return b.String()
}

func randomID() string {
	b := make([]byte, 20)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// NewSentinel starts a Sentinel topology dedicated to tb and closes it at
// cleanup. The test is skipped (or failed, with
// MEETOPS_REQUIRE_REDIS_SERVER=1) when no redis-server is installed. Use it
// for tests that kill the primary.
func NewSentinel(tb testing.TB, opts SentinelOptions) *Sentinel {
	tb.Helper()
	RequireReal(tb)
	x, err := StartSentinel(opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(x.Close)
	return x
}

// SharedSentinel returns the package's shared Sentinel topology, started on
// first use and stopped by [Main] when the package's tests end. Tests
// sharing it must not run in parallel if they [Sentinel.Flush] it, and
// cannot kill its primary (use [NewSentinel]). Skips like [RequireReal]
// without a redis-server.
func SharedSentinel(tb testing.TB) *Sentinel {
	tb.Helper()
	return sharedSentinel.get(tb, func() (*Sentinel, error) {
		x, err := StartSentinel(SentinelOptions{})
		if x != nil {
			x.shared = true
		}
		return x, err
	})
}

func (x *Sentinel) admin(s *Server) *redis.Client { return x.admins.get(s.Addr, x.opts.Password) }

func (x *Sentinel) sentinel(s *Server) *redis.SentinelClient {
	x.mu.Lock()
	defer x.mu.Unlock()
	if c, ok := x.sclients[s.Addr]; ok {
		return c
	}
	if x.sclients == nil {
		x.sclients = map[string]*redis.SentinelClient{}
	}
	c := redis.NewSentinelClient(&redis.Options{
		Addr: s.Addr, Password: x.opts.SentinelPassword,
		MaxRetries: -1, DialTimeout: time.Second, ReadTimeout: 2 * time.Second,
		DialerRetries: 1, PoolSize: 2, DisableIdentity: true,
	})
	x.sclients[s.Addr] = c
	return c
}

// waitReplica waits until the replica is in sync with the primary.
func (x *Sentinel) waitReplica(ctx context.Context) error {
	return poll(ctx, "replica in sync", func(ctx context.Context) (bool, string, error) {
		repl, err := x.admin(x.data[1]).Info(ctx, "replication").Result()
		if err != nil {
			return false, err.Error(), nil
		}
		up := infoField(repl, "master_link_status") == "up" && infoField(repl, "master_sync_in_progress") == "0"
		return up, "master_link_status:" + infoField(repl, "master_link_status"), nil
	})
}

// waitReady waits until every sentinel monitors the primary, sees the
// replica and the two other sentinels, and the replica is in sync.
func (x *Sentinel) waitReady(ctx context.Context) error {
	primary, replica := x.data[0], x.data[1]
	if err := x.waitReplica(ctx); err != nil {
		return err
	}
	return poll(ctx, "sentinel ready", func(ctx context.Context) (bool, string, error) {
		for _, s := range x.sentinels {
			sc := x.sentinel(s)
			m, err := sc.Master(ctx, x.opts.MasterName).Result()
			if err != nil {
				return false, s.Addr + ": " + err.Error(), nil
			}
			if net.JoinHostPort(m["ip"], m["port"]) != primary.Addr || m["flags"] != "master" ||
				m["num-slaves"] != "1" || m["num-other-sentinels"] != strconv.Itoa(sentinelCount-1) {
				return false, fmt.Sprintf("%s: master %s:%s flags=%s num-slaves=%s num-other-sentinels=%s",
					s.Addr, m["ip"], m["port"], m["flags"], m["num-slaves"], m["num-other-sentinels"]), nil
			}
			rs, err := sc.Replicas(ctx, x.opts.MasterName).Result()
			if err != nil {
				return false, s.Addr + ": " + err.Error(), nil
			}
			if len(rs) != 1 || rs[0]["flags"] != "slave" || rs[0]["master-link-status"] != "ok" ||
				net.JoinHostPort(rs[0]["ip"], rs[0]["port"]) != replica.Addr {
				return false, fmt.Sprintf("%s: replicas %v", s.Addr, rs), nil
			}
		}
		return true, "", nil
	})
}

// SentinelAddrs returns the sentinels' addresses.
func (x *Sentinel) SentinelAddrs() []string {
	addrs := make([]string, len(x.sentinels))
	for i, s := range x.sentinels {
		addrs[i] = s.Addr
	}
	return addrs
}

// MasterName returns the name the sentinels monitor the primary under.
func (x *Sentinel) MasterName() string { return x.opts.MasterName }

// Password returns the password the primary and the replica require ("" for
// none).
func (x *Sentinel) Password() string { return x.opts.Password }

// SentinelPassword returns the password the sentinels require ("" for none).
func (x *Sentinel) SentinelPassword() string { return x.opts.SentinelPassword }

// Client returns a go-redis failover client (NewFailoverClient) with default
// options, closed at cleanup.
func (x *Sentinel) Client(tb testing.TB) *redis.Client {
	tb.Helper()
	c := redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName: x.opts.MasterName, SentinelAddrs: x.SentinelAddrs(),
		Password: x.opts.Password, SentinelPassword: x.opts.SentinelPassword,
	})
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// Primary returns the data node that the sentinels report as the primary
// (the first sentinel that answers) and that answers ROLE master.
func (x *Sentinel) Primary() (*Server, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	addr, err := x.reportedPrimary(ctx)
	if err != nil {
		return nil, err
	}
	for _, s := range x.data {
		if s.Addr == addr {
			if !s.running() || !isMaster(ctx, x.admin(s)) {
				return nil, fmt.Errorf("redistest: the sentinels report %s as the primary, but it does not answer ROLE master", addr)
			}
			return s, nil
		}
	}
	return nil, fmt.Errorf("redistest: the sentinels report %s as the primary, which is not a node of this topology", addr)
}

// reportedPrimary asks the running sentinels, one after another, for the
// primary's address.
func (x *Sentinel) reportedPrimary(ctx context.Context) (string, error) {
	var lastErr error = errors.New("no sentinel is running")
	for _, s := range x.sentinels {
		if !s.running() {
			continue
		}
		hp, err := x.sentinel(s).GetMasterAddrByName(ctx, x.opts.MasterName).Result()
		if err == nil && len(hp) == 2 {
			return net.JoinHostPort(hp[0], hp[1]), nil
		}
		lastErr = err
	}
	return "", fmt.Errorf("redistest: primary of %q: %w", x.opts.MasterName, lastErr)
}

// Flush deletes every key (FLUSHALL) on the primary of this topology, which
// the test binary started itself, for tests that share it one after another.
func (x *Sentinel) Flush(ctx context.Context) error {
	p, err := x.Primary()
	if err != nil {
		return err
	}
	if err := x.admin(p).FlushAll(ctx).Err(); err != nil {
		return fmt.Errorf("redistest: FLUSHALL on %s: %w", p.Addr, err)
	}
	return nil
}

// KillPrimary kills the primary with SIGKILL, as a crash would, and returns
// when it did. The sentinels then promote the replica after about
// DownAfter plus their election; see [Sentinel.WaitPromoted]. The shared
// topology refuses: other tests use it.
func (x *Sentinel) KillPrimary() (killedAt time.Time, err error) {
	if x.shared {
		return time.Time{}, errors.New("redistest: the shared Sentinel topology's primary cannot be killed; use NewSentinel")
	}
	p, err := x.Primary()
	if err != nil {
		return time.Time{}, err
	}
	x.mu.Lock()
	x.killed = append(x.killed, p.Addr)
	x.mu.Unlock()
	killedAt = time.Now()
	p.Kill()
	return killedAt, nil
}

// WaitPromoted waits, polling every sentinel every 20ms until ctx ends,
// until a sentinel reports a new primary, one not killed by
// [Sentinel.KillPrimary], that answers ROLE master, and then until every
// running sentinel reports it. It returns when the new primary was first
// seen and its address.
func (x *Sentinel) WaitPromoted(ctx context.Context) (promotedAt time.Time, newAddr string, err error) {
	x.mu.Lock()
	killed := slices.Clone(x.killed)
	x.mu.Unlock()
	err = poll(ctx, "sentinels promote a new primary", func(ctx context.Context) (bool, string, error) {
		var state []string
		agree := true
		for _, s := range x.sentinels {
			if !s.running() {
				continue
			}
			hp, err := x.sentinel(s).GetMasterAddrByName(ctx, x.opts.MasterName).Result()
			if err != nil || len(hp) != 2 {
				state = append(state, fmt.Sprintf("%s: %v", s.Addr, err))
				agree = false
				continue
			}
			addr := net.JoinHostPort(hp[0], hp[1])
			if slices.Contains(killed, addr) || (newAddr != "" && addr != newAddr) {
				state = append(state, s.Addr+" reports "+addr)
				agree = false
				continue
			}
			if newAddr == "" {
				if !isMaster(ctx, x.admins.get(addr, x.opts.Password)) {
					state = append(state, s.Addr+" reports "+addr+", not yet ROLE master")
					agree = false
					continue
				}
				promotedAt, newAddr = time.Now(), addr
			}
		}
		return agree && newAddr != "", strings.Join(state, "; "), nil
	})
	return promotedAt, newAddr, err
}

// RestartKilled starts the primaries that [Sentinel.KillPrimary] killed
// again, on their old ports with their old directories, as a supervisor
// restarting a crashed process would; the sentinels turn each into a
// replica of the primary promoted in its place (up to their 10 s INFO
// period after it answers). It waits, polling every 20ms until ctx ends,
// until the primary the sentinels report has a replica in sync again, and
// returns when that was first seen. (Should the sentinels have failed over
// once more meanwhile, the restarted node may be that primary.) Restarted
// nodes no longer count as killed.
func (x *Sentinel) RestartKilled(ctx context.Context) (syncedAt time.Time, err error) {
	x.mu.Lock()
	killed := x.killed
	x.killed = nil
	x.mu.Unlock()
	for _, s := range x.data {
		if slices.Contains(killed, s.Addr) && !s.running() {
			if err := s.StartAgain(); err != nil {
				return time.Time{}, err
			}
		}
	}
	err = poll(ctx, "the primary has a replica in sync again", func(ctx context.Context) (bool, string, error) {
		addr, err := x.reportedPrimary(ctx)
		if err != nil {
			return false, err.Error(), nil
		}
		state := "sentinels report primary " + addr
		if m, err := x.sentinel(x.sentinels[0]).Master(ctx, x.opts.MasterName).Result(); err == nil {
			state += " (config-epoch " + m["config-epoch"] + ")"
		}
		if st := replicaOnline(ctx, x.admins.get(addr, x.opts.Password)); st != "" {
			return false, state + ": " + st, nil
		}
		syncedAt = time.Now()
		return true, "", nil
	})
	return syncedAt, err
}

// Close stops every process and removes their directories. On the shared
// topology it does nothing: [Main] closes that one.
func (x *Sentinel) Close() {
	if !x.shared {
		x.stop()
	}
}

func (x *Sentinel) stop() {
	x.mu.Lock()
	closed := x.closed
	x.closed = true
	clients := x.sclients
	x.sclients = nil
	x.mu.Unlock()
	if closed {
		return
	}
	for _, c := range clients {
		_ = c.Close()
	}
	x.admins.close()
	var wg sync.WaitGroup
	for _, s := range append(slices.Clone(x.data), x.sentinels...) {
		wg.Go(s.Close)
	}
	wg.Wait()
}
