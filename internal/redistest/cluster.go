package redistest

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// clusterPrimaries is how many primaries a [Cluster] has; each has one
// replica.
const clusterPrimaries = 3

// slotCount is the number of hash slots of Redis Cluster.
const slotCount = 16384

// ClusterOptions configure a Redis Cluster started with [StartCluster] or
// [NewCluster]. The zero value is a cluster without a password and a node
// timeout of one second.
type ClusterOptions struct {
	// Password, when set, is required from clients by every node
	// (requirepass) and used by the replicas to sync (masterauth).
	Password string
	// NodeTimeout is cluster-node-timeout: how long a primary may be
	// unreachable before its replica takes over. Zero means one second.
	NodeTimeout time.Duration
	// Args are extra redis-server arguments for every node.
	Args []string
}

// Cluster is a real Redis Cluster of three primaries, each with one replica,
// every node a redis-server owned by the test binary: bound to 127.0.0.1 on
// free ports, each with its own directory and nodes.conf, AOF on,
// maxmemory-policy noeviction. It is formed without redis-cli (CLUSTER MEET,
// ADDSLOTSRANGE and REPLICATE), and is ready when every node reports
// cluster_state:ok and knows every other, and every replica is in sync.
//
// A Cluster never uses REDIS_URL: it is always private to the test binary.
type Cluster struct {
	opts   ClusterOptions
	nodes  []*Server // primaries first; at start nodes[i+clusterPrimaries] replicates nodes[i]
	buses  []int     // cluster bus port of each node
	ids    []string  // node ID of each node
	shared bool
	admins admins

	mu     sync.Mutex
	killed []string // addresses of the primaries killed by KillPrimaryFor
	closed bool
}

