package meetops

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"golang.org/x/sync/singleflight"

	"github.com/meetops/meetops/internal/tasks"
)

// DefaultServedQueuesTTL is how long a Client trusts what it last read of
// the queues running workers serve, for the check every enqueue makes
// (Info.Unserved, RequireServedQueue), before it reads them again; see
// WithServedQueuesTTL. Within it, enqueues cost no extra round trip, and a
// worker that started or stopped in the meantime is not seen yet.
const DefaultServedQueuesTTL = 5 * time.Second

// ErrQueueUnserved is matched by the error of an enqueue refused because
// no running worker serves its queue (see RequireServedQueue): nothing was
// enqueued. The error names the queue and the queues workers do serve.
var ErrQueueUnserved = errors.New("no running worker serves the queue")

// ServedQueue is a queue that running workers serve.
type ServedQueue struct {
	// Name is the queue's name.
	Name string `json:"name"`
	// Weight is its priority weight, the number in the workers'
	// WORKER_QUEUES ("critical=6,default=3,low=1"): the highest that any
	// worker serving it gives it.
	Weight int `json:"weight"`
	// Workers counts the running worker processes that serve it (a
	// worker's asynq servers, WORKER_PROCESSORS of them, count once).
	Workers int `json:"workers"`
}

// ServedQueues returns the queues that running workers serve, highest
// weight first, then by name; none when no worker runs. A worker counts
// while it runs and takes tasks, as asynq's server records in Redis say:
// not once it shut down (its record is removed), was told to stop taking
// tasks, or crashed (its record expires with its heartbeat, within about
// 10 s).
//
// It reads Redis on every call (a few round trips, one more per worker),
// and what it reads is what the next enqueues check their queues against
// (see DefaultServedQueuesTTL).
func (c *Client) ServedQueues(ctx context.Context) ([]ServedQueue, error) {
	v, err := c.served.get(ctx, 0)
	if err != nil {
		return nil, err
	}
	return slices.Clone(v.list), nil
}

// QueueCheck is what CheckQueues found.
type QueueCheck struct {
	// Unserved are the queues asked about that no running worker serves,
	// each once, in the order asked; empty when all are served.
	Unserved []string `json:"unserved,omitempty"`
	// Served are the queues running workers serve, as ServedQueues
	// returns them.
	Served []ServedQueue `json:"served"`
}

// CheckQueues reports which of queues ("" meaning "default") no running
// worker serves. It is the check Enqueue, EnqueueBatch and Status make, on
// the same view of the workers: one read at most the client's TTL old
// (DefaultServedQueuesTTL), so calling it right after an enqueue costs no
// round trip. Use it to show the warning an enqueue's Info.Unserved calls
// for (QueueCheck.Warning), the same one the enqueue CLI prints.
func (c *Client) CheckQueues(ctx context.Context, queues ...string) (QueueCheck, error) {
	v, err := c.served.get(ctx, c.servedTTL)
	if err != nil {
		return QueueCheck{}, err
	}
	return v.check(queues), nil
}

// Warning is the one-line warning for Unserved, naming those queues and
// the ones workers serve, or "" when every queue asked about is served:
//
//	no running worker serves queue "bulk" (running workers serve critical=6, default=3); its tasks wait until a worker serving it starts
func (q QueueCheck) Warning() string {
	if len(q.Unserved) == 0 {
		return ""
	}
	if len(q.Unserved) == 1 {
		return q.describe() + "; its tasks wait until a worker serving it starts"
	}
	return q.describe() + "; their tasks wait until workers serving them start"
}

// Err is nil when every queue asked about is served, else an error
// matching ErrQueueUnserved that names the unserved queues and the ones
// workers serve.
func (q QueueCheck) Err() error {
	if len(q.Unserved) == 0 {
		return nil
	}
	return &unservedError{msg: q.describe()}
}

// describe says which queues no running worker serves, and which queues
// running workers serve.
func (q QueueCheck) describe() string {
	var b strings.Builder
	b.WriteString("no running worker serves queue")
	if len(q.Unserved) > 1 {
		b.WriteString("s")
	}
	for i, name := range q.Unserved {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(" " + strconv.Quote(name))
	}
	if len(q.Served) == 0 {
		b.WriteString(" (no worker is running)")
		return b.String()
	}
	b.WriteString(" (running workers serve ")
	for i, s := range q.Served {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s=%d", s.Name, s.Weight)
	}
	b.WriteString(")")
	return b.String()
}

// unservedError is QueueCheck.Err's error; it matches ErrQueueUnserved.
type unservedError struct{ msg string }

func (e *unservedError) Error() string        { return e.msg }
func (e *unservedError) Is(target error) bool { return target == ErrQueueUnserved }

// WithServedQueuesTTL sets how long the client trusts what it last read
// of the queues running workers serve (default DefaultServedQueuesTTL);
// d <= 0 keeps the default. A longer TTL costs fewer reads, a shorter one
// sees a worker start or stop sooner.
func WithServedQueuesTTL(d time.Duration) ClientOption {
	return func(c *clientConfig) { c.servedTTL = d }
}

