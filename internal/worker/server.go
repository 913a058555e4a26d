package worker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	asynqmetrics "github.com/hibiken/asynq/x/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/meetops/meetops"
	"github.com/meetops/meetops/internal/api"
	"github.com/meetops/meetops/internal/apiclient"
	"github.com/meetops/meetops/internal/asynqdb"
	"github.com/meetops/meetops/internal/batch"
	"github.com/meetops/meetops/internal/breaker"
	"github.com/meetops/meetops/internal/callback"
	"github.com/meetops/meetops/internal/deadletter"
	"github.com/meetops/meetops/internal/executor"
	"github.com/meetops/meetops/internal/groupcommit"
	"github.com/meetops/meetops/internal/httpguard"
	"github.com/meetops/meetops/internal/ledger"
	"github.com/meetops/meetops/internal/metrics"
	"github.com/meetops/meetops/internal/ratelimit"
	"github.com/meetops/meetops/internal/retry"
	"github.com/meetops/meetops/internal/tasks"
	"github.com/meetops/meetops/internal/version"
)

// Worker is an assembled worker process: asynq server, handlers, HTTP.
type Worker struct {
	cfg Config
	log zerolog.Logger
	rdb redis.UniversalClient
	// srvs are the asynq processors, sharing cfg.Concurrency.
	srvs    []*asynq.Server
	mux     *asynq.ServeMux
	http    *http.Server
	httpLn  net.Listener
	reg     *prometheus.Registry
	insp    *asynq.Inspector
	running chan struct{}
	// batches and deliveries: the batch records, and the callbacks owed.
	batches    *batch.Store
	deliveries *callback.Enqueuer
	dead       *deadletter.Store
	// api is the HTTP producer API mounted under /v1/ (dev mode), or nil.
	api *api.Server
	// upstream is the upstream client, for readiness and re-logins.
	upstream upstream
}

