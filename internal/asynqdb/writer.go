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

// ErrNotReplicated is a task written to the primary that fewer replicas
// than asked acknowledged in time (WAIT): a failover could still lose it.
// Writing it again is safe — it is then refused as a conflict with itself —
// and, once replicated, reported written.
var ErrNotReplicated = errors.New("not acknowledged by enough replicas")

// Writer writes tasks to Redis in pipelined batches. It is safe for
// concurrent use.
type Writer struct {
	rdb  redis.UniversalClient
	opts Options
	// published holds the queues known to be in asynq:queues, which asynq
	// adds a queue to before its first task (asynq's queuesPublished).
	published sync.Map
}

// Options configure a Writer; zero values mean defaults.
type Options struct {
	// AckReplicas is how many replicas must acknowledge every write
	// (Redis WAIT) before Write reports it done; 0, the default, waits for
	// none. On Redis Cluster the replicas are those of the primary that
	// holds the task's queue.
	AckReplicas int
	// AckTimeout bounds the wait for the replicas; 0 means DefaultAckTimeout.
	AckTimeout time.Duration
}

// DefaultAckTimeout is how long a write waits for its replicas by default.
const DefaultAckTimeout = 2 * time.Second

// New returns a Writer on rdb.
func New(rdb redis.UniversalClient, o Options) *Writer {
	if o.AckTimeout <= 0 {
		o.AckTimeout = DefaultAckTimeout
	}
	return &Writer{rdb: rdb, opts: o}
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
// have the scripts cached yet) plus one for queues not seen before; with
// Options.AckReplicas, one per queue, each ending with a WAIT on the
// connection that wrote. It returns one error per task: nil when the task
// was written (and acknowledged), ErrConflict when its ID was taken, an
// error matching ErrNotReplicated when it was written but not acknowledged
// in time, else why writing failed; after a transport error the task may
// or may not have been written.
func (w *Writer) Write(ctx context.Context, ts []Task) []error {
	errs := make([]error, len(ts))
	w.publish(ctx, ts, errs)
	now := any(time.Now().UnixNano())
	// One allocation each for the whole batch's arguments and messages;
	// the per-task ones are the task key and the boxing of the values that
	// differ.
	args := make([]any, 0, callArgs*len(ts))
	buf := make([]byte, 0, bufSize(ts))
	calls := make([][]any, len(ts))
	var keys queueKeys
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
		calls[i] = args[call:len(args):len(args)]
	}
	if w.opts.AckReplicas == 0 {
		w.send(ctx, w.rdb.Pipeline(), calls, nil, errs)
		return errs
	}
	for queue, idx := range byQueue(ts, calls) {
		pipe, err := w.pipelineFor(ctx, queue)
		if err != nil {
			for _, i := range idx {
				errs[i] = err
			}
			continue
		}
		w.send(ctx, pipe, calls, idx, errs)
	}
	return errs
}

// byQueue groups the indices of the calls to make by the queue of their
// task.
func byQueue(ts []Task, calls [][]any) map[string][]int {
	m := map[string][]int{}
	for i, c := range calls {
		if c != nil {
			m[ts[i].Queue] = append(m[ts[i].Queue], i)
		}
	}
	return m
}

// pipelineFor returns a pipeline that runs on one connection to the
// primary holding queue, so that a WAIT at its end covers its writes: on
// Redis Cluster the node client of the queue's slot, elsewhere the client
// itself (a plain or failover client runs a pipeline on one connection).
func (w *Writer) pipelineFor(ctx context.Context, queue string) (redis.Pipeliner, error) {
	cc, ok := w.rdb.(*redis.ClusterClient)
	if !ok {
		return w.rdb.Pipeline(), nil
	}
	node, err := cc.MasterForKey(ctx, PendingKey(queue))
	if err != nil {
		return nil, fmt.Errorf("find the primary of queue %q: %w", queue, err)
	}
	return node.Pipeline(), nil
}

