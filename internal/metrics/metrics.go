// Package metrics defines meetops' Prometheus collectors. A nil *Metrics is
// valid and records nothing, so packages can take one optionally.
package metrics

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the collectors the worker exports on /metrics.
type Metrics struct {
	// TasksProcessed counts finished attempts by task type and outcome
	// (succeeded, already_done, ledger_hit, retry, deferred, interrupted,
	// dead_letter).
	TasksProcessed *prometheus.CounterVec
	// DeadLetters counts dead letters by task type and reason.
	DeadLetters *prometheus.CounterVec
	// DeadLettersTrimmed counts dead letters removed by a configured cap.
	DeadLettersTrimmed prometheus.Counter
	// UpstreamDuration observes upstream HTTP exchanges by operation and
	// status class (2xx, 4xx, 5xx, error).
	UpstreamDuration *prometheus.HistogramVec
	// RateLimitWait observes the waits the rate limiter imposed, by group
	// (0 for calls allowed at once).
	RateLimitWait *prometheus.HistogramVec
	// Throttled counts upstream throttling answers (429 / APIG.0308) by
	// group.
	Throttled *prometheus.CounterVec
	// RateLimitRemaining is the budget left after the last allowed call,
	// by group.
	RateLimitRemaining *prometheus.GaugeVec
	// RateLimitPerSecond is the configured limit by group, in calls per
	// second (0 when off).
	RateLimitPerSecond *prometheus.GaugeVec
	// BreakerState is each group's circuit breaker as this worker last
	// saw it: 0 closed, 1 half-open, 2 open.
	BreakerState *prometheus.GaugeVec
	// BreakerTransitions counts breaker transitions by group, from and to
	// (closed, half_open, open), each counted by the one worker that made
	// it: summed over the fleet, every transition once.
	BreakerTransitions *prometheus.CounterVec

	tasks    bound[prometheus.Counter]
	upstream bound[prometheus.Observer]
}

// New creates the collectors and registers them with reg (nil: not
// registered).
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		TasksProcessed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meetops_tasks_processed_total",
			Help: "Task attempts finished, by task type and outcome.",
		}, []string{"type", "outcome"}),
		DeadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meetops_dead_letters_total",
			Help: "Tasks dead-lettered, by task type and reason.",
		}, []string{"type", "reason"}),
		DeadLettersTrimmed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "meetops_dead_letters_trimmed_total",
			Help: "Dead letters removed from meetops' store by its configured cap.",
		}),
		UpstreamDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "meetops_upstream_request_duration_seconds",
			Help:    "Upstream HTTP request duration, by operation and status class.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 15},
		}, []string{"op", "status_class"}),
		RateLimitWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "meetops_ratelimit_wait_seconds",
			Help:    "Waits imposed by the shared upstream rate limiter, by group.",
			Buckets: []float64{0, .01, .05, .1, .25, .5, 1, 2, 5, 10, 30, 60},
		}, []string{"group"}),
		Throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meetops_upstream_throttled_total",
			Help: "Upstream throttling answers (429 / APIG.0308), by rate-limit group.",
		}, []string{"group"}),
		RateLimitRemaining: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "meetops_ratelimit_remaining",
			Help: "Calls left in the shared budget after the last allowed call, by group.",
		}, []string{"group"}),
		RateLimitPerSecond: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "meetops_ratelimit_limit_per_second",
			Help: "Configured upstream rate limit by group, in calls per second (0: off).",
		}, []string{"group"}),
		BreakerState: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "meetops_breaker_state",
			Help: "Circuit breaker state by rate-limit group, as this worker last saw it: 0 closed, 1 half-open, 2 open.",
		}, []string{"group"}),
		BreakerTransitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meetops_breaker_transitions_total",
			Help: "Circuit breaker transitions made by this worker, by rate-limit group, from and to state.",
		}, []string{"group", "from", "to"}),
	}
	if reg != nil {
		reg.MustRegister(m.TasksProcessed, m.DeadLetters, m.DeadLettersTrimmed, m.UpstreamDuration,
			m.RateLimitWait, m.Throttled, m.RateLimitRemaining, m.RateLimitPerSecond,
			m.BreakerState, m.BreakerTransitions)
	}
	return m
}

// Task counts a finished attempt.
func (m *Metrics) Task(taskType, outcome string) {
	if m != nil {
		m.tasks.get(taskType, outcome, func(a, b string) prometheus.Counter { return m.TasksProcessed.WithLabelValues(a, b) }).Inc()
	}
}

// DeadLetter counts a dead letter.
func (m *Metrics) DeadLetter(taskType, reason string) {
	if m != nil {
		m.DeadLetters.WithLabelValues(taskType, reason).Inc()
	}
}

// Breaker sets group's breaker state gauge (0 closed, 1 half-open, 2
// open).
func (m *Metrics) Breaker(group string, state int) {
	if m != nil {
		m.BreakerState.WithLabelValues(group).Set(float64(state))
	}
}

// BreakerTransition counts a breaker transition this worker made.
func (m *Metrics) BreakerTransition(group, from, to string) {
	if m != nil {
		m.BreakerTransitions.WithLabelValues(group, from, to).Inc()
	}
}

// Trimmed counts dead letters removed by a cap.
func (m *Metrics) Trimmed(n int) {
	if m != nil {
		m.DeadLettersTrimmed.Add(float64(n))
	}
}

// Upstream observes one upstream exchange; it has the signature of
// apiclient.Config.Observe.
func (m *Metrics) Upstream(op string, status int, d time.Duration) {
	if m != nil {
		m.upstream.get(op, StatusClass(status), func(a, b string) prometheus.Observer { return m.UpstreamDuration.WithLabelValues(a, b) }).Observe(d.Seconds())
	}
}

// StatusClass maps an HTTP status to "2xx".."5xx", and 0 to "error".
func StatusClass(status int) string {
	switch {
	case status <= 0:
		return "error"
	case status < 1000:
		return classes[status/100] // no allocation per observation
	}
	return strconv.Itoa(status/100) + "xx"
}

var classes = [10]string{"0xx", "1xx", "2xx", "3xx", "4xx", "5xx", "6xx", "7xx", "8xx", "9xx"}
