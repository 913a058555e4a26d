package asynqdb

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrConflict is a task whose ID its queue already holds: the script
// refused it, as asynq refuses it with asynq.ErrTaskIDConflict.
var ErrConflict = errors.New("task ID conflicts with another task")

// Writer writes tasks to Redis in pipelined batches. It is safe for
// concurrent use.
type Writer struct {
	rdb redis.UniversalClient
	// published holds the queues known to be in asynq:queues, which asynq
	// adds a queue to before its first task (asynq's queuesPublished).
	published sync.Map
}

// New returns a Writer on rdb.
func New(rdb redis.UniversalClient) *Writer {
	return &Writer{rdb: rdb}
}

// Arguments shared by every call, boxed once.
var (
	argEvalSHA  any = "evalsha"
	argEval     any = "eval"
	argTwoKeys  any = 2
	argEnqueue  any = enqueueScript.Hash()
	argSchedule any = scheduleScript.Hash()
	// source maps a script's SHA1 argument to its source, for EVAL.
	source = map[any]any{argEnqueue: enqueueSource, argSchedule: scheduleSource}
)

// callArgs is how many arguments a script call has: EVALSHA, the SHA1,
// the key count, two keys, three arguments.
const callArgs = 8

// Write writes ts, pending or scheduled by their ProcessAt, with one
// pipelined round trip (and one more in the rare case that Redis does not
// have the scripts cached yet) plus one for queues not seen before. It
// returns one error per task: nil when the task was written, ErrConflict
// when its ID was taken, else why writing failed; after a transport error
// the task may or may not have been written.
func (w *Writer) Write(ctx context.Context, ts []Task) []error {
	errs := make([]error, len(ts))
	w.publish(ctx, ts, errs)
	now := any(time.Now().UnixNano())
	// One allocation each for the whole batch's arguments, messages and
	// commands; the per-task ones are the task key and the boxing of the
	// values that differ.
	args := make([]any, 0, callArgs*len(ts))
	buf := make([]byte, 0, bufSize(ts))
	cmds := make([]*redis.Cmd, len(ts))
	var keys queueKeys
	pipe := w.rdb.Pipeline()
	for i := range ts {
		if errs[i] != nil {
			continue
		}
		t := &ts[i]
		keys.of(t.Queue)
		start := len(buf)
		buf = AppendMessage(buf, t)
		msg := buf[start:len(buf):len(buf)]
		call := len(args)
		if t.ProcessAt.IsZero() {
			args = append(args, argEvalSHA, argEnqueue, argTwoKeys, TaskKey(t.Queue, t.ID), keys.pending, msg, t.ID, now)
		} else {
			args = append(args, argEvalSHA, argSchedule, argTwoKeys, TaskKey(t.Queue, t.ID), keys.scheduled, msg, t.ProcessAt.Unix(), t.ID)
		}
		cmds[i] = pipe.Do(ctx, args[call:len(args):len(args)]...)
	}
	if pipe.Len() == 0 {
		return errs
	}
	_, _ = pipe.Exec(ctx) // each command carries its own error
	w.retryUncached(ctx, cmds)
	for i, cmd := range cmds {
		if cmd != nil {
			errs[i] = outcome(cmd)
		}
	}
	return errs
}

// queueKeys are the keys of the queue of the task at hand.
type queueKeys struct {
	queue              string
	set                bool
	pending, scheduled any
}

// of makes k the keys of queue.
func (k *queueKeys) of(queue string) {
	if k.set && k.queue == queue {
		return
	}
	k.queue, k.set = queue, true
	k.pending, k.scheduled = PendingKey(queue), ScheduledKey(queue)
}

// retryUncached sends again, as EVAL with the script's source, the calls
// that failed with NOSCRIPT (a new or restarted Redis, SCRIPT FLUSH), as
// go-redis' Script.Run does for one call. A NOSCRIPT call did nothing, so
// sending it again is safe.
func (w *Writer) retryUncached(ctx context.Context, cmds []*redis.Cmd) {
	var pipe redis.Pipeliner
	for i, cmd := range cmds {
		if cmd == nil || cmd.Err() == nil || !redis.HasErrorPrefix(cmd.Err(), "NOSCRIPT") {
			continue
		}
		if pipe == nil {
			pipe = w.rdb.Pipeline()
		}
		args := append([]any{argEval, source[cmd.Args()[1]]}, cmd.Args()[2:]...)
		cmds[i] = pipe.Do(ctx, args...)
	}
	if pipe != nil {
		_, _ = pipe.Exec(ctx) // each command carries its own error
	}
}

// outcome maps a script's reply to Write's result.
func outcome(cmd *redis.Cmd) error {
	n, err := cmd.Int64()
	switch {
	case err != nil:
		return err
	case n == 1:
		return nil
	case n == 0:
		return ErrConflict
	}
	return fmt.Errorf("unexpected reply %d from the enqueue script", n)
}

// publish adds the queues of ts not known to be in asynq:queues, failing
// the tasks of a queue that could not be added (asynq does not write a
// task whose queue it could not publish).
func (w *Writer) publish(ctx context.Context, ts []Task, errs []error) {
	var queues []any
	for i := range ts {
		q := ts[i].Queue
		if _, ok := w.published.Load(q); ok {
			continue
		}
		seen := false
		for _, v := range queues {
			seen = seen || v == q
		}
		if !seen {
			queues = append(queues, q)
		}
	}
	if len(queues) == 0 {
		return
	}
	if err := w.rdb.SAdd(ctx, QueuesKey, queues...).Err(); err != nil {
		err = fmt.Errorf("add the queue to %s: %w", QueuesKey, err)
		for i := range ts {
			if _, ok := w.published.Load(ts[i].Queue); !ok {
				errs[i] = err
			}
		}
		return
	}
	for _, q := range queues {
		w.published.Store(q, struct{}{})
	}
}

func bufSize(ts []Task) int {
	n := 0
	for i := range ts {
		n += messageSize(&ts[i])
	}
	return n
}
