package api

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops"
	"github.com/meetops/meetops/internal/tasks"
)

// blockingProducer answers every operation with its derived key, holding
// every call until release is closed, and records how many calls it holds
// and the size of every call.
type blockingProducer struct {
	Producer
	release chan struct{}
	mu      sync.Mutex
	held    int
	sizes   []int
}

func (p *blockingProducer) hold(n int) {
	p.mu.Lock()
	p.held++
	p.mu.Unlock()
	<-p.release
	p.mu.Lock()
	p.sizes = append(p.sizes, n)
	p.mu.Unlock()
}

// holding reports how many calls are held.
func (p *blockingProducer) holding() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.held
}

func (p *blockingProducer) Enqueue(_ context.Context, op meetops.Op, _ ...meetops.Option) (meetops.Info, error) {
	p.hold(1)
	return meetops.Info{Key: tasks.Key(op)}, nil
}

func (p *blockingProducer) EnqueueBatch(_ context.Context, reqs []meetops.Request, _ ...meetops.BatchOption) []meetops.BatchResult {
	p.hold(len(reqs))
	out := make([]meetops.BatchResult, len(reqs))
	for i, r := range reqs {
		out[i].Info.Key = tasks.Key(r.Op)
	}
	return out
}

// Operations that arrive while every worker is busy go together in one
// EnqueueBatch call, and each gets its own answer.
func TestCoalescerGathersWhileBusy(t *testing.T) {
	t.Parallel()
	p := &blockingProducer{release: make(chan struct{})}
	c := newCoalescer(p, 5*time.Second)
	defer c.close()
	var releaseOnce sync.Once
	release := func() { releaseOnce.Do(func() { close(p.release) }) }
	defer release() // before close: a failed check must not leave workers held
	var wg sync.WaitGroup
	got := make([]string, coalesceWorkers+40)
	send := func(i int) {
		wg.Go(func() {
			info, err := c.enqueue(t.Context(), meetops.Disable{AppID: fmt.Sprint("app-", i)}, nil)
			require.NoError(t, err)
			got[i] = info.Key
		})
	}
	for i := range coalesceWorkers { // one each, held in Enqueue
		send(i)
		require.Eventually(t, func() bool { return p.holding() == i+1 }, 5*time.Second, time.Millisecond)
	}
	for i := coalesceWorkers; i < len(got); i++ { // every worker is held: these wait together
		send(i)
	}
	require.Eventually(t, func() bool { return len(c.queue) == 40 }, 5*time.Second, time.Millisecond)
	release()
	wg.Wait()
	for i, k := range got {
		require.Equal(t, tasks.Key(meetops.Disable{AppID: fmt.Sprint("app-", i)}), k, "request %d got its own answer", i)
	}
	require.Greater(t, slices.Max(p.sizes), 1, "%v", p.sizes)
	total := 0
	for _, n := range p.sizes {
		total += n
	}
	require.Equal(t, len(got), total)

	// A request whose context has ended gets its error and is not sent.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := c.enqueue(ctx, meetops.Disable{AppID: "late"}, nil)
	require.ErrorIs(t, err, context.Canceled)
}
