package main

import (
	"bufio"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops"
	"github.com/meetops/meetops/internal/batch"
)

// finishAll plays the workers for a batch: it moves every member to
// succeeded but the one whose key is dead, which dies with reason.
func (b *testBundle) finishAll(t *testing.T, id, dead, reason string) {
	t.Helper()
	store := batch.New(b.rdb, batch.Options{})
	var keys []string
	require.NoError(t, store.Members(b.ctx, id, func(m batch.Member) error { keys = append(keys, m.Key); return nil }))
	for _, k := range keys {
		st := batch.Succeeded
		if k == dead {
			st = batch.DeadWith(reason)
		}
		_, err := store.Transition(b.ctx, []string{id}, k, st)
		require.NoError(t, err)
	}
}

// latestBatch waits for a batch to exist and returns the newest.
func (b *testBundle) latestBatch(t *testing.T) string {
	t.Helper()
	var id string
	require.Eventually(t, func() bool {
		list, err := b.client.Batches(b.ctx, 1)
		if err != nil || len(list) == 0 || !list[0].Sealed {
			return false
		}
		id = list[0].BatchID
		return true
	}, 10*time.Second, 5*time.Millisecond)
	return id
}

// bulk --wait follows the batch until it is complete and lists its dead
// letters by FILE:LINE: exit 4 with one dead, its line named.
func TestBulkWaitListsDeadLettersByLine(t *testing.T) {
	t.Parallel()
	b := setup(t)
	done := make(chan result, 1)
	go func() { done <- b.run(t, "bulk", "testdata/bulk/ops.jsonl", "--wait", "--label", "waiting") }()
	id := b.latestBatch(t)
	p, err := b.client.Batch(b.ctx, id)
	require.NoError(t, err)
	require.Equal(t, 7, p.Total)
	require.Equal(t, "waiting", p.Label)
	require.Contains(t, p.Origin, "@", "user@host")
	reclaim := "reclaim:" // line 7's key: the first reclaim
	var deadKey string
	require.NoError(t, b.client.BatchMembers(b.ctx, id, func(m meetops.BatchMember) error {
		if m.Line == 7 {
			deadKey = m.Key
		}
		return nil
	}))
	require.True(t, strings.HasPrefix(deadKey, reclaim), deadKey)
	b.finishAll(t, id, deadKey, "http_4xx")

	var r result
	select {
	case r = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("bulk --wait did not end after its batch completed")
	}
	requireCode(t, r, exitDead)
	require.Contains(t, r.stdout, "testdata/bulk/ops.jsonl:7: "+deadKey+": dead letter (http_4xx)")
	require.Contains(t, r.stderr, "7/7 done (6 succeeded, 0 already done, 1 dead), 0 pending, complete")
	require.Contains(t, r.stderr, "1 of 7 dead")
}

func TestBatchCommands(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.run(t, "bulk", "testdata/bulk/ops.jsonl", "-o", "json")
	requireCode(t, r, exitOK)
	var sum bulkSummary
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &sum))
	require.True(t, batch.ValidID(sum.BatchID))

	r = b.run(t, "batch", "status", sum.BatchID, "-o", "json")
	requireCode(t, r, exitOK)
	var p meetops.BatchProgress
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &p))
	require.Equal(t, []int{7, 7, 0, 0, 0}, []int{p.Total, p.Pending, p.Succeeded, p.AlreadyDone, p.Dead})
	require.False(t, p.Complete)
	require.Contains(t, r.stdout, `"completed_at":null`)

	b.finishAll(t, sum.BatchID, "offboarding-4711", "auth")
	r = b.run(t, "batch", "status", sum.BatchID)
	requireCode(t, r, exitOK)
	require.Contains(t, r.stdout, "complete      yes")
	r = b.run(t, "batch", "status", sum.BatchID, "--watch")
	requireCode(t, r, exitDead) // complete already, with a dead letter

	r = b.run(t, "batch", "report", sum.BatchID)
	requireCode(t, r, exitOK)
	sc := bufio.NewScanner(strings.NewReader(r.stdout))
	var lines []reportLine
	for sc.Scan() {
		var l reportLine
		require.NoError(t, json.Unmarshal(sc.Bytes(), &l))
		lines = append(lines, l)
	}
	require.Len(t, lines, 7)
	for i, l := range lines {
		require.Equal(t, i, l.Index, "index order")
	}
	require.Equal(t, reportLine{Index: 1, Line: 2, Key: "offboarding-4711", State: "archived", Outcome: "dead_letter", Reason: "auth"}, lines[1])
	require.Equal(t, 4, lines[2].Line, "the blank line 3 is not an operation")
	require.Equal(t, "completed", lines[0].State)

	r = b.run(t, "batch", "list", "-o", "json")
	requireCode(t, r, exitOK)
	var list []meetops.BatchProgress
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &list))
	require.Len(t, list, 1)
	r = b.run(t, "batch", "list")
	requireCode(t, r, exitOK)
	require.Contains(t, r.stdout, sum.BatchID)

	for _, args := range [][]string{{"batch", "status", "b_000000000000000000000000"}, {"batch", "report", "nope"}} {
		r = b.run(t, args...)
		requireCode(t, r, exitFailure)
		require.Contains(t, r.stderr, "no batch")
	}
}
