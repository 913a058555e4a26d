package meetops_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops"
	"github.com/meetops/meetops/internal/tasks"
)

// startServer runs a real asynq server on rdb serving queues (its handler
// does nothing) and returns it once it runs; it is shut down when the test
// ends unless the test did so.
func startServer(t *testing.T, rdb redis.UniversalClient, queues map[string]int) *asynq.Server {
	t.Helper()
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{
		Concurrency:     1,
		Queues:          queues,
		LogLevel:        asynq.FatalLevel,
		ShutdownTimeout: time.Second,
	})
	require.NoError(t, srv.Start(asynq.HandlerFunc(func(context.Context, *asynq.Task) error { return nil })))
	t.Cleanup(srv.Shutdown) // a second Shutdown does nothing
	return srv
}

// waitServed polls c.ServedQueues until ok accepts them, and returns them.
func waitServed(t *testing.T, c *meetops.Client, what string, ok func([]meetops.ServedQueue) bool) []meetops.ServedQueue {
	t.Helper()
	var got []meetops.ServedQueue
	var err error
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		got, err = c.ServedQueues(context.Background())
		if err == nil && ok(got) {
			return got
		}
		time.Sleep(20 * time.Millisecond) // polling interval, bounded by the deadline
	}
	t.Fatalf("%s: never happened; last ServedQueues: %+v, %v", what, got, err)
	return nil
}

// has reports whether qs holds want exactly (name, weight and workers).
func has(qs []meetops.ServedQueue, want meetops.ServedQueue) bool {
	return slices.Contains(qs, want)
}

// named returns the queue of qs named name, and whether there is one.
func named(qs []meetops.ServedQueue, name string) (meetops.ServedQueue, bool) {
	i := slices.IndexFunc(qs, func(q meetops.ServedQueue) bool { return q.Name == name })
	if i < 0 {
		return meetops.ServedQueue{}, false
	}
	return qs[i], true
}

// Without a worker every queue is unserved: the enqueue goes through with
// Info.Unserved set, and RequireServedQueue refuses it with nothing
// written. Running asynq servers make their queues served, with the
// highest weight and the number of workers; one told to stop taking tasks
// and one shut down serve nothing.
func TestServedQueues(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := b.ctx

	served, err := b.client.ServedQueues(ctx)
	require.NoError(t, err)
	require.Empty(t, served)
	info, err := b.client.Enqueue(ctx, meetops.Disable{AppID: "nobody-serves"})
	require.NoError(t, err)
	require.True(t, info.Unserved, "no worker runs")
	require.Equal(t, meetops.StatePending, info.State)
	check, err := b.client.CheckQueues(ctx, "", "default", "low")
	require.NoError(t, err)
	require.Equal(t, meetops.QueueCheck{Unserved: []string{"default", "low"}, Served: []meetops.ServedQueue{}}, check)
	require.Equal(t, `no running worker serves queues "default", "low" (no worker is running); their tasks wait until workers serving them start`, check.Warning())
	require.ErrorIs(t, check.Err(), meetops.ErrQueueUnserved)

	keys, err := b.rdb.DBSize(ctx).Result()
	require.NoError(t, err)
	refused := meetops.Disable{AppID: "refused"}
	_, err = b.client.Enqueue(ctx, refused, meetops.WithQueue("critical"), meetops.RequireServedQueue())
	require.ErrorIs(t, err, meetops.ErrQueueUnserved)
	require.EqualError(t, err, `no running worker serves queue "critical" (no worker is running)`)
	after, err := b.rdb.DBSize(ctx).Result()
	require.NoError(t, err)
	require.Equal(t, keys, after, "nothing written")

	a := startServer(t, b.rdb, map[string]int{"critical": 6, "default": 3})
	z := startServer(t, b.rdb, map[string]int{"default": 1, "low": 1})
	// Two asynq servers of one process: one worker (a worker's processors
	// count once).
	want := []meetops.ServedQueue{{Name: "critical", Weight: 6, Workers: 1}, {Name: "default", Weight: 3, Workers: 1}, {Name: "low", Weight: 1, Workers: 1}}
	waitServed(t, b.client, "both servers serve", func(qs []meetops.ServedQueue) bool { return slices.Equal(qs, want) })

	// ServedQueues read afresh; the enqueue check uses that read.
	info, err = b.client.Enqueue(ctx, refused, meetops.WithQueue("critical"), meetops.RequireServedQueue())
	require.NoError(t, err)
	require.False(t, info.Unserved)
	info, err = b.client.Enqueue(ctx, meetops.Disable{AppID: "nowhere"}, meetops.WithQueue("nosuchqueue"))
	require.NoError(t, err)
	require.True(t, info.Unserved)
	_, err = b.client.Enqueue(ctx, meetops.Disable{AppID: "nowhere-2"}, meetops.WithQueue("nosuchqueue"), meetops.RequireServedQueue())
	require.ErrorIs(t, err, meetops.ErrQueueUnserved)
	require.EqualError(t, err, `no running worker serves queue "nosuchqueue" (running workers serve critical=6, default=3, low=1)`)
	_, err = b.insp.GetTaskInfo("nosuchqueue", tasks.Key(meetops.Disable{AppID: "nowhere-2"}))
	require.ErrorIs(t, err, asynq.ErrTaskNotFound)
	check, err = b.client.CheckQueues(ctx, "low", "nosuchqueue", "critical", "nosuchqueue")
	require.NoError(t, err)
	require.Equal(t, []string{"nosuchqueue"}, check.Unserved)
	require.Equal(t, want, check.Served)
	require.Equal(t, `no running worker serves queue "nosuchqueue" (running workers serve critical=6, default=3, low=1); its tasks wait until a worker serving it starts`, check.Warning())
	check, err = b.client.CheckQueues(ctx, "low", "critical")
	require.NoError(t, err)
	require.Empty(t, check.Warning())
	require.NoError(t, check.Err())

	// A server told to stop taking tasks still heartbeats, as "stopped":
	// it serves nothing. (Its next heartbeat says so, within 5 s.)
	z.Stop()
	waitServed(t, b.client, "the stopped server serves nothing", func(qs []meetops.ServedQueue) bool {
		return slices.Equal(qs, []meetops.ServedQueue{{Name: "critical", Weight: 6, Workers: 1}, {Name: "default", Weight: 3, Workers: 1}})
	})
	// A server that shut down removed its record: at once.
	a.Shutdown()
	served, err = b.client.ServedQueues(ctx)
	require.NoError(t, err)
	require.Empty(t, served, "a shut-down server and a stopped one serve nothing")
}