// New validates cfg (defaults applied) and assembles a worker. Nothing runs
// until Run.
func New(ctx context.Context, cfg Config, log zerolog.Logger) (*Worker, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	rdb, err := NewRedis(cfg)
	if err != nil {
		return nil, err
	}
	if err := pingRedis(ctx, rdb, 5*time.Second); err != nil {
		rdb.Close()
		return nil, err
	}
	if !cfg.embeddedRedis {
		warnIfLossy(ctx, rdb, log)
	}
	for _, w := range exposureWarnings(cfg) {
		log.Warn().Msg(w)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := metrics.New(reg)
	insp := asynq.NewInspectorFromRedisClient(rdb)
	reg.MustRegister(asynqmetrics.NewQueueMetricsCollector(insp))

	apiCfg := cfg.API
	apiCfg.Version = version.Version
	apiCfg.Observe = m.Upstream
	logins := newLoginWatch(cfg, log, reg)
	apiCfg.Login = apiclient.LoginPolicy{RejectCount: cfg.AuthRejectCount, RejectWindow: cfg.AuthRejectWindow, RetryInterval: cfg.AuthRetryInterval}
	apiCfg.ReloadSecret = logins.reload
	apiCfg.OnLoginState = logins.changed
	api, err := apiclient.New(apiCfg)
	if err != nil {
		rdb.Close()
		return nil, err
	}

	limits := map[string]ratelimit.Limit{}
	for g, v := range cfg.RateLimits {
		limits[g], _ = ratelimit.ParseLimit(v) // validated above
	}
	limiter := ratelimit.New(rdb, limits, ratelimit.Observer{
		Waited:    func(g string, d time.Duration) { m.RateLimitWait.WithLabelValues(g).Observe(d.Seconds()) },
		Throttled: func(g string) { m.Throttled.WithLabelValues(g).Inc() },
		Remaining: func(g string, n int) { m.RateLimitRemaining.WithLabelValues(g).Set(float64(n)) },
	})
	for g, lim := range limiter.Limits() {
		perSec := 0.0
		if !lim.Off() {
			perSec = float64(lim.Rate) / lim.Period.Seconds()
		}
		m.RateLimitPerSecond.WithLabelValues(g).Set(perSec)
	}

	var br executor.Breaker // nil interface when off, never a nil *breaker.Breaker
	if !cfg.BreakerOff {
		br = newBreaker(rdb, cfg.Breaker, m, log)
	}

	dl := deadletter.New(rdb, deadletter.Options{MaxLen: cfg.DeadLetterMaxLen, OnTrim: func(keys []string) {
		m.Trimmed(len(keys))
		log.Warn().Int("count", len(keys)).Strs("keys", keys).Msg("dead-letter store over its cap (DEAD_LETTER_MAX): oldest removed")
	}})

	// Concurrent script calls (asynq's completion, the limiter's, the
	// ledger's) and the ledger's commands share round trips; asynq's
	// dequeue, which it sends one at a time, goes alone.
	group := groupcommit.New(rdb)
	rdb.AddHook(group.Hook(asynqdb.IsDequeue))

	policy := retry.Policy{}
	// Processors share the concurrency, the first ones one more each when
	// it does not divide.
	srvs := make([]*asynq.Server, cfg.Processors)
	for i := range srvs {
		conc := cfg.Concurrency / cfg.Processors
		if i < cfg.Concurrency%cfg.Processors {
			conc++
		}
		srvs[i] = asynq.NewServerFromRedisClient(rdb, asynq.Config{
			Concurrency:              conc,
			Queues:                   cfg.Queues,
			RetryDelayFunc:           policy.RetryDelay,
			IsFailure:                retry.IsFailure,
			ShutdownTimeout:          cfg.ShutdownTimeout,
			TaskCheckInterval:        cfg.TaskCheckInterval,
			DelayedTaskCheckInterval: cfg.DelayedTaskCheckInterval,
			Logger:                   asynqLogger{log.With().Str("component", "asynq").Logger()},
			LogLevel:                 asynqLevel(log.GetLevel()),
		})
	}
	mux := asynq.NewServeMux()
	batches := batch.New(rdb, batch.Options{TTL: cfg.DedupWindow})
	deliveries := &callback.Enqueuer{Client: asynq.NewClientFromRedisClient(rdb), Batches: batches,
		Queue: cfg.CallbackQueue, Retention: cfg.DedupWindow}
	executor.Register(mux, executor.Deps{
		API:         api,
		Ledger:      ledger.New(rdb, ledger.Options{TTL: cfg.DedupWindow, Subscribers: batch.MemberIndexKey, Group: group}),
		DeadLetters: dl,
		Logger:      log,
		Metrics:     m,
		Limiter:     limiter,
		Breaker:     br,
		Priorities:  cfg.Queues,
		// A deferred task is back ahead of its turn despite asynq's
		// forwarding and idle polling delays.
		ComeBackEarly: cfg.DelayedTaskCheckInterval + cfg.TaskCheckInterval,
		Batches:       batches,
		Deliveries:    deliveries,
	})
	mux.Handle(callback.TaskType, &callback.Handler{Batches: batches, DeadLetters: dl,
		Policy: callback.Policy{AllowHosts: cfg.CallbackAllowHosts}, Secret: []byte(cfg.CallbackSecret)})

	w := &Worker{cfg: cfg, log: log, rdb: rdb, srvs: srvs, mux: mux, reg: reg, insp: insp, running: make(chan struct{}),
		batches: batches, deliveries: deliveries, dead: dl, upstream: api}
	if cfg.insecureDashboard() {
		log.Warn().Str("http_addr", cfg.HTTPAddr).
			Msg("DASHBOARD_INSECURE=1: the dashboard (task payloads and results) is served WITHOUT authentication to anyone who can reach " +
				cfg.HTTPAddr + "; set DASHBOARD_USER and DASHBOARD_PASSWORD")
	}
	if cfg.HTTPAddr != "off" {
		limits := cfg.httpLimits
		if len(cfg.apiTokens) > 0 {
			if w.api, err = newAPI(cfg, rdb, log, reg); err != nil {
				rdb.Close()
				return nil, err
			}
			// The API has its own body limits, per route (routes keeps
			// the worker's own for the other paths).
			limits.MaxBodyBytes = -1
		}
		ln, err := net.Listen("tcp", cfg.HTTPAddr)
		if err != nil {
			rdb.Close()
			return nil, fmt.Errorf("HTTP_ADDR %s: %w", cfg.HTTPAddr, err)
		}
		w.httpLn = ln
		w.http = httpguard.Server(w.routes(), limits)
	}
	return w, nil
}

// newBreaker returns the circuit breakers, their state in /metrics and
// one log line per transition, written by the worker that made it (each
// transition is made by exactly one worker of the fleet, whose write to
// Redis won; the others only see its result, in their state gauge).
func newBreaker(rdb redis.UniversalClient, s breaker.Settings, m *metrics.Metrics, log zerolog.Logger) *breaker.Breaker {
	log = log.With().Str("component", "breaker").Logger()
	for _, g := range tasks.Groups {
		m.Breaker(g, int(breaker.Closed))
	}
	return breaker.New(rdb, breaker.Options{Settings: s, Observer: breaker.Observer{
		State: func(g string, st breaker.State) { m.Breaker(g, int(st)) },
		Transition: func(g string, from, to breaker.State, w breaker.Window) {
			m.BreakerTransition(g, from.String(), to.String())
			e := log.Info()
			if to == breaker.Open && from == breaker.Closed {
				e = log.Warn().Int("attempts", w.Attempts).Int("failures", w.Failures).Dur("window", s.Window)
			}
			e.Str("group", g).Str("from", from.String()).Str("to", to.String()).
				Msgf("circuit breaker of %s: %s → %s", g, from, to)
		},
	}})
}

// newAPI assembles the HTTP producer API on the worker's Redis client, its
// dedup window and callback hosts, logging through the worker's logger and
// counting into its registry.
func newAPI(cfg Config, rdb redis.UniversalClient, log zerolog.Logger, reg *prometheus.Registry) (*api.Server, error) {
	producer := meetops.NewClientFromRedis(rdb, meetops.WithDedupWindow(cfg.DedupWindow),
		meetops.WithCallbackHosts(cfg.CallbackAllowHosts...))
	limit, _ := ratelimit.ParseLimit(api.DefaultRateLimit)
	s, err := api.New(api.Options{Producer: producer, Tokens: cfg.apiTokens, RateLimit: limit,
		Logger: newSlogLogger(log.With().Str("component", "api").Logger()), Registerer: reg})
	if err != nil {
		return nil, fmt.Errorf("HTTP API: %w", err)
	}
	return s, nil
}

// Use adds asynq middleware around the handlers (tracing, measurements).
// Call it before Run.
func (w *Worker) Use(mw ...asynq.MiddlewareFunc) { w.mux.Use(mw...) }

// HTTPAddr returns the address the HTTP server listens on ("" when off).
func (w *Worker) HTTPAddr() string {
	if w.httpLn == nil {
		return ""
	}
	return w.httpLn.Addr().String()
}

// Run processes tasks until ctx is cancelled, then stops taking tasks,
// gives running ones ShutdownTimeout to finish (unfinished ones go back to
// the queue) and returns nil.
func (w *Worker) Run(ctx context.Context) error {
	defer w.rdb.Close()
	for i, srv := range w.srvs {
		if err := srv.Start(w.mux); err != nil {
			for _, started := range w.srvs[:i] {
				started.Shutdown()
			}
			return fmt.Errorf("start asynq server: %w", err)
		}
	}
	close(w.running)
	httpErr := make(chan error, 1)
	if w.http != nil {
		go func() {
			if err := w.http.Serve(w.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				httpErr <- err
			}
		}()
	}
	w.log.Info().Str("queues", queueList(w.cfg.Queues, ",")).
		Msg("serving queues " + queueList(w.cfg.Queues, ", ") + " (WORKER_QUEUES); a task in any other queue waits for a worker that serves it")
	w.log.Info().Str("http", w.HTTPAddr()).Int("concurrency", w.cfg.Concurrency).
		Interface("queues", w.cfg.Queues).Msg("worker started")
	recoverCtx, stopRecover := context.WithCancel(context.Background())
	recovered := make(chan struct{})
	go func() {
		defer close(recovered)
		recoverLoop(recoverCtx, w.rdb, slices.Collect(maps.Keys(w.cfg.Queues)), w.cfg.RecoverInterval, w.cfg.RecoverGrace, w.log,
			w.deliveries.Sweep)
	}()

	reloginCtx, stopRelogin := context.WithCancel(context.Background())
	relogged := make(chan struct{})
	go func() {
		defer close(relogged)
		reloginLoop(reloginCtx, w.upstream, reloginTick)
	}()

	var err error
	select {
	case <-ctx.Done():
	case err = <-httpErr:
		err = fmt.Errorf("http server: %w", err)
	}
	w.log.Info().Dur("shutdown_timeout", w.cfg.ShutdownTimeout).Msg("shutting down: no new tasks; waiting for running ones")
	stopRecover()
	<-recovered
	stopRelogin()
	<-relogged
	// Every processor stops taking tasks, then all wait for theirs, each
	// step for all processors at once: a processor may take up to a second
	// to stop (asynq's idle poll), and ShutdownTimeout bounds the whole
	// wait, not each processor's.
	var wg sync.WaitGroup
	for _, srv := range w.srvs {
		wg.Go(srv.Stop)
	}
	wg.Wait()
	for _, srv := range w.srvs {
		wg.Go(srv.Shutdown)
	}
	wg.Wait()
	if w.http != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = w.http.Shutdown(sctx)
		cancel()
	}
	if w.api != nil {
		w.api.Close()
	}
	w.log.Info().Msg("worker stopped")
	return err
}

// queueList spells queues as WORKER_QUEUES does, name=weight, highest
// weight first (then by name), joined by sep.
func queueList(queues map[string]int, sep string) string {
	names := slices.SortedFunc(maps.Keys(queues), func(a, b string) int {
		return cmp.Or(cmp.Compare(queues[b], queues[a]), cmp.Compare(a, b))
	})
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = n + "=" + strconv.Itoa(queues[n])
	}
	return strings.Join(parts, sep)
}
