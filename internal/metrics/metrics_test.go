package metrics_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/metrics"
)

func TestTaskAndUpstreamCountTheirLabels(t *testing.T) {
	t.Parallel()
	m := metrics.New(nil)
	for range 3 {
		m.Task("rtc:room:dismiss", "succeeded")
	}
	m.Task("rtc:room:dismiss", "retry")
	m.Task("meeting:cancel", "succeeded")
	require.Equal(t, 3.0, testutil.ToFloat64(m.TasksProcessed.WithLabelValues("rtc:room:dismiss", "succeeded")))
	require.Equal(t, 1.0, testutil.ToFloat64(m.TasksProcessed.WithLabelValues("rtc:room:dismiss", "retry")))
	require.Equal(t, 1.0, testutil.ToFloat64(m.TasksProcessed.WithLabelValues("meeting:cancel", "succeeded")))

	m.Upstream("dismiss", 204, time.Millisecond)
	m.Upstream("dismiss", 503, time.Millisecond)
	m.Upstream("dismiss", 0, time.Millisecond)
	require.Equal(t, 3, testutil.CollectAndCount(m.UpstreamDuration))
}

func TestStatusClass(t *testing.T) {
	t.Parallel()
	for status, want := range map[int]string{0: "error", -1: "error", 200: "2xx", 204: "2xx", 429: "4xx", 503: "5xx", 1200: "12xx"} {
		require.Equal(t, want, metrics.StatusClass(status), "status %d", status)
	}
}

func TestNilMetricsRecordNothing(t *testing.T) {
	t.Parallel()
	var m *metrics.Metrics
	m.Task("a", "b")
	m.Upstream("a", 200, time.Second)
	m.DeadLetter("a", "b")
}

func TestBreakerStateAndTransitions(t *testing.T) {
	t.Parallel()
	m := metrics.New(nil)
	m.Breaker("rtc_rooms", 2)
	m.BreakerTransition("rtc_rooms", "closed", "open")
	m.BreakerTransition("rtc_rooms", "closed", "open")
	require.Equal(t, 2.0, testutil.ToFloat64(m.BreakerState.WithLabelValues("rtc_rooms")))
	require.Equal(t, 2.0, testutil.ToFloat64(m.BreakerTransitions.WithLabelValues("rtc_rooms", "closed", "open")))
	var none *metrics.Metrics
	none.Breaker("rtc_rooms", 1)
	none.BreakerTransition("rtc_rooms", "open", "half_open")
}