// freezer makes a go-redis client hang, as the Redis connection of a
// process that froze or lost its network does: once frozen, every command
// blocks until the test ends, then fails.
type freezer struct {
	frozen atomic.Bool
	thaw   chan struct{}
	once   sync.Once
}

func newFreezer() *freezer { return &freezer{thaw: make(chan struct{})} }

// unfreeze lets the blocked commands fail, and the next ones at once.
func (f *freezer) unfreeze() { f.once.Do(func() { close(f.thaw) }) }

var errFrozen = errors.New("frozen")

func (f *freezer) DialHook(next redis.DialHook) redis.DialHook { return next }

func (f *freezer) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if f.frozen.Load() {
			<-f.thaw
			return errFrozen
		}
		return next(ctx, cmd)
	}
}

func (f *freezer) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if f.frozen.Load() {
			<-f.thaw
			return errFrozen
		}
		return next(ctx, cmds)
	}
}

// A worker that stopped heartbeating (crashed, frozen, cut off) without
// shutting down leaves its record behind: it still counts until the record
// expires with its last heartbeat (asynq's TTL: two 5 s heartbeats), then
// serves nothing.
func TestCrashedServerStopsServingWhenItsRecordExpires(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ro, err := redis.ParseURL(b.url)
	require.NoError(t, err)
	srvRedis := redis.NewClient(ro)
	t.Cleanup(func() { _ = srvRedis.Close() })
	f := newFreezer()
	srvRedis.AddHook(f)
	startServer(t, srvRedis, map[string]int{"crashy": 2})
	t.Cleanup(f.unfreeze) // before the server's Shutdown, which would block
	crashy := meetops.ServedQueue{Name: "crashy", Weight: 2, Workers: 1}
	waitServed(t, b.client, "the server serves", func(qs []meetops.ServedQueue) bool { return has(qs, crashy) })

	f.frozen.Store(true)
	frozenAt := time.Now()
	served, err := b.client.ServedQueues(b.ctx)
	require.NoError(t, err)
	require.Contains(t, served, crashy, "its record outlives its last heartbeat by at least 5 s")

	waitServed(t, b.client, "the record expires", func(qs []meetops.ServedQueue) bool { return !has(qs, crashy) })
	t.Logf("a frozen server stopped counting %s after its last heartbeat could be sent", time.Since(frozenAt).Round(time.Millisecond))
	info, err := b.client.Enqueue(b.ctx, meetops.Disable{AppID: "after-crash"}, meetops.WithQueue("crashy"))
	require.NoError(t, err)
	require.True(t, info.Unserved)
}

