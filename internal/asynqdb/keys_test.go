package asynqdb_test

import (
	"context"
	"crypto/sha1"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/asynqdb"
	"github.com/meetops/meetops/internal/redistest"
)

// scriptCalls records every script call sent on a client: its SHA1, what IsDequeue says of it, and whether its reply carried a
// task ID (the reply of asynq's dequeue is the task message).
type scriptCalls struct {
	mu    sync.Mutex
	id    string
	calls []scriptCall
}

type scriptCall struct {
	script        string
	dequeue, gave bool
}

func (s *scriptCalls) DialHook(next redis.DialHook) redis.DialHook { return next }
func (s *scriptCalls) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if n := cmd.Name(); n == "evalsha" || n == "eval" {
			c := scriptCall{dequeue: asynqdb.IsDequeue(cmd)}
			c.script, _ = cmd.Args()[1].(string)
			if n == "eval" { // asynq's fallback after NOSCRIPT: its source
				c.script = fmt.Sprintf("%x", sha1.Sum([]byte(c.script)))
			}
			if rc, ok := cmd.(*redis.Cmd); ok {
				c.gave = strings.Contains(fmt.Sprint(rc.Val()), s.id) // the encoded task message
			}
			s.mu.Lock()
			s.calls = append(s.calls, c)
			s.mu.Unlock()
		}
		return err
	}
}
func (s *scriptCalls) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// IsDequeue is true of the script asynq's server handed a task out with,
// and of no other script it sends while processing the task (its
// completion among them).
func TestIsDequeueKnowsAsynqsDequeue(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// The server's own client records; the test's enqueue and inspection
	// go on rdb.
	s := redistest.Shared(t)
	db := s.DB(t)
	rdb, srvRDB := redis.NewClient(s.Options(db)), redis.NewClient(s.Options(db))
	t.Cleanup(func() { _, _ = rdb.Close(), srvRDB.Close() })
	rec := &scriptCalls{id: "isdequeue-task"}
	srvRDB.AddHook(rec)
	srv := asynq.NewServerFromRedisClient(srvRDB, asynq.Config{Concurrency: 1, Queues: map[string]int{"isdq": 1},
		TaskCheckInterval: 10 * time.Millisecond, LogLevel: asynq.FatalLevel})
	mux := asynq.NewServeMux()
	mux.HandleFunc("x", func(context.Context, *asynq.Task) error { return nil })
	require.NoError(t, srv.Start(mux))
	t.Cleanup(srv.Shutdown)
	_, err := asynq.NewClientFromRedisClient(rdb).EnqueueContext(ctx, asynq.NewTask("x", nil),
		asynq.TaskID(rec.id), asynq.Queue("isdq"), asynq.Retention(time.Hour))
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		info, err := asynq.NewInspectorFromRedisClient(rdb).GetTaskInfo("isdq", rec.id)
		return err == nil && info.State == asynq.TaskStateCompleted
	}, 10*time.Second, 5*time.Millisecond)

	rec.mu.Lock()
	calls := append([]scriptCall(nil), rec.calls...)
	rec.mu.Unlock()
	dequeue := ""
	for _, c := range calls {
		if c.gave {
			require.Empty(t, dequeue, "one call handed the task out")
			dequeue = c.script
		}
	}
	require.NotEmpty(t, dequeue, "the call that handed the task out was recorded")
	others := 0
	for _, c := range calls {
		require.Equal(t, c.script == dequeue, c.dequeue, "IsDequeue of script %.12s", c.script)
		if c.script != dequeue {
			others++
		}
	}
	require.Positive(t, others, "the completion script was recorded too")
}
