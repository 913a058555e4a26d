package bulk_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops"
	"github.com/meetops/meetops/internal/bulk"
	"github.com/meetops/meetops/internal/redistest"
)

// opsReader generates n mixed JSONL lines on the fly, so that a run over
// millions of lines holds none of them in memory but the Reader's.
type opsReader struct {
	n, i int
	buf  []byte
}

func newOpsReader(n int) *opsReader { return &opsReader{n: n} }

func (r *opsReader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		if r.i == r.n {
			return 0, io.EOF
		}
		r.buf = fmt.Appendf(r.buf[:0], "%s\n", opLine(r.i))
		r.i++
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

// opLine returns the i-th line of a mixed workload.
func opLine(i int) string {
	switch i % 5 {
	case 0:
		return fmt.Sprintf(`{"op":"dismiss","app_id":"demo-app-bulk","room_id":"room-%d"}`, i)
	case 1:
		return fmt.Sprintf(`{"op":"disable","app_id":"app-%d"}`, i)
	case 2:
		return fmt.Sprintf(`{"op":"cancel","conference_id":"%d","end_ongoing":true}`, 900000000+i)
	case 3:
		return fmt.Sprintf(`{"op":"hangup","conference_id":"%d","participant_ids":["p-%d","p-%d"]}`, 900000000+i, i, i+1)
	}
	return fmt.Sprintf(`{"op":"reclaim","account":"acct-%d","vmr_ids":["vmr-%d"]}`, i, i)
}

// discard accepts every operation at once.
var discard = enqueuerFunc(func(context.Context, meetops.Op, ...meetops.Option) (meetops.Info, error) {
	return meetops.Info{}, nil
})

// discardBatches accepts every operation at once, in batches.
type discardBatches struct{ enqueuerFunc }

func (discardBatches) EnqueueBatch(_ context.Context, reqs []meetops.Request, _ ...meetops.BatchOption) []meetops.BatchResult {
	return make([]meetops.BatchResult, len(reqs))
}

func BenchmarkValidateJSONL(b *testing.B) {
	b.ReportAllocs()
	s, err := bulk.Validate(context.Background(), bulk.NewJSONL(newOpsReader(b.N)), nil)
	require.NoError(b, err)
	require.Zero(b, s.Invalid)
}

func BenchmarkRunJSONL(b *testing.B) {
	b.ReportAllocs()
	s, err := bulk.Run(context.Background(), bulk.NewJSONL(newOpsReader(b.N)), discard, bulk.Options{Concurrency: 16})
	require.NoError(b, err)
	require.Equal(b, b.N, s.Enqueued)
}

func BenchmarkRunJSONLBatches(b *testing.B) {
	b.ReportAllocs()
	s, err := bulk.Run(context.Background(), bulk.NewJSONL(newOpsReader(b.N)), discardBatches{discard}, bulk.Options{Concurrency: 16})
	require.NoError(b, err)
	require.Equal(b, b.N, s.Enqueued)
}

// The whole enqueue pass against real Redis, through the client's
// pipelined batches: the client's CPU per line (go test -cpuprofile).
func BenchmarkRunJSONLRedis(b *testing.B) {
	c, err := meetops.NewClient(redistest.URL(b))
	require.NoError(b, err)
	defer c.Close()
	b.ReportAllocs()
	b.ResetTimer()
	s, err := bulk.Run(context.Background(), bulk.NewJSONL(newOpsReader(b.N)), c, bulk.Options{Concurrency: 16})
	require.NoError(b, err)
	require.Equal(b, b.N, s.Enqueued)
}

// peakHeap samples the live heap while fn runs and returns the highest
// value seen.
func peakHeap(fn func()) uint64 {
	runtime.GC()
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		var ms runtime.MemStats
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peak.Load() {
				peak.Store(ms.HeapAlloc)
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	})
	fn()
	close(done)
	wg.Wait()
	return peak.Load()
}

// A million lines run in bounded memory: the peak heap of the real code
// path (parse, validate, concurrent enqueue through a bounded channel)
// does not grow with the input. Set BULK_MEMORY_LINES to measure larger
// runs; the default keeps `make test` fast.
func TestRunMemoryIsBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("measures memory over 100,000 lines")
	}
	small, large := 10_000, 100_000
	if n, err := strconv.Atoi(os.Getenv("BULK_MEMORY_LINES")); err == nil && n > small {
		large = n
	}
	measure := func(n int) uint64 {
		return peakHeap(func() {
			s, err := bulk.Run(context.Background(), bulk.NewJSONL(newOpsReader(n)), discard, bulk.Options{Concurrency: 16})
			require.NoError(t, err)
			require.Equal(t, n, s.Enqueued)
		})
	}
	a, b := measure(small), measure(large)
	t.Logf("peak heap: %d lines %.1f MiB, %d lines %.1f MiB", small, float64(a)/(1<<20), large, float64(b)/(1<<20))
	require.Less(t, b, a+16<<20, "ten times the lines must not need much more memory")
	require.Less(t, b, uint64(64<<20))
}