// send runs calls[i] for every i of idx (every non-nil call when idx is
// nil) on pipe and records their outcomes in errs, sending again as EVAL
// the ones Redis did not have cached (NOSCRIPT: nothing happened, so
// sending again is safe). With AckReplicas each round ends with a WAIT,
// which a written task's outcome then depends on.
func (w *Writer) send(ctx context.Context, pipe redis.Pipeliner, calls [][]any, idx []int, errs []error) {
	if idx == nil {
		for i, c := range calls {
			if c != nil {
				idx = append(idx, i)
			}
		}
	}
	if len(idx) == 0 {
		return
	}
	ack := w.opts.AckReplicas
	for round := 0; round < 2 && len(idx) > 0; round++ {
		cmds := make([]*redis.Cmd, len(idx))
		for k, i := range idx {
			c := calls[i]
			if round > 0 { // the source instead of the SHA1
				c = append([]any{argEval, source[c[1]]}, c[2:]...)
			}
			cmds[k] = pipe.Do(ctx, c...)
		}
		var wait *redis.Cmd
		if ack > 0 {
			wait = w.wait(ctx, pipe)
		}
		_, _ = pipe.Exec(ctx) // each command carries its own error
		var uncached []int
		for k, i := range idx {
			err := outcome(cmds[k])
			if round == 0 && err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
				uncached = append(uncached, i)
				continue
			}
			if err == nil && wait != nil {
				err = acked(wait, ack)
			}
			errs[i] = err
		}
		w.reloadOnMoved(ctx, errs, idx)
		idx = uncached
	}
}

// wait queues a WAIT for the replicas on pipe. (Pipeliner has no Wait: a
// WAIT only means something on the connection that wrote.)
func (w *Writer) wait(ctx context.Context, pipe redis.Pipeliner) *redis.Cmd {
	return pipe.Do(ctx, "wait", w.opts.AckReplicas, w.opts.AckTimeout.Milliseconds())
}

// acked turns a WAIT reply into nil when at least want replicas
// acknowledged, else an error matching ErrNotReplicated.
func acked(wait *redis.Cmd, want int) error {
	n, err := wait.Int64()
	if err != nil {
		return fmt.Errorf("%w: WAIT: %w", ErrNotReplicated, err)
	}
	if n < int64(want) {
		return fmt.Errorf("%w: %d of %d replicas acknowledged in time", ErrNotReplicated, n, want)
	}
	return nil
}

// reloadOnMoved asks a cluster client to reload its slot map when a node
// pipeline was answered MOVED or ASK (the slot has moved, after a
// failover): the next write then goes to the right primary.
func (w *Writer) reloadOnMoved(ctx context.Context, errs []error, idx []int) {
	cc, ok := w.rdb.(*redis.ClusterClient)
	if !ok {
		return
	}
	for _, i := range idx {
		if errs[i] != nil && (redis.HasErrorPrefix(errs[i], "MOVED") || redis.HasErrorPrefix(errs[i], "ASK")) {
			cc.ReloadState(ctx)
			return
		}
	}
}

// AckProbe waits until every write made so far to queue's primary,
// whoever made it, is acknowledged by Options.AckReplicas replicas: it
// makes one write of its own in the queue's slot and WAITs for it, and
// replication is ordered. It is how a duplicate (a task written earlier,
// perhaps never acknowledged) is confirmed durable before it is reported.
// Without AckReplicas it does nothing.
func (w *Writer) AckProbe(ctx context.Context, queue string) error {
	if w.opts.AckReplicas == 0 {
		return nil
	}
	pipe, err := w.pipelineFor(ctx, queue)
	if err != nil {
		return err
	}
	probe := pipe.Incr(ctx, "meetops:ackprobe:{"+queue+"}")
	wait := w.wait(ctx, pipe)
	_, _ = pipe.Exec(ctx)
	if err := probe.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrNotReplicated, err)
	}
	return acked(wait, w.opts.AckReplicas)
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
