package reliability_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops"
	"github.com/meetops/meetops/internal/callback"
	"github.com/meetops/meetops/internal/proctest"
	"github.com/meetops/meetops/internal/redistest"
	"github.com/meetops/meetops/internal/reliability"
)

// hookReceiver is a callback endpoint: it answers 503 to the first fail
// attempts of every delivery, then 200, and counts attempts and
// acknowledgements by Meetops-Delivery, checking each signature.
type hookReceiver struct {
	secret []byte
	fail   int
	mu     sync.Mutex
	tries  map[string]int
	acked  map[string]int
	badSig int
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	id := r.Header.Get(callback.DeliveryHeader)
	h.mu.Lock()
	defer h.mu.Unlock()
	if callback.Verify(h.secret, r.Header.Get(callback.SignatureHeader), body, time.Now()) != nil {
		h.badSig++
	}
	h.tries[id]++
	if h.tries[id] <= h.fail {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	h.acked[id]++
}

func (h *hookReceiver) counts() (tries, acked map[string]int, badSig int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return maps.Clone(h.tries), maps.Clone(h.acked), h.badSig
}

// Scenario 20. A bulk file of 1,000 dismissals (20 of them to rooms that do
// not exist: dead letters) runs as a batch with a callback URL whose
// receiver answers 503 twice per delivery. The worker is SIGKILLed a
// quarter of the way in and replaced; the batch's counts always sum to its
// total, end exact (980 succeeded, 20 dead, less any missing room whose
// attempt the SIGKILL cut short: its retry's 404 is already done), and the completion is
// delivered once (after the two 503s), signed. A rerun of the file is a new
// batch whose members are the finished tasks: complete at once, same
// counts. Requeueing the dead letters makes both batches incomplete again,
// then complete a second time — a second delivery — and purging them
// changes no count.
func TestBatchCountsStayExact(t *testing.T) {
	t.Parallel()
	row := report(t, "20 batch counts (SIGKILL, rerun, requeue, purge)")
	const n, dead = 1000, 20
	r := proctest.NewRig(t, redistest.Options{AppendFsyncAlways: true}, "-log-size", "16")
	r.Sim.SetFaults(t, `{"dismiss": {"latency": "5ms"}}`)
	rcv := &hookReceiver{secret: []byte("cb-secret"), fail: 2, tries: map[string]int{}, acked: map[string]int{}}
	hook := httptest.NewServer(rcv)
	t.Cleanup(hook.Close)
	cb := []string{"CALLBACK_ALLOW_HOSTS=127.0.0.1", "CALLBACK_SECRET=cb-secret"}
	env := r.WorkerEnv(append([]string{"RATELIMIT_RTC_ROOMS=off", "LOG_LEVEL=warn", "RECOVER_INTERVAL=1s"}, cb...)...)

	var b strings.Builder
	for i := range n {
		if i%(n/dead) == n/dead-1 {
			fmt.Fprintf(&b, `{"op":"dismiss","app_id":"demo-app","room_id":"gone-%04d"}`+"\n", i)
		} else {
			fmt.Fprintf(&b, `{"op":"dismiss","app_id":"demo-app-bulk","room_id":"batch-%04d"}`+"\n", i)
		}
	}
	file := filepath.Join(t.TempDir(), "rooms.jsonl")
	require.NoError(t, os.WriteFile(file, []byte(b.String()), 0o600))
	bulk := func(args ...string) string {
		t.Helper()
		// stdout alone is the JSON summary; stderr may warn (before the
		// workers start, no running worker serves the queue).
		res := r.RunCLI(t, cb, append([]string{"bulk", file, "-o", "json"}, args...)...)
		require.Equal(t, 0, res.Code, res.Stdout+res.Stderr)
		var sum struct {
			BatchID string `json:"batch_id"`
		}
		require.NoError(t, json.Unmarshal([]byte(res.Stdout), &sum), res.Stdout+res.Stderr)
		return sum.BatchID
	}
	client, err := meetops.NewClient(r.RedisURL)
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Close() })
	ctx := context.Background()
	samples := 0
	progress := func(id string) meetops.BatchProgress {
		t.Helper()
		p, err := client.Batch(ctx, id)
		require.NoError(t, err)
		samples++
		require.Equal(t, p.Total, p.Pending+p.Succeeded+p.AlreadyDone+p.Dead, "the counts sum to the total: %+v", p)
		return p
	}
	waitComplete := func(id string, completions int) meetops.BatchProgress {
		t.Helper()
		var p meetops.BatchProgress
		require.True(t, proctest.Poll(3*time.Minute, 20*time.Millisecond, func() bool {
			p = progress(id)
			return p.Complete && p.Completions == completions
		}), "batch %s completes (completion %d): %+v", id, completions, p)
		return p
	}

	first := bulk("--callback-url", hook.URL+"/hooks/meetops")
	w1 := proctest.StartWorker(t, env)
	require.True(t, proctest.Poll(2*time.Minute, 10*time.Millisecond, func() bool {
		p := progress(first)
		return p.Succeeded+p.Dead >= n/4
	}))
	w1.Kill()
	killed := progress(first)
	require.False(t, killed.Complete)
	w2 := proctest.StartWorker(t, env)
	p := waitComplete(first, 1)
	require.Equal(t, []int{n, 0}, []int{p.Total, p.Pending})
	requireMembersMatchTasks(t, ctx, client, first)
	duplicated := 0
	for k, effects := range r.Sim.Stats(t).Effects {
		if strings.HasPrefix(k, "dismiss:demo-app-bulk/") && effects > 1 {
			duplicated++
		}
	}
	require.Zero(t, duplicated, "no room dismissed twice")

	second := bulk() // a rerun: every line a duplicate of a finished task
	q := waitComplete(second, 1)
	require.Equal(t, []int{p.Total, p.Succeeded, p.AlreadyDone, p.Dead}, []int{q.Total, q.Succeeded, q.AlreadyDone, q.Dead},
		"a rerun's batch is its tasks, finished")

	// A missing room dead-letters on a first attempt; one whose attempt the
	// SIGKILL cut short (it may have reached upstream) counts its 404 as
	// already done on the retry. So the dead letters are the 20, less any
	// of those.
	require.LessOrEqual(t, p.Dead, dead, "%+v", p)
	require.GreaterOrEqual(t, p.Dead+p.AlreadyDone, dead, "every missing room is dead or, cut short, already done: %+v", p)
	requeue := proctest.Start(t, proctest.Bin(t, "enqueue"), nil, "dead", "requeue", "--all", "--redis-url", r.RedisURL)
	_, exited := requeue.Wait(time.Minute)
	require.True(t, exited)
	require.Contains(t, requeue.Output(), fmt.Sprintf("requeued %d dead letters", p.Dead))
	again := progress(first)
	require.False(t, again.Complete && again.Completions == 1, "incomplete again, or already complete a second time")
	waitComplete(first, 2)
	waitComplete(second, 2)
	requireMembersMatchTasks(t, ctx, client, first)
	requireMembersMatchTasks(t, ctx, client, second)

	purge := proctest.Start(t, proctest.Bin(t, "enqueue"), nil, "dead", "purge", "--all", "--yes", "--redis-url", r.RedisURL)
	_, exited = purge.Wait(time.Minute)
	require.True(t, exited)
	require.Equal(t, p.Dead, progress(first).Dead, "a purged dead letter stays dead in its batches")

	// The deliveries: the first batch's two completions, each acknowledged
	// once after two 503s; signed.
	var tries, acked map[string]int
	var badSig int
	require.True(t, proctest.Poll(time.Minute, 20*time.Millisecond, func() bool {
		tries, acked, badSig = rcv.counts()
		return len(acked) == 2
	}), "both completions delivered: %v", acked)
	for _, k := range []int{1, 2} {
		id := callback.DeliveryID(first, k)
		require.Equal(t, 1, acked[id], "delivery %s acknowledged once", id)
		require.Equal(t, 3, tries[id], "delivery %s: two 503s, then the one that counts", id)
	}
	require.Zero(t, badSig)
	require.NoError(t, w2.Signal(os.Interrupt))
	*row = reliability.Row{Scenario: row.Scenario, Tasks: 2 * n, Lost: 0, Duplicated: duplicated,
		UpstreamCalls: proctest.Calls(r.Sim.Stats(t)), Time: time.Since(r.Started),
		Note: fmt.Sprintf("%d progress reads, all summing to total; exact after SIGKILL at %d done; 2 completions → 2 deliveries (after 2×503 each)",
			samples, killed.Succeeded+killed.Dead)}
}

