package batch_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/batch"
	"github.com/meetops/meetops/internal/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

type testBundle struct {
	ctx   context.Context
	rdb   redis.UniversalClient
	store *batch.Store
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	rdb := redistest.Client(t)
	return &testBundle{ctx: context.Background(), rdb: rdb, store: batch.New(rdb, batch.Options{TTL: time.Hour})}
}

func members(keys ...string) []batch.Member {
	ms := make([]batch.Member, len(keys))
	for i, k := range keys {
		ms[i] = batch.Member{Key: k, Index: i, Line: i + 1}
	}
	return ms
}

// requireCounts checks the counts and that they sum to the total.
func requireCounts(t *testing.T, p batch.Progress, pending, succeeded, already, dead int) {
	t.Helper()
	require.Equal(t, []int{pending, succeeded, already, dead}, []int{p.Pending, p.Succeeded, p.AlreadyDone, p.Dead}, "pending, succeeded, already done, dead")
	require.Equal(t, p.Total, p.Pending+p.Succeeded+p.AlreadyDone+p.Dead, "the counts sum to the total")
}

func TestLifecycle(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id, err := b.store.Create(b.ctx, batch.Spec{Label: "offboarding", Origin: "ops@host"})
	require.NoError(t, err)
	require.True(t, batch.ValidID(id), id)

	n, err := b.store.Add(b.ctx, id, members("k1", "k2", "k3"))
	require.NoError(t, err)
	require.Equal(t, 3, n)
	n, err = b.store.Add(b.ctx, id, []batch.Member{{Key: "k2", Index: 7}, {Key: "k4", Index: 3, Line: 4}})
	require.NoError(t, err)
	require.Equal(t, 1, n, "a key already a member keeps its first position")

	// Everything finishes before the batch is sealed: not complete yet.
	for _, k := range []string{"k1", "k2", "k3", "k4"} {
		done, err := b.store.Transition(b.ctx, []string{id}, k, batch.Succeeded)
		require.NoError(t, err)
		require.Empty(t, done, "an open batch never completes")
	}
	p, err := b.store.Get(b.ctx, id)
	require.NoError(t, err)
	requireCounts(t, p, 0, 4, 0, 0)
	require.False(t, p.Complete)

	c, err := b.store.Seal(b.ctx, id)
	require.NoError(t, err)
	require.Equal(t, batch.Completion{BatchID: id, N: 1}, c, "sealing with nothing pending completes it")
	_, err = b.store.Add(b.ctx, id, members("k9"))
	require.ErrorIs(t, err, batch.ErrSealed)

	// A dead letter requeued: incomplete again, then complete a second time.
	done, err := b.store.Transition(b.ctx, []string{id}, "k3", batch.Pending)
	require.NoError(t, err)
	require.Empty(t, done)
	p, err = b.store.Get(b.ctx, id)
	require.NoError(t, err)
	require.False(t, p.Complete)
	require.Nil(t, p.CompletedAt)
	done, err = b.store.Transition(b.ctx, []string{id}, "k3", batch.DeadWith("http_4xx"))
	require.NoError(t, err)
	require.Equal(t, []batch.Completion{{BatchID: id, N: 2}}, done)
	p, err = b.store.Get(b.ctx, id)
	require.NoError(t, err)
	requireCounts(t, p, 0, 3, 0, 1)
	require.True(t, p.Complete)
	require.Equal(t, 2, p.Completions)

	var got []batch.Member
	require.NoError(t, b.store.Members(b.ctx, id, func(m batch.Member) error { got = append(got, m); return nil }))
	require.Equal(t, []batch.Member{
		{Key: "k1", Index: 0, Line: 1, State: batch.Succeeded},
		{Key: "k2", Index: 1, Line: 2, State: batch.Succeeded},
		{Key: "k3", Index: 2, Line: 3, State: batch.DeadWith("http_4xx")},
		{Key: "k4", Index: 3, Line: 4, State: batch.Succeeded},
	}, got)
	require.Equal(t, "http_4xx", got[2].State.Reason())

	ids, err := b.store.BatchesOf(b.ctx, "k1")
	require.NoError(t, err)
	require.Equal(t, []string{id}, ids)
}

func TestUnknownAndExpiredBatches(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, err := b.store.Get(b.ctx, "b_000000000000000000000000")
	require.ErrorIs(t, err, batch.ErrNotFound)
	_, err = b.store.Add(b.ctx, "b_000000000000000000000000", members("k"))
	require.ErrorIs(t, err, batch.ErrNotFound)
	_, err = b.store.Seal(b.ctx, "b_000000000000000000000000")
	require.ErrorIs(t, err, batch.ErrNotFound)

	short := batch.New(b.rdb, batch.Options{TTL: 50 * time.Millisecond})
	id, err := short.Create(b.ctx, batch.Spec{})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, err := short.Get(b.ctx, id)
		return errors.Is(err, batch.ErrNotFound)
	}, 5*time.Second, 10*time.Millisecond, "a batch expires with the dedup window")
	require.False(t, batch.ValidID("b_nothex00000000000000000000"))
}