// countServerReads counts the reads of asynq's server records on a client.
type countServerReads struct{ n atomic.Int64 }

func (c *countServerReads) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *countServerReads) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		// asynq's Inspector lists the servers with a script on
		// "asynq:servers" (its first key, the fourth argument): EVALSHA,
		// and EVAL when Redis did not know the script yet.
		err := next(ctx, cmd)
		args := cmd.Args()
		if len(args) > 3 && strings.HasPrefix(cmd.Name(), "eval") && args[3] == "asynq:servers" &&
			(err == nil || !strings.HasPrefix(err.Error(), "NOSCRIPT")) {
			c.n.Add(1)
		}
		return err
	}
}

func (c *countServerReads) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// The check costs no round trip per enqueue: the client reads the served
// queues once per TTL, whatever the number of enqueues, batches and
// queues; a worker that started within the TTL is seen once it passed (or
// at once through ServedQueues).
func TestServedQueuesAreReadOncePerTTL(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ro, err := redis.ParseURL(b.url)
	require.NoError(t, err)
	rdb := redis.NewClient(ro)
	t.Cleanup(func() { _ = rdb.Close() })
	reads := &countServerReads{}
	rdb.AddHook(reads)
	c := meetops.NewClientFromRedis(rdb, meetops.WithServedQueuesTTL(time.Hour))

	for round := range 3 {
		var reqs []meetops.Request
		for i := range 100 {
			reqs = append(reqs, meetops.Request{Op: meetops.Disable{AppID: fmt.Sprintf("ttl-%d-%d", round, i)},
				Opts: []meetops.Option{meetops.WithQueue([]string{"q1", "q2", "late"}[i%3])}})
		}
		for i, r := range c.EnqueueBatch(b.ctx, reqs) {
			require.NoError(t, r.Err, "request %d", i)
			require.True(t, r.Info.Unserved)
		}
		info, err := c.Enqueue(b.ctx, meetops.Dismiss{AppID: "ttl", RoomID: fmt.Sprint(round)}, meetops.WithQueue("late"))
		require.NoError(t, err)
		require.True(t, info.Unserved)
	}
	require.EqualValues(t, 1, reads.n.Load(), "one read for 3 batches of 3 queues and 3 enqueues")

	// A worker for "late" starts: not seen within the TTL…
	other, err := meetops.NewClient(b.url)
	require.NoError(t, err)
	t.Cleanup(func() { _ = other.Close() })
	startServer(t, b.rdb, map[string]int{"late": 1})
	waitServed(t, other, "the worker runs", func(qs []meetops.ServedQueue) bool { return len(qs) == 1 })
	info, err := c.Enqueue(b.ctx, meetops.Dismiss{AppID: "ttl", RoomID: "stale"}, meetops.WithQueue("late"), meetops.ProcessIn(time.Hour))
	require.NoError(t, err)
	require.True(t, info.Unserved, "the client trusts its read for the TTL")
	// …and at once after ServedQueues read again.
	served, err := c.ServedQueues(b.ctx)
	require.NoError(t, err)
	require.Equal(t, []meetops.ServedQueue{{Name: "late", Weight: 1, Workers: 1}}, served)
	info, err = c.Enqueue(b.ctx, meetops.Dismiss{AppID: "ttl", RoomID: "fresh"}, meetops.WithQueue("late"), meetops.ProcessIn(time.Hour))
	require.NoError(t, err)
	require.False(t, info.Unserved)
	require.EqualValues(t, 2, reads.n.Load())

	// With a short TTL every enqueue past it reads again (the counter does
	// count reads).
	short := meetops.NewClientFromRedis(rdb, meetops.WithServedQueuesTTL(time.Nanosecond))
	for i := range 3 {
		_, err := short.Enqueue(b.ctx, meetops.Dismiss{AppID: "short", RoomID: fmt.Sprint(i)}, meetops.WithQueue("q1"))
		require.NoError(t, err)
	}
	require.EqualValues(t, 5, reads.n.Load())
}

