package worker

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/asynqdb"
)

// scriptPipelines counts the pipelines holding a script call sent on a
// client.
type scriptPipelines struct{ n atomic.Int32 }

func (s *scriptPipelines) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (s *scriptPipelines) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (s *scriptPipelines) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			if c.Name() == "eval" {
				s.n.Add(1)
				break
			}
		}
		return next(ctx, cmds)
	}
}

// The worker's Redis client sends script calls in the group's round trips
// (internal/groupcommit), all but asynq's dequeue.
func TestWorkerClientGroupsScriptCalls(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	rec := &scriptPipelines{}
	b.w.rdb.AddHook(rec)
	ctx := t.Context()

	require.NoError(t, b.w.rdb.Eval(ctx, "return 1", []string{"meetops:test:{k}"}).Err())
	require.EqualValues(t, 1, rec.n.Load(), "a script call goes in a group's pipeline")

	pending := asynqdb.PendingKey("groupcommit-test")
	require.NoError(t, b.w.rdb.Eval(ctx, "return 1", []string{pending}).Err())
	require.EqualValues(t, 1, rec.n.Load(), "a call shaped like asynq's dequeue goes alone")
}
