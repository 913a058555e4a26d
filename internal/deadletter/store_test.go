package deadletter_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/deadletter"
	"github.com/meetops/meetops/internal/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

func record(i int, typ, reason string) deadletter.Record {
	return deadletter.Record{
		Key: fmt.Sprintf("dismiss:%032d", i), Type: typ, Queue: "default", Reason: reason,
		Payload: json.RawMessage(`{"app_id":"a","room_id":"r"}`),
		Result:  json.RawMessage(`{"outcome":"dead_letter","reason":"` + reason + `"}`),
		DeadAt:  time.UnixMilli(int64(1_700_000_000_000 + i)),
	}
}

func TestStoreRoundTripAndFilters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := deadletter.New(redistest.Client(t), deadletter.Options{})

	require.NoError(t, s.Add(ctx, record(1, "rtc:room:dismiss", "http_4xx")))
	require.NoError(t, s.Add(ctx, record(2, "rtc:app:disable", "auth")))
	require.NoError(t, s.Add(ctx, record(3, "rtc:room:dismiss", "retries_exhausted")))

	got, err := s.Get(ctx, record(2, "", "").Key)
	require.NoError(t, err)
	require.Equal(t, "rtc:app:disable", got.Type)
	require.JSONEq(t, `{"outcome":"dead_letter","reason":"auth"}`, string(got.Result))
	_, err = s.Get(ctx, "nope")
	require.ErrorIs(t, err, deadletter.ErrNotFound)

	collect := func(f deadletter.Filter) []string {
		var keys []string
		require.NoError(t, s.Each(ctx, f, func(r deadletter.Record) error { keys = append(keys, r.Key); return nil }))
		return keys
	}
	require.Equal(t, []string{record(1, "", "").Key, record(2, "", "").Key, record(3, "", "").Key}, collect(deadletter.Filter{}), "oldest first")
	require.Equal(t, []string{record(1, "", "").Key, record(3, "", "").Key}, collect(deadletter.Filter{Type: "rtc:room:dismiss"}))
	require.Equal(t, []string{record(3, "", "").Key}, collect(deadletter.Filter{Reason: "retries_exhausted"}))

	n, err := s.Delete(ctx, record(1, "", "").Key, "missing")
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
	c, err := s.Count(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(2), c)

	stop := errors.New("stop")
	require.ErrorIs(t, s.Each(ctx, deadletter.Filter{}, func(deadletter.Record) error { return stop }), stop)
}

// asynq's archive keeps at most 9,999 tasks; this store must keep them all.
func TestStoreKeepsMoreThanAsynqArchiveCap(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb := redistest.Client(t)
	s := deadletter.New(rdb, deadletter.Options{})
	const n = 12_000
	for i := range n {
		require.NoError(t, s.Add(ctx, record(i, "rtc:room:dismiss", "http_4xx")))
	}
	c, err := s.Count(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(n), c)
	seen := 0
	require.NoError(t, s.Each(ctx, deadletter.Filter{}, func(r deadletter.Record) error {
		require.Equal(t, record(seen, "", "").Key, r.Key)
		seen++
		return nil
	}))
	require.Equal(t, n, seen, "every dead letter is listed, across pages")
}

func TestStoreCapTrimsOldestAndReports(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var trimmed []string
	s := deadletter.New(redistest.Client(t), deadletter.Options{MaxLen: 3, OnTrim: func(k []string) { trimmed = append(trimmed, k...) }})
	for i := range 5 {
		require.NoError(t, s.Add(ctx, record(i, "t", "http_4xx")))
	}
	require.Equal(t, []string{record(0, "", "").Key, record(1, "", "").Key}, trimmed)
	c, err := s.Count(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(3), c)
	_, err = s.Get(ctx, record(0, "", "").Key)
	require.ErrorIs(t, err, deadletter.ErrNotFound)
}

// Pages follow one another without gaps or repeats, across records of one
// millisecond and across the store's own read pages, with a filter, and
// while records before the position are deleted.
func TestStorePages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := deadletter.New(redistest.Client(t), deadletter.Options{})
	const n = 1203
	var want []string
	for i := range n {
		r := record(i, "rtc:room:dismiss", "http_4xx")
		r.DeadAt = time.UnixMilli(1_700_000_000_000 + int64(i/7)) // seven a millisecond
		if i%3 == 0 {
			r.Type = "rtc:app:disable"
		}
		require.NoError(t, s.Add(ctx, r))
		if r.Type == "rtc:room:dismiss" {
			want = append(want, r.Key)
		}
	}
	f := deadletter.Filter{Type: "rtc:room:dismiss"}
	var got []string
	var pos deadletter.Position
	for pages := 0; ; pages++ {
		require.Less(t, pages, n)
		recs, more, err := s.Page(ctx, f, pos, 50)
		require.NoError(t, err)
		for _, r := range recs {
			got = append(got, r.Key)
		}
		if !more {
			break
		}
		require.Len(t, recs, 50)
		pos = deadletter.PositionOf(recs[len(recs)-1])
		if pages == 3 { // what is behind the position goes away
			_, err := s.Delete(ctx, recs[0].Key, recs[len(recs)-1].Key)
			require.NoError(t, err)
		}
	}
	require.Equal(t, want, got)

	recs, more, err := s.Page(ctx, deadletter.Filter{Reason: "auth"}, deadletter.Position{}, 10)
	require.NoError(t, err)
	require.Empty(t, recs)
	require.False(t, more)
}