// requireMembersMatchTasks checks that every member of batch id is in the
// state its task ended in (the outcome in its result, or a dead letter
// with its reason), and that the counts are those states counted.
func requireMembersMatchTasks(t *testing.T, ctx context.Context, c *meetops.Client, id string) {
	t.Helper()
	var want [4]int
	require.NoError(t, c.BatchMembers(ctx, id, func(m meetops.BatchMember) error {
		st, err := c.Status(ctx, m.Key)
		require.NoError(t, err, m.Key)
		var res struct {
			Outcome string `json:"outcome"`
			Reason  string `json:"reason"`
		}
		require.NoError(t, json.Unmarshal(st.Result, &res), "%s: %s", m.Key, st.Result)
		switch res.Outcome {
		case "succeeded":
			require.Equal(t, meetops.MemberSucceeded, m.State, m.Key)
			want[1]++
		case "already_done":
			require.Equal(t, meetops.MemberAlreadyDone, m.State, m.Key)
			want[2]++
		case "dead_letter":
			require.Equal(t, meetops.MemberDead, m.State.Kind(), m.Key)
			require.Equal(t, res.Reason, m.State.Reason(), m.Key)
			want[3]++
		default:
			t.Fatalf("member %s: task not finished: %s %s", m.Key, st.State, st.Result)
		}
		return nil
	}))
	p, err := c.Batch(ctx, id)
	require.NoError(t, err)
	require.Equal(t, want, [4]int{p.Pending, p.Succeeded, p.AlreadyDone, p.Dead}, "the counts are the members' states counted")
}

