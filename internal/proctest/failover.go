package proctest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/asynqdb"
	"github.com/meetops/meetops/internal/redisconf"
	"github.com/meetops/meetops/internal/tasks"
)

// defaultQueueKey is a key in the hash slot of asynq's default queue: every
// key of a queue carries the queue's name as hash tag ({default}).
var defaultQueueKey = asynqdb.PendingKey(tasks.DefaultQueue)

// KillPrimary kills with SIGKILL, as a crash would, the primary that holds
// the default queue: on a cluster rig the primary of the {default} slot, on
// a Sentinel rig the primary. It returns when the process was killed. A
// rig on a shared topology, or on a single server, fails t.
func (r *Rig) KillPrimary(t *testing.T) time.Time {
	t.Helper()
	var at time.Time
	var err error
	switch r.Topology {
	case redisconf.Cluster:
		at, err = r.Cluster.KillPrimaryFor(defaultQueueKey)
	case redisconf.Sentinel:
		at, err = r.Sentinel.KillPrimary()
	default:
		t.Fatalf("proctest: KillPrimary on a %s rig: it has no replica to promote", r.Topology)
	}
	require.NoError(t, err, "kill the primary")
	return at
}

// WaitPromoted waits up to timeout, after KillPrimary, until the killed
// primary's replica serves the default queue as the new primary (on a
// cluster: owns the {default} slot with cluster_state:ok; on Sentinel:
// every running sentinel reports it and it answers ROLE master). It
// returns when that was first seen and the new primary's address.
func (r *Rig) WaitPromoted(t *testing.T, timeout time.Duration) (time.Time, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var (
		at   time.Time
		addr string
		err  error
	)
	switch r.Topology {
	case redisconf.Cluster:
		at, addr, err = r.Cluster.WaitPromoted(ctx, defaultQueueKey)
	case redisconf.Sentinel:
		at, addr, err = r.Sentinel.WaitPromoted(ctx)
	default:
		t.Fatalf("proctest: WaitPromoted on a %s rig", r.Topology)
	}
	require.NoError(t, err, "the replica is promoted")
	return at, addr
}

// WaitReplicated waits until the replica of the primary that holds queue
// has every write made to that primary so far, by anyone: on a cluster or
// Sentinel rig a failover then cannot lose them. It does nothing on a
// single server.
func (r *Rig) WaitReplicated(t *testing.T, queue string) {
	t.Helper()
	if r.Topology == redisconf.Single {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	w := asynqdb.New(r.RDB, asynqdb.Options{AckReplicas: 1, AckTimeout: 5 * time.Second})
	require.NoError(t, w.AckProbe(ctx, queue), "the replica of queue %s's primary catches up", queue)
}

// RestartKilledPrimary starts the primary that KillPrimary killed again,
// as a supervisor restarting a crashed process would, and waits until ctx
// ends for it to be back as the new primary's replica and in sync (on
// Sentinel the sentinels turn it into one: up to their 10 s INFO period
// after it answers). It returns when that was first seen. Unlike the other
// helpers it reports its error instead of failing a test, so that it can
// run in a goroutine of its own while the test watches the processes.
func (r *Rig) RestartKilledPrimary(ctx context.Context) (time.Time, error) {
	switch r.Topology {
	case redisconf.Cluster:
		return r.Cluster.RestartKilled(ctx)
	case redisconf.Sentinel:
		return r.Sentinel.RestartKilled(ctx)
	}
	return time.Time{}, fmt.Errorf("proctest: RestartKilledPrimary on a %s rig", r.Topology)
}
