package callback

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"syscall"
	"time"

	"github.com/hibiken/asynq"

	"github.com/meetops/meetops/internal/batch"
	"github.com/meetops/meetops/internal/deadletter"
	"github.com/meetops/meetops/internal/tasks"
)

// TaskType is the asynq task type of a delivery.
const TaskType = "meetops:batch:callback"

// payload is a delivery task's payload: which completion of which batch.
type payload struct {
	BatchID string `json:"batch_id"`
	N       int    `json:"n"`
}

// TaskID is the asynq task ID of delivery n of batch id: whoever enqueues
// a completion's delivery (the worker that completed the batch, or any
// worker's sweep after a crash), it is enqueued once.
func TaskID(id string, n int) string { return "callback:" + id + ":" + strconv.Itoa(n) }

// DeliveryID is the Meetops-Delivery value of delivery n of batch id.
func DeliveryID(id string, n int) string { return id + ":" + strconv.Itoa(n) }

// Enqueuer enqueues the deliveries of batch completions.
type Enqueuer struct {
	// Client writes the delivery tasks.
	Client *asynq.Client
	// Batches is the batch store.
	Batches *batch.Store
	// Queue is the queue deliveries go to; "" means "default".
	Queue string
	// Retention keeps a delivered task (and its ID, which makes a second
	// enqueue of the same delivery a no-op): the dedup window; 0 means 24 h.
	Retention time.Duration
}

// Completed enqueues the delivery of each completion of a batch that has a
// callback URL, and records it as sent.
func (e *Enqueuer) Completed(ctx context.Context, cs []batch.Completion) error {
	var errs []error
	for _, c := range cs {
		p, err := e.Batches.Get(ctx, c.BatchID)
		if errors.Is(err, batch.ErrNotFound) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if p.CallbackURL == "" {
			continue
		}
		errs = append(errs, e.enqueue(ctx, c.BatchID, c.N))
	}
	return errors.Join(errs...)
}

// Sweep enqueues every delivery that completed batches are owed and that
// was not recorded as sent (its worker died between the completion and
// the enqueue). Every worker runs it now and then; the task IDs make
// concurrent sweeps harmless.
func (e *Enqueuer) Sweep(ctx context.Context) error {
	due, err := e.Batches.CallbacksDue(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range due {
		for n := p.CallbacksSent + 1; n <= p.Completions; n++ {
			errs = append(errs, e.enqueue(ctx, p.BatchID, n))
		}
	}
	return errors.Join(errs...)
}

func (e *Enqueuer) enqueue(ctx context.Context, id string, n int) error {
	b, _ := json.Marshal(payload{BatchID: id, N: n}) // strings and an int: cannot fail
	queue, retention := e.Queue, e.Retention
	if queue == "" {
		queue = tasks.DefaultQueue
	}
	if retention <= 0 {
		retention = tasks.DefaultDedupWindow
	}
	_, err := e.Client.EnqueueContext(ctx, asynq.NewTask(TaskType, b), asynq.TaskID(TaskID(id, n)), asynq.Queue(queue),
		asynq.MaxRetry(tasks.DefaultMaxRetry), asynq.Retention(retention), asynq.Timeout(time.Minute))
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return fmt.Errorf("callback: enqueue delivery %s: %w", DeliveryID(id, n), err)
	}
	return e.Batches.CallbackSent(ctx, id, n)
}

// Handler delivers callbacks: the asynq handler of TaskType.
type Handler struct {
	// Batches is the batch store the progress is read from.
	Batches *batch.Store
	// Policy is the worker's own allow-list, checked again at delivery on
	// the address connected to.
	Policy Policy
	// Secret signs the deliveries (CALLBACK_SECRET).
	Secret []byte
	// DeadLetters keeps deliveries that failed for good.
	DeadLetters *deadletter.Store
	// Timeout bounds one delivery; 0 means 10 s.
	Timeout time.Duration
	// Now is the clock of the signature; nil means time.Now.
	Now func() time.Time
	// Transport, when set, replaces the guarded transport (tests only: the
	// policy is then not enforced on connections).
	Transport http.RoundTripper
}

// errPermanent marks an answer that retrying cannot change.
var errPermanent = errors.New("permanent")