// The README's walk-through: enqueue bulk examples/ops.jsonl --wait against
// worker -dev ends with exit 4 and lists the example's dead letters by
// line.
func TestBulkWaitAgainstDevWorker(t *testing.T) {
	t.Parallel()
	httpAddr := proctest.FreeAddr(t)
	dev := proctest.Start(t, proctest.Bin(t, "worker"), []string{"HTTP_ADDR=" + httpAddr}, "-dev")
	line := dev.WaitLine(t, "export REDIS_URL=", 30*time.Second)
	redisURL := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "export REDIS_URL="))
	proctest.WaitHTTP(t, "http://"+httpAddr+"/readyz", 30*time.Second)

	examples := filepath.Join(proctest.ModuleRoot(), "examples", "ops.jsonl")
	cli := proctest.Start(t, proctest.Bin(t, "enqueue"), []string{"REDIS_URL=" + redisURL}, "bulk", examples, "--wait")
	_, exited := cli.Wait(3 * time.Minute)
	require.True(t, exited, cli.Output())
	code, _ := cli.ExitCode()
	require.Equal(t, 4, code, cli.Output())
	deadLine := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(examples) + `:(\d+): \S+: dead letter \((http_4xx|auth|invalid_payload|retries_exhausted)\)$`)
	require.Len(t, deadLine.FindAllString(cli.Output(), -1), 12, "the example's 12 dead letters, each by line:\n%s", cli.Output())
	require.Contains(t, cli.Output(), "12 of 104 dead", "106 lines, two of them the same operation as another")
}