// In a batch, RequireServedQueue refuses exactly the requests whose queue
// is not served, before anything is written: neither a task nor a batch
// member. The others are enqueued, Unserved set where it applies.
func TestEnqueueBatchRequireServedQueue(t *testing.T) {
	t.Parallel()
	b := setup(t)
	startServer(t, b.rdb, map[string]int{"served": 5})
	waitServed(t, b.client, "the worker runs", func(qs []meetops.ServedQueue) bool { return len(qs) == 1 })

	later := meetops.ProcessIn(time.Hour) // the server leaves them alone
	reqs := []meetops.Request{
		{Op: meetops.Disable{AppID: "ok"}, Opts: []meetops.Option{meetops.WithQueue("served"), later, meetops.RequireServedQueue()}},
		{Op: meetops.Disable{AppID: "refused"}, Opts: []meetops.Option{meetops.WithQueue("elsewhere"), later, meetops.RequireServedQueue()}},
		{Op: meetops.Disable{AppID: "warned"}, Opts: []meetops.Option{meetops.WithQueue("elsewhere"), later}},
		{Op: meetops.Disable{AppID: ""}, Opts: []meetops.Option{meetops.RequireServedQueue()}},
	}
	id, err := b.client.CreateBatch(b.ctx, meetops.BatchSpec{Label: "require"})
	require.NoError(t, err)
	res := b.client.EnqueueBatch(b.ctx, reqs, meetops.InBatch(id))
	require.NoError(t, res[0].Err)
	require.Equal(t, meetops.Info{Key: tasks.Key(reqs[0].Op), Queue: "served", State: meetops.StateScheduled}, res[0].Info)
	require.ErrorIs(t, res[1].Err, meetops.ErrQueueUnserved)
	require.EqualError(t, res[1].Err, `no running worker serves queue "elsewhere" (running workers serve served=5)`)
	require.Equal(t, meetops.Info{Key: tasks.Key(reqs[1].Op), Queue: "elsewhere", Unserved: true}, res[1].Info)
	require.NoError(t, res[2].Err)
	require.Equal(t, meetops.Info{Key: tasks.Key(reqs[2].Op), Queue: "elsewhere", State: meetops.StateScheduled, Unserved: true}, res[2].Info)
	require.ErrorIs(t, res[3].Err, meetops.ErrInvalid)

	_, err = b.insp.GetTaskInfo("elsewhere", tasks.Key(reqs[1].Op))
	require.ErrorIs(t, err, asynq.ErrTaskNotFound, "the refused request was not written")
	var members []string
	require.NoError(t, b.client.BatchMembers(b.ctx, id, func(m meetops.BatchMember) error {
		members = append(members, m.Key)
		return nil
	}))
	require.ElementsMatch(t, []string{tasks.Key(reqs[0].Op), tasks.Key(reqs[2].Op)}, members, "the refused request is no member")
}

// Status says when a waiting task's queue is served by no running worker.
func TestStatusUnserved(t *testing.T) {
	t.Parallel()
	b := setup(t)
	startServer(t, b.rdb, map[string]int{"served": 1})
	waitServed(t, b.client, "the worker runs", func(qs []meetops.ServedQueue) bool { return len(qs) == 1 })

	later := meetops.ProcessIn(time.Hour)
	for _, tc := range []struct {
		queue    string
		unserved bool
	}{{"served", false}, {"elsewhere", true}} {
		info, err := b.client.Enqueue(b.ctx, meetops.Disable{AppID: "status-" + tc.queue}, meetops.WithQueue(tc.queue), later)
		require.NoError(t, err)
		st, err := b.client.Status(b.ctx, info.Key)
		require.NoError(t, err)
		require.Equal(t, meetops.StateScheduled, st.State)
		require.Equal(t, tc.unserved, st.Unserved, tc.queue)
		pending, err := b.client.Enqueue(b.ctx, meetops.Disable{AppID: "pending-" + tc.queue}, meetops.WithQueue(tc.queue))
		require.NoError(t, err)
		if tc.unserved {
			st, err = b.client.Status(b.ctx, pending.Key)
			require.NoError(t, err)
			require.Equal(t, meetops.StatePending, st.State)
			require.True(t, st.Unserved)
		}
	}
	// A dead letter waits for nothing.
	key := b.archive(t, meetops.Cancel{ConferenceID: "dead"}, meetops.WithQueue("elsewhere"))
	st, err := b.client.Status(b.ctx, key)
	require.NoError(t, err)
	require.Equal(t, meetops.StateArchived, st.State)
	require.False(t, st.Unserved)
}