// RequireServedQueue makes the enqueue fail, with an error matching
// ErrQueueUnserved and nothing written, when no running worker serves the
// task's queue (as the client last saw it; see DefaultServedQueuesTTL).
// Without it such a task is enqueued and waits, and Info.Unserved says
// so. A check that cannot be made (Redis failing) fails the enqueue too.
// A scheduled task is refused as well: it needs a worker when it is due,
// and none serves its queue now.
func RequireServedQueue() Option {
	return func(o *tasks.TaskOptions) error {
		o.RequireServedQueue = true
		return nil
	}
}

// servedView is one read of the queues running workers serve.
type servedView struct {
	list   []ServedQueue // as ServedQueues orders them
	byName map[string]bool
}

func (v servedView) served(queue string) bool {
	if queue == "" {
		queue = tasks.DefaultQueue
	}
	return v.byName[queue]
}

func (v servedView) check(queues []string) QueueCheck {
	q := QueueCheck{Served: append([]ServedQueue{}, v.list...)}
	for _, name := range queues {
		if name == "" {
			name = tasks.DefaultQueue
		}
		if !v.served(name) && !slices.Contains(q.Unserved, name) {
			q.Unserved = append(q.Unserved, name)
		}
	}
	return q
}

// servedCache holds the last read of the served queues, shared by the
// client's calls; concurrent reads of Redis are one.
type servedCache struct {
	read  func() (servedView, error)
	group singleflight.Group

	mu   sync.Mutex
	view servedView
	at   time.Time // when the read of view started; zero before the first
}

// get returns a view read at most ttl ago, reading Redis when there is
// none (always with ttl 0). The read does not take ctx (asynq's Inspector
// does not), so a cancelled ctx returns at once and lets the read finish
// for the next caller.
func (s *servedCache) get(ctx context.Context, ttl time.Duration) (servedView, error) {
	s.mu.Lock()
	v, at := s.view, s.at
	s.mu.Unlock()
	if ttl > 0 && !at.IsZero() && time.Since(at) < ttl {
		return v, nil
	}
	if err := ctx.Err(); err != nil {
		return servedView{}, err
	}
	ch := s.group.DoChan("", func() (any, error) {
		start := time.Now()
		v, err := s.read()
		if err != nil {
			return servedView{}, fmt.Errorf("list the queues running workers serve: %w", err)
		}
		s.mu.Lock()
		if start.After(s.at) {
			s.view, s.at = v, start
		}
		s.mu.Unlock()
		return v, nil
	})
	select {
	case r := <-ch:
		return r.Val.(servedView), r.Err
	case <-ctx.Done():
		return servedView{}, ctx.Err()
	}
}

// asynqActive is the status asynq's record gives a server that runs and
// takes tasks ("new", "stopped" and "closed" serve nothing).
const asynqActive = "active"

// readServed reads asynq's server records: the running servers (their
// heartbeat current) and their queues.
func (c *Client) readServed() (servedView, error) {
	servers, err := c.inspect.Servers()
	if err != nil {
		return servedView{}, err
	}
	byName := servedQueues(servers)
	v := servedView{byName: make(map[string]bool, len(byName))}
	for name, q := range byName {
		v.byName[name] = true
		v.list = append(v.list, *q)
	}
	slices.SortFunc(v.list, func(a, b ServedQueue) int {
		return cmp.Or(cmp.Compare(b.Weight, a.Weight), cmp.Compare(a.Name, b.Name))
	})
	return v, nil
}

// servedQueues gathers the queues the active servers serve, each with its
// highest weight and the number of worker processes (host and PID) behind
// it: a worker runs several asynq servers, its processors, and counts once.
func servedQueues(servers []*asynq.ServerInfo) map[string]*ServedQueue {
	byName := map[string]*ServedQueue{}
	type process struct {
		host  string
		pid   int
		queue string
	}
	counted := map[process]bool{}
	for _, s := range servers {
		if s.Status != asynqActive {
			continue
		}
		for name, weight := range s.Queues {
			q := byName[name]
			if q == nil {
				q = &ServedQueue{Name: name}
				byName[name] = q
			}
			q.Weight = max(q.Weight, weight)
			if p := (process{s.Host, s.PID, name}); !counted[p] {
				counted[p] = true
				q.Workers++
			}
		}
	}
	return byName
}

// screen checks the queues of ps against the served ones, once per
// distinct queue, on the cached view (see CheckQueues). unserved tells the
// queues no running worker serves (none when the check failed); refused[i]
// is the error of ps[i] when it asked for RequireServedQueue and its queue
// is not served, or could not be checked.
func (c *Client) screen(ctx context.Context, ps []tasks.Prepared) (unserved map[string]bool, refused []error) {
	if len(ps) == 0 {
		return nil, nil
	}
	v, err := c.served.get(ctx, c.servedTTL)
	var checks map[string]error // the refusal for each queue required
	for i, p := range ps {
		if err == nil && !v.served(p.Queue) {
			if unserved == nil {
				unserved = map[string]bool{}
			}
			unserved[p.Queue] = true
		}
		if !p.RequireServedQueue {
			continue
		}
		if checks == nil {
			checks = map[string]error{}
		}
		e, ok := checks[p.Queue]
		if !ok {
			switch {
			case err != nil:
				e = fmt.Errorf("require a served queue: %w", err)
			default:
				e = v.check([]string{p.Queue}).Err()
			}
			checks[p.Queue] = e
		}
		if e != nil {
			if refused == nil {
				refused = make([]error, len(ps))
			}
			refused[i] = e
		}
	}
	return unserved, refused
}
