package ratelimit_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/ratelimit"
	"github.com/meetops/meetops/internal/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

func TestParseLimit(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]ratelimit.Limit{
		"60/m": {Rate: 60, Period: time.Minute}, "10/s": {Rate: 10, Period: time.Second},
		"100/h": {Rate: 100, Period: time.Hour}, "off": {}, " 5/s ": {Rate: 5, Period: time.Second},
	} {
		got, err := ratelimit.ParseLimit(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, bad := range []string{"", "60", "0/s", "-1/m", "10/d", "x/s", "on"} {
		_, err := ratelimit.ParseLimit(bad)
		require.Error(t, err, bad)
	}
	require.Equal(t, time.Second, ratelimit.Limit{Rate: 60, Period: time.Minute}.Interval())
	require.Equal(t, "60/m", ratelimit.Limit{Rate: 60, Period: time.Minute}.String())
	require.Equal(t, "off", ratelimit.Limit{}.String())
}

// Two limiters on one Redis (two worker processes) share one budget.
func TestBudgetIsSharedAcrossLimiters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb := redistest.Client(t)
	limits := map[string]ratelimit.Limit{"rtc_rooms": {Rate: 2, Period: time.Minute}}
	a, b := ratelimit.New(rdb, limits, ratelimit.Observer{}), ratelimit.New(rdb, limits, ratelimit.Observer{})

	w, err := a.Allow(ctx, "rtc_rooms", "k1", 1)
	require.NoError(t, err)
	require.Zero(t, w, "the first call goes at once")
	w, err = b.Allow(ctx, "rtc_rooms", "k2", 1)
	require.NoError(t, err)
	require.Greater(t, w, 25*time.Second, "2/m spaces calls 30 s apart, whichever process asks")
	require.LessOrEqual(t, w, 30*time.Second)

	w, err = a.Allow(ctx, "meeting_vmr", "k3", 1)
	require.NoError(t, err)
	require.Zero(t, w, "groups have separate budgets")
	_, err = a.Allow(ctx, "nope", "k4", 1)
	require.Error(t, err)
}

func TestOffNeverWaits(t *testing.T) {
	t.Parallel()
	l := ratelimit.New(redistest.Client(t), map[string]ratelimit.Limit{"rtc_apps": {}}, ratelimit.Observer{})
	for range 100 {
		w, err := l.Allow(context.Background(), "rtc_apps", "k", 1)
		require.NoError(t, err)
		require.Zero(t, w)
	}
}

func TestThrottlePausesTheGroupForEveryWorker(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb := redistest.Client(t)
	var throttled []string
	var waits []time.Duration
	a := ratelimit.New(rdb, nil, ratelimit.Observer{Throttled: func(g string) { throttled = append(throttled, g) }})
	b := ratelimit.New(rdb, nil, ratelimit.Observer{Waited: func(_ string, d time.Duration) { waits = append(waits, d) }})

	a.Throttled(ctx, "meeting_mgmt", 3*time.Second)
	w, err := b.Allow(ctx, "meeting_mgmt", "k", 1)
	require.NoError(t, err)
	require.Greater(t, w, 2*time.Second, "another worker sees the pause through Redis")
	require.LessOrEqual(t, w, 3*time.Second)
	require.Equal(t, []string{"meeting_mgmt"}, throttled)
	require.Len(t, waits, 1)

	// Without Retry-After the pause starts at 2 s and doubles.
	a.Throttled(ctx, "meeting_vmr", 0)
	w1, _ := a.Allow(ctx, "meeting_vmr", "k3", 1)
	a.Throttled(ctx, "meeting_vmr", 0)
	w2, _ := a.Allow(ctx, "meeting_vmr", "k3", 1)
	require.InDelta(t, 2*time.Second, w1, float64(200*time.Millisecond))
	require.InDelta(t, 4*time.Second, w2, float64(200*time.Millisecond))
}