// StartCluster starts a cluster and waits until it is ready. Prefer
// [NewCluster] or [SharedCluster] in tests. Without a redis-server binary it
// returns an error (there is no embedded fallback).
func StartCluster(opts ClusterOptions) (*Cluster, error) {
	bin, err := realServer()
	if err != nil {
		return nil, err
	}
	if opts.NodeTimeout <= 0 {
		opts.NodeTimeout = time.Second
	}
	c := &Cluster{opts: opts, buses: make([]int, 2*clusterPrimaries)}
	c.nodes, err = startNodes(2*clusterPrimaries, func(i int) (*Server, error) {
		return startNode(bin, func(s *Server) error {
			bus, err := freePort()
			if err != nil {
				return err
			}
			c.buses[i] = bus
			args := []string{
				"--cluster-enabled", "yes",
				"--cluster-config-file", filepath.Join(s.Dir, "nodes.conf"),
				"--cluster-port", strconv.Itoa(bus),
				"--cluster-node-timeout", strconv.FormatInt(opts.NodeTimeout.Milliseconds(), 10),
				// A replica syncs at once instead of after the default 5s.
				"--repl-diskless-sync-delay", "0",
			}
			if opts.Password != "" {
				args = append(args, "--masterauth", opts.Password)
			}
			s.opts = Options{Password: opts.Password, Args: append(args, opts.Args...)}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if err := c.form(ctx); err != nil {
		c.stop()
		return nil, err
	}
	return c, nil
}

// NewCluster starts a cluster dedicated to tb and closes it at cleanup. The
// test is skipped (or failed, with MEETOPS_REQUIRE_REDIS_SERVER=1) when no
// redis-server is installed. Use it for tests that kill nodes.
func NewCluster(tb testing.TB, opts ClusterOptions) *Cluster {
	tb.Helper()
	RequireReal(tb)
	c, err := StartCluster(opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Close)
	return c
}

// SharedCluster returns the package's shared cluster, started on first use
// and stopped by [Main] when the package's tests end. Tests sharing it must
// not run in parallel if they [Cluster.Flush] it, and cannot kill its nodes
// (use [NewCluster]). Skips like [RequireReal] without a redis-server.
func SharedCluster(tb testing.TB) *Cluster {
	tb.Helper()
	return sharedCluster.get(tb, func() (*Cluster, error) {
		c, err := StartCluster(ClusterOptions{})
		if c != nil {
			c.shared = true
		}
		return c, err
	})
}

func (c *Cluster) admin(s *Server) *redis.Client { return c.admins.get(s.Addr, c.opts.Password) }

// form joins the nodes into a cluster and waits until it is ready.
func (c *Cluster) form(ctx context.Context) error {
	c.ids = make([]string, len(c.nodes))
	for i, s := range c.nodes {
		id, err := c.admin(s).ClusterMyID(ctx).Result()
		if err != nil {
			return fmt.Errorf("redistest: CLUSTER MYID on %s: %w", s.Addr, err)
		}
		c.ids[i] = id
		// Distinct epochs from the start, as redis-cli --cluster create
		// sets them, so no epoch collision has to be resolved first.
		if err := c.admin(s).Do(ctx, "CLUSTER", "SET-CONFIG-EPOCH", i+1).Err(); err != nil {
			return fmt.Errorf("redistest: CLUSTER SET-CONFIG-EPOCH on %s: %w", s.Addr, err)
		}
	}
	first := c.admin(c.nodes[0])
	for i, s := range c.nodes[1:] {
		if err := first.Do(ctx, "CLUSTER", "MEET", "127.0.0.1", portOf(s.Addr), c.buses[i+1]).Err(); err != nil {
			return fmt.Errorf("redistest: CLUSTER MEET %s: %w", s.Addr, err)
		}
	}
	for i := range clusterPrimaries {
		lo, hi := i*slotCount/clusterPrimaries, (i+1)*slotCount/clusterPrimaries-1
		if err := c.admin(c.nodes[i]).Do(ctx, "CLUSTER", "ADDSLOTSRANGE", lo, hi).Err(); err != nil {
			return fmt.Errorf("redistest: CLUSTER ADDSLOTSRANGE %d %d on %s: %w", lo, hi, c.nodes[i].Addr, err)
		}
	}
	// A replica can replicate its primary once the handshake has made the
	// primary known to it.
	pending := map[int]bool{}
	for i := clusterPrimaries; i < len(c.nodes); i++ {
		pending[i] = true
	}
	err := poll(ctx, "replicas attach to their primaries", func(ctx context.Context) (bool, string, error) {
		var last string
		for i := range pending {
			err := c.admin(c.nodes[i]).ClusterReplicate(ctx, c.ids[i-clusterPrimaries]).Err()
			if err == nil {
				delete(pending, i)
				continue
			}
			if !strings.Contains(err.Error(), "Unknown node") {
				return false, "", fmt.Errorf("CLUSTER REPLICATE on %s: %w", c.nodes[i].Addr, err)
			}
			last = err.Error()
		}
		return len(pending) == 0, last, nil
	})
	if err != nil {
		return err
	}
	return poll(ctx, "cluster ready", func(ctx context.Context) (bool, string, error) {
		for i, s := range c.nodes {
			if state := c.nodeReady(ctx, i); state != "" {
				return false, s.Addr + ": " + state, nil
			}
		}
		return true, "", nil
	})
}

// nodeReady returns "" when node i is ready, or what it still waits for.
func (c *Cluster) nodeReady(ctx context.Context, i int) string {
	a := c.admin(c.nodes[i])
	info, err := a.ClusterInfo(ctx).Result()
	if err != nil {
		return err.Error()
	}
	if st := infoField(info, "cluster_state"); st != "ok" {
		return "cluster_state:" + st
	}
	nodes, err := a.ClusterNodes(ctx).Result()
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimSpace(nodes), "\n")
	if len(lines) != len(c.nodes) {
		return fmt.Sprintf("knows %d nodes", len(lines))
	}
	for _, line := range lines {
		f := strings.Fields(line)
		if len(f) < 8 {
			return "short CLUSTER NODES line " + line
		}
		id, flags, master, link := f[0], f[2], f[3], f[7]
		if strings.Contains(flags, "fail") || strings.Contains(flags, "handshake") || strings.Contains(flags, "noaddr") || link != "connected" {
			return "sees " + line
		}
		j := slices.Index(c.ids, id)
		if j < 0 {
			return "sees a stranger " + line
		}
		if j >= clusterPrimaries && (!strings.Contains(flags, "slave") || master != c.ids[j-clusterPrimaries]) {
			return "does not see the replica yet: " + line
		}
	}
	repl, err := a.Info(ctx, "replication").Result()
	if err != nil {
		return err.Error()
	}
	if i >= clusterPrimaries {
		if infoField(repl, "master_link_status") != "up" || infoField(repl, "master_sync_in_progress") != "0" {
			return "replica not in sync"
		}
	} else if infoField(repl, "connected_slaves") != "1" || !strings.Contains(infoField(repl, "slave0"), "state=online") {
		return "replica not online"
	}
	return ""
}

// Addrs returns the addresses of the primaries the cluster started with, to
// seed a cluster client. A client learns the other nodes from them, and
// keeps working when one of them is killed.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, clusterPrimaries)
	for i := range addrs {
		addrs[i] = c.nodes[i].Addr
	}
	return addrs
}

// Password returns the password the nodes require ("" for none).
func (c *Cluster) Password() string { return c.opts.Password }

// Nodes returns every node, primaries first (at start, node i+3 is the
// replica of node i).
func (c *Cluster) Nodes() []*Server { return slices.Clone(c.nodes) }

// Client returns a go-redis cluster client with default options, seeded with
// [Cluster.Addrs], closed at cleanup.
func (c *Cluster) Client(tb testing.TB) *redis.ClusterClient {
	tb.Helper()
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs(), Password: c.opts.Password})
	tb.Cleanup(func() { _ = cc.Close() })
	return cc
}

