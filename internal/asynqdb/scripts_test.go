package asynqdb

import (
	"context"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/redistest"
)

// The scripts are asynq's, byte for byte: once asynq has run its enqueue
// and schedule scripts, Redis knows ours by their SHA1. (Not parallel:
// TestWriteWithoutCachedScripts flushes the script cache.)
func TestScriptsAreAsynqs(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Client(t)
	require.NoError(t, rdb.ScriptFlush(ctx).Err())
	c := asynq.NewClientFromRedisClient(rdb)
	_, err := c.EnqueueContext(ctx, asynq.NewTask("x", nil, asynq.TaskID("a")))
	require.NoError(t, err)
	_, err = c.EnqueueContext(ctx, asynq.NewTask("x", nil, asynq.TaskID("b"), asynq.ProcessIn(time.Hour)))
	require.NoError(t, err)
	known, err := rdb.ScriptExists(ctx, enqueueScript.Hash(), scheduleScript.Hash()).Result()
	require.NoError(t, err)
	require.Equal(t, []bool{true, true}, known)
}

// With the script cache empty (a restarted Redis, SCRIPT FLUSH) the
// EVALSHAs fail with NOSCRIPT and are sent again with the scripts' source.
func TestWriteWithoutCachedScripts(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Client(t)
	require.NoError(t, rdb.ScriptFlush(ctx).Err())
	errs := New(rdb, Options{}).Write(ctx, []Task{
		{ID: "a", Type: "x", Queue: "default"},
		{ID: "b", Type: "x", Queue: "default", ProcessAt: time.Now().Add(time.Hour)},
		{ID: "a", Type: "x", Queue: "default"},
	})
	require.NoError(t, errs[0])
	require.NoError(t, errs[1])
	require.ErrorIs(t, errs[2], ErrConflict)
	known, err := rdb.ScriptExists(ctx, enqueueScript.Hash(), scheduleScript.Hash()).Result()
	require.NoError(t, err)
	require.Equal(t, []bool{true, true}, known, "EVAL cached them")
}
