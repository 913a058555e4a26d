package api

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the API's Prometheus collectors. Their labels are routes,
// statuses and operation names: never a token, a token's name or a key.
type metrics struct {
	requests   *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	operations *prometheus.CounterVec
}

// Outcomes of an operation in meetops_api_operations_total.
const (
	outcomeEnqueued  = "enqueued"
	outcomeDuplicate = "duplicate"
	outcomeKeyReused = "key_reused"
	outcomeInvalid   = "invalid"
)

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meetops_api_requests_total",
			Help: "HTTP API requests answered, by route (method and path pattern) and status.",
		}, []string{"route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "meetops_api_request_duration_seconds",
			Help:    "Time from the end of a request's headers to its answer, by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route"}),
		operations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meetops_api_operations_total",
			Help: `Operations received through the API, by op and outcome: enqueued (a new task), duplicate (already enqueued), key_reused, invalid.`,
		}, []string{"op", "outcome"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.duration, m.operations)
	}
	return m
}

func (m *metrics) observe(route string, status int, seconds float64) {
	m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(route).Observe(seconds)
}

// opLabel is the op label of an operation name: a known name, else
// "unknown" (the label set stays bounded whatever clients send).
func opLabel(name string) string {
	for _, n := range opNames {
		if n == name {
			return name
		}
	}
	return "unknown"
}