// Flush deletes every key (FLUSHALL) on every running primary of this
// cluster, which the test binary started itself, for tests that share a
// cluster one after another.
func (c *Cluster) Flush(ctx context.Context) error {
	var errs []error
	for _, s := range c.nodes {
		if !s.running() {
			continue
		}
		a := c.admin(s)
		if !isMaster(ctx, a) {
			continue
		}
		if err := a.FlushAll(ctx).Err(); err != nil {
			errs = append(errs, fmt.Errorf("redistest: FLUSHALL on %s: %w", s.Addr, err))
		}
	}
	return errors.Join(errs...)
}

// live returns the running nodes.
func (c *Cluster) live() []*Server {
	var out []*Server
	for _, s := range c.nodes {
		if s.running() {
			out = append(out, s)
		}
	}
	return out
}

// Slot returns the hash slot of key (CLUSTER KEYSLOT).
func (c *Cluster) Slot(ctx context.Context, key string) (int, error) {
	var lastErr error = errors.New("redistest: no node is running")
	for _, s := range c.live() {
		slot, err := c.admin(s).ClusterKeySlot(ctx, key).Result()
		if err == nil {
			return int(slot), nil
		}
		lastErr = err
	}
	return 0, lastErr
}

// PrimaryFor returns the node serving key's slot as primary: the running
// node that answers ROLE master and owns the slot in its own CLUSTER SHARDS
// or, while none does (a failover is under way), the owner in the view of
// the first running node that answers.
func (c *Cluster) PrimaryFor(key string) (*Server, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	slot, err := c.Slot(ctx, key)
	if err != nil {
		return nil, err
	}
	if s, _ := c.claimant(ctx, slot, nil); s != nil {
		return s, nil
	}
	var lastErr error = errors.New("no node is running")
	for _, s := range c.live() {
		addr, err := c.ownerOf(ctx, s, slot)
		if err != nil {
			lastErr = err
			continue
		}
		for _, n := range c.nodes {
			if n.Addr == addr {
				return n, nil
			}
		}
		return nil, fmt.Errorf("redistest: slot %d is served by %s, which is not a node of this cluster", slot, addr)
	}
	return nil, fmt.Errorf("redistest: primary for %q: %w", key, lastErr)
}

// claimant returns the running node, other than those in skip, that
// answers ROLE master, owns slot in its own CLUSTER SHARDS and reports
// cluster_state:ok; or nil and what each node said.
func (c *Cluster) claimant(ctx context.Context, slot int, skip []string) (*Server, string) {
	var state []string
	for _, s := range c.live() {
		if slices.Contains(skip, s.Addr) {
			continue
		}
		a := c.admin(s)
		if !isMaster(ctx, a) {
			continue
		}
		owner, err := c.ownerOf(ctx, s, slot)
		if err != nil || owner != s.Addr {
			state = append(state, fmt.Sprintf("%s sees owner %q (%v)", s.Addr, owner, err))
			continue
		}
		info, err := a.ClusterInfo(ctx).Result()
		if st := infoField(info, "cluster_state"); err != nil || st != "ok" {
			state = append(state, fmt.Sprintf("%s owns it, cluster_state %q", s.Addr, st))
			continue
		}
		return s, ""
	}
	return nil, strings.Join(state, "; ")
}

// ownerOf returns the address of the primary of slot in the view of node s
// (CLUSTER SHARDS).
func (c *Cluster) ownerOf(ctx context.Context, s *Server, slot int) (string, error) {
	shards, err := c.admin(s).ClusterShards(ctx).Result()
	if err != nil {
		return "", err
	}
	for _, sh := range shards {
		if !slices.ContainsFunc(sh.Slots, func(r redis.SlotRange) bool { return int64(slot) >= r.Start && int64(slot) <= r.End }) {
			continue
		}
		for _, n := range sh.Nodes {
			if n.Role == "master" {
				return fmt.Sprintf("%s:%d", n.IP, n.Port), nil
			}
		}
	}
	return "", fmt.Errorf("slot %d has no primary in the view of %s", slot, s.Addr)
}

// KillPrimaryFor kills the primary serving key's slot with SIGKILL, as a
// crash would, and returns when it did. Its replica is then promoted by the
// cluster after about the node timeout; see [Cluster.WaitPromoted]. The
// shared cluster refuses: other tests use it.
func (c *Cluster) KillPrimaryFor(key string) (killedAt time.Time, err error) {
	if c.shared {
		return time.Time{}, errors.New("redistest: the shared cluster's nodes cannot be killed; use NewCluster")
	}
	p, err := c.PrimaryFor(key)
	if err != nil {
		return time.Time{}, err
	}
	c.mu.Lock()
	c.killed = append(c.killed, p.Addr)
	c.mu.Unlock()
	killedAt = time.Now()
	p.Kill()
	return killedAt, nil
}

