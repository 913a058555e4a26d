package executor

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestStacksRunOnReusedGoroutinesAndPassPanicsOn(t *testing.T) {
	t.Parallel()
	var s stacks
	want := errors.New("boom")
	require.ErrorIs(t, s.run(func() error { return want }), want)
	require.Len(t, s.idle, 1, "the goroutine waits for the next attempt")

	// Concurrent attempts each get a goroutine; afterwards all are idle.
	var wg sync.WaitGroup
	var running atomic.Int32
	start := make(chan struct{})
	for range 8 {
		wg.Go(func() {
			require.NoError(t, s.run(func() error { running.Add(1); <-start; return nil }))
		})
	}
	require.Eventually(t, func() bool { return running.Load() == 8 }, 5*time.Second, time.Millisecond)
	close(start)
	wg.Wait()
	require.Len(t, s.idle, 8)

	// A panic reaches the caller, as asynq's recovery expects, and the
	// goroutine it unwound is not reused.
	require.PanicsWithValue(t, "bad", func() { _ = s.run(func() error { panic("bad") }) })
	require.Len(t, s.idle, 7)
	require.NoError(t, s.run(func() error { return nil }))
}