// Property: whatever the order of adds, seals, redelivered transitions,
// requeues (dead → pending) and duplicates across overlapping batches, the
// counts always sum to the total, end exactly at each member's final state,
// and completions happen exactly when a sealed batch has nothing pending.
func TestCountsStayExactUnderRandomInterleavings(t *testing.T) {
	t.Parallel()
	b := setup(t)
	seeds := 40
	for seed := range seeds {
		r := rand.New(rand.NewPCG(uint64(seed), 7))
		nKeys := 5 + r.IntN(20)
		keys := make([]string, nKeys)
		for i := range keys {
			keys[i] = fmt.Sprintf("s%d-k%d", seed, i)
		}
		// Two batches sharing some keys (a rerun of part of a file).
		ids := make([]string, 2)
		memberOf := map[string][]string{}
		for bi := range ids {
			id, err := b.store.Create(b.ctx, batch.Spec{Label: fmt.Sprint(seed, bi)})
			require.NoError(t, err)
			ids[bi] = id
		}
		truth := map[string]batch.State{} // the model: each key's current state
		completions := map[string]int{}
		sealed := map[string]bool{}
		check := func(id string) {
			p, err := b.store.Get(b.ctx, id)
			require.NoError(t, err)
			want := map[batch.State]int{}
			total := 0
			for k, ids := range memberOf {
				for _, x := range ids {
					if x == id {
						want[truth[k].Kind()]++
						total++
					}
				}
			}
			require.Equal(t, total, p.Total, "seed %d", seed)
			requireCounts(t, p, want[batch.Pending], want[batch.Succeeded], want[batch.AlreadyDone], want[batch.Dead])
			require.Equal(t, completions[id], p.Completions, "seed %d", seed)
			require.Equal(t, sealed[id] && want[batch.Pending] == 0, p.Complete, "seed %d", seed)
		}
		add := func(id string, ks []string) {
			var ms []batch.Member
			for _, k := range ks {
				ms = append(ms, batch.Member{Key: k, Index: len(memberOf), State: truth[k]})
			}
			for _, k := range ks {
				if truth[k] == "" {
					truth[k] = batch.Pending
				}
			}
			for i := range ms {
				ms[i].State = truth[ms[i].Key]
			}
			_, err := b.store.Add(b.ctx, id, ms)
			require.NoError(t, err)
			for _, k := range ks {
				if !contains(memberOf[k], id) {
					memberOf[k] = append(memberOf[k], id)
				}
			}
		}
		for _, k := range keys {
			truth[k] = batch.Pending
		}
		add(ids[0], keys)
		add(ids[1], keys[:nKeys/2])
		states := []batch.State{batch.Succeeded, batch.AlreadyDone, batch.DeadWith("http_4xx"), batch.DeadWith("auth"), batch.Pending}
		for step := range 200 {
			switch {
			case step == 30:
				for _, id := range ids {
					sealed[id] = true
					c, err := b.store.Seal(b.ctx, id)
					require.NoError(t, err)
					if c.N > 0 {
						completions[id]++
					}
				}
			default:
				k := keys[r.IntN(nKeys)]
				to := states[r.IntN(len(states))]
				if to == batch.Pending && truth[k].Kind() != batch.Dead {
					to = truth[k] // only a dead letter goes back to pending (requeue)
				}
				before := map[string]bool{}
				for _, id := range ids {
					p, err := b.store.Get(b.ctx, id)
					require.NoError(t, err)
					before[id] = p.Complete
				}
				truth[k] = to
				done, err := b.store.Transition(b.ctx, memberOf[k], k, to)
				require.NoError(t, err)
				for _, c := range done {
					completions[c.BatchID]++
					require.False(t, before[c.BatchID], "a completion only when it was not complete")
				}
				if r.IntN(3) == 0 { // a redelivery: the same transition again changes nothing
					done, err := b.store.Transition(b.ctx, memberOf[k], k, to)
					require.NoError(t, err)
					require.Empty(t, done)
				}
			}
			for _, id := range ids {
				check(id)
			}
		}
	}
}

func contains(ids []string, id string) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// On Redis Cluster a batch's records and its members' indexes live in many
// slots: nothing fails with CROSSSLOT or MOVED.
func TestOnACluster(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := batch.New(redistest.SharedCluster(t).Client(t), batch.Options{TTL: time.Hour})
	id, err := store.Create(ctx, batch.Spec{Label: "cluster", CallbackURL: "https://hooks.example/x"})
	require.NoError(t, err)
	var ms []batch.Member
	for i := range 200 {
		ms = append(ms, batch.Member{Key: fmt.Sprintf("ck-%d", i), Index: i})
	}
	n, err := store.Add(ctx, id, ms)
	require.NoError(t, err)
	require.Equal(t, 200, n)
	_, err = store.Seal(ctx, id)
	require.NoError(t, err)
	var last []batch.Completion
	for _, m := range ms {
		ids, err := store.BatchesOf(ctx, m.Key)
		require.NoError(t, err)
		require.Equal(t, []string{id}, ids)
		last, err = store.Transition(ctx, ids, m.Key, batch.Succeeded)
		require.NoError(t, err)
	}
	require.Equal(t, []batch.Completion{{BatchID: id, N: 1}}, last)
	due, err := store.CallbacksDue(ctx)
	require.NoError(t, err)
	require.Len(t, due, 1)
	require.NoError(t, store.CallbackSent(ctx, id, 1))
	due, err = store.CallbacksDue(ctx)
	require.NoError(t, err)
	require.Empty(t, due)
	list, err := store.List(ctx, 10)
	require.NoError(t, err)
	require.Equal(t, id, list[0].BatchID)
}