// WaitPromoted waits, polling every node every 20ms until ctx ends, until
// key's slot is served again by a running primary that is not one killed by
// [Cluster.KillPrimaryFor]: a node that reports ROLE master, owns the slot in
// its own CLUSTER SHARDS and cluster_state:ok. It returns when that was
// first seen and the new primary's address.
func (c *Cluster) WaitPromoted(ctx context.Context, key string) (promotedAt time.Time, newAddr string, err error) {
	slot, err := c.Slot(ctx, key)
	if err != nil {
		return time.Time{}, "", err
	}
	c.mu.Lock()
	killed := slices.Clone(c.killed)
	c.mu.Unlock()
	err = poll(ctx, fmt.Sprintf("slot %d promoted", slot), func(ctx context.Context) (bool, string, error) {
		s, state := c.claimant(ctx, slot, killed)
		if s == nil {
			return false, state, nil
		}
		promotedAt, newAddr = time.Now(), s.Addr
		return true, "", nil
	})
	return promotedAt, newAddr, err
}

// RestartKilled starts the primaries that [Cluster.KillPrimaryFor] killed
// again, on their old ports with their old directories (nodes.conf and
// AOF), as a supervisor restarting a crashed process would, and waits,
// polling every 20ms until ctx ends, until each is back as a replica of
// the primary promoted in its place and in sync with it, so that every
// primary has a replica again. (Should the cluster have failed over once
// more meanwhile, a restarted node may be a primary again, with a replica
// in sync.) It returns when that was first seen. Restarted nodes no longer
// count as killed.
func (c *Cluster) RestartKilled(ctx context.Context) (syncedAt time.Time, err error) {
	c.mu.Lock()
	killed := c.killed
	c.killed = nil
	c.mu.Unlock()
	var restarted []*Server
	for _, s := range c.nodes {
		if slices.Contains(killed, s.Addr) && !s.running() {
			if err := s.StartAgain(); err != nil {
				return time.Time{}, err
			}
			restarted = append(restarted, s)
		}
	}
	err = poll(ctx, "restarted nodes rejoin as replicas", func(ctx context.Context) (bool, string, error) {
		for _, s := range restarted {
			a := c.admin(s)
			replica := replicaInSync(ctx, a)
			if replica != "" && (!isMaster(ctx, a) || replicaOnline(ctx, a) != "") {
				return false, s.Addr + ": " + replica, nil
			}
			info, err := a.ClusterInfo(ctx).Result()
			if err != nil || infoField(info, "cluster_state") != "ok" {
				return false, s.Addr + ": cluster_state:" + infoField(info, "cluster_state"), nil
			}
		}
		syncedAt = time.Now()
		return true, "", nil
	})
	return syncedAt, err
}

// replicaInSync returns "" when the server at a is a replica whose link to
// its primary is up and not syncing, or else what it is.
func replicaInSync(ctx context.Context, a *redis.Client) string {
	repl, err := a.Info(ctx, "replication").Result()
	if err != nil {
		return err.Error()
	}
	if infoField(repl, "role") != "slave" || infoField(repl, "master_link_status") != "up" || infoField(repl, "master_sync_in_progress") != "0" {
		return fmt.Sprintf("role:%s master_link_status:%s master_sync_in_progress:%s",
			infoField(repl, "role"), infoField(repl, "master_link_status"), infoField(repl, "master_sync_in_progress"))
	}
	return ""
}

// replicaOnline returns "" when the server at a is a primary with a replica
// that finished its sync (state=online), or else what it is.
func replicaOnline(ctx context.Context, a *redis.Client) string {
	repl, err := a.Info(ctx, "replication").Result()
	if err != nil {
		return err.Error()
	}
	if infoField(repl, "role") != "master" || !strings.Contains(infoField(repl, "slave0"), "state=online") {
		return fmt.Sprintf("role:%s connected_slaves:%s slave0:%s", infoField(repl, "role"), infoField(repl, "connected_slaves"), infoField(repl, "slave0"))
	}
	return ""
}

// Close stops every node and removes their directories. On the shared
// cluster it does nothing: [Main] closes that one.
func (c *Cluster) Close() {
	if !c.shared {
		c.stop()
	}
}

func (c *Cluster) stop() {
	c.mu.Lock()
	closed := c.closed
	c.closed = true
	c.mu.Unlock()
	if closed {
		return
	}
	c.admins.close()
	var wg sync.WaitGroup
	for _, s := range c.nodes {
		wg.Go(s.Close)
	}
	wg.Wait()
}