// ProcessTask implements asynq.Handler: it POSTs the batch's progress to
// its callback URL, signed. 2xx is done; 5xx, 408, 429, a timeout or a
// refused connection is retried with backoff (an error); a redirect, any
// other answer or a URL the policy refuses is a dead letter.
func (h *Handler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	var pl payload
	if err := json.Unmarshal(t.Payload(), &pl); err != nil || !batch.ValidID(pl.BatchID) || pl.N < 1 {
		return h.deadLetter(ctx, t, tasks.Result{Reason: tasks.ReasonInvalidPayload, ErrorMsg: "not a callback delivery payload"})
	}
	p, err := h.Batches.Get(ctx, pl.BatchID)
	if errors.Is(err, batch.ErrNotFound) {
		return nil // expired with the dedup window: nothing left to deliver
	}
	if err != nil {
		return err
	}
	status, err := h.deliver(ctx, p, pl.N)
	retried, _ := asynq.GetRetryCount(ctx)
	maxRetry, _ := asynq.GetMaxRetry(ctx)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrRefused):
		return h.deadLetter(ctx, t, tasks.Result{Reason: tasks.ReasonInvalidPayload, ErrorMsg: err.Error(), Attempts: retried + 1})
	case errors.Is(err, errPermanent):
		return h.deadLetter(ctx, t, tasks.Result{Reason: tasks.ReasonHTTP4xx, Status: status, ErrorMsg: err.Error(), Attempts: retried + 1})
	case retried >= maxRetry:
		return h.deadLetter(ctx, t, tasks.Result{Reason: tasks.ReasonRetriesExhausted, Status: status, ErrorMsg: err.Error(), Attempts: retried + 1})
	}
	return err
}

// deliver sends the delivery and returns the answer's status; the error
// wraps errPermanent or ErrRefused when retrying cannot help.
func (h *Handler) deliver(ctx context.Context, p batch.Progress, n int) (int, error) {
	if _, err := h.Policy.checkURL(p.CallbackURL); err != nil {
		return 0, err
	}
	body, _ := json.Marshal(p) // plain fields: cannot fail
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.CallbackURL, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrRefused, err)
	}
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "meetops-callback")
	req.Header.Set(SignatureHeader, Sign(h.Secret, now(), body))
	req.Header.Set(DeliveryHeader, DeliveryID(p.BatchID, n))
	resp, err := h.client(req.URL.Hostname()).Do(req)
	if err != nil {
		var refused *refusedAddr
		if errors.As(err, &refused) {
			return 0, refused.err
		}
		return 0, fmt.Errorf("callback %s: %w", DeliveryID(p.BatchID, n), err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch s := resp.StatusCode; {
	case s >= 200 && s <= 299:
		return s, nil
	case s >= 500, s == http.StatusRequestTimeout, s == http.StatusTooManyRequests:
		return s, fmt.Errorf("callback %s: HTTP %d", DeliveryID(p.BatchID, n), s)
	case s >= 300 && s <= 399:
		return s, fmt.Errorf("callback %s: HTTP %d redirect, not followed: %w", DeliveryID(p.BatchID, n), s, errPermanent)
	default:
		return s, fmt.Errorf("callback %s: HTTP %d: %w", DeliveryID(p.BatchID, n), s, errPermanent)
	}
}

// refusedAddr is a connection the policy refused, carried through the
// dialer's error.
type refusedAddr struct{ err error }

func (r *refusedAddr) Error() string { return r.err.Error() }

// client is an HTTP client for a delivery to host that never follows a
// redirect, uses no proxy, and connects only to addresses the policy
// allows for host: the check runs on the address actually dialled, after
// DNS.
func (h *Handler) client(host string) *http.Client {
	rt := h.Transport
	if rt == nil {
		dialer := &net.Dialer{Timeout: 5 * time.Second}
		dialer.Control = func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return &refusedAddr{err: fmt.Errorf("%w: %v", ErrRefused, err)}
			}
			if err := h.Policy.CheckAddr(host, ap.Addr()); err != nil {
				return &refusedAddr{err: err}
			}
			return nil
		}
		rt = &http.Transport{DialContext: dialer.DialContext, Proxy: nil, MaxIdleConns: 16,
			IdleConnTimeout: 30 * time.Second, TLSHandshakeTimeout: 5 * time.Second, ResponseHeaderTimeout: 10 * time.Second}
	}
	return &http.Client{Transport: rt, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// deadLetter records a delivery that failed for good, as the executor
// records an operation's: the task result, the dead-letter store, and an
// asynq.SkipRetry so asynq archives it.
func (h *Handler) deadLetter(ctx context.Context, t *asynq.Task, r tasks.Result) error {
	r.Outcome = tasks.OutcomeDeadLetter
	if r.Attempts == 0 {
		r.Attempts = 1
	}
	res := r.JSON()
	_, _ = t.ResultWriter().Write(res)
	key, _ := asynq.GetTaskID(ctx)
	queue, _ := asynq.GetQueueName(ctx)
	if h.DeadLetters != nil {
		payload := t.Payload()
		if !json.Valid(payload) || len(payload) > 1<<10 {
			payload, _ = json.Marshal(string(payload[:min(len(payload), 1<<10)]))
		}
		if err := h.DeadLetters.Add(ctx, deadletter.Record{Key: key, Type: TaskType, Queue: queue, Reason: r.Reason,
			Payload: payload, Result: res}); err != nil {
			return fmt.Errorf("store dead letter: %w", err)
		}
	}
	return fmt.Errorf("dead letter (%s): %s: %w", r.Reason, r.ErrorMsg, asynq.SkipRetry)
}
