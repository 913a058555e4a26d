package callback_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/batch"
	"github.com/meetops/meetops/internal/callback"
	"github.com/meetops/meetops/internal/deadletter"
	"github.com/meetops/meetops/internal/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// fakeResolver answers every name with its addresses.
type fakeResolver map[string][]netip.Addr

func (f fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	return f[host], nil
}

func TestPolicy(t *testing.T) {
	t.Parallel()
	ip := netip.MustParseAddr
	p := callback.Policy{
		AllowHosts: []string{"hooks.example.com", "rebind.example.com", "127.0.0.1", "metadata.example.com", "v6.example.com", "10.0.0.7"},
		Resolver: fakeResolver{
			"hooks.example.com":    {ip("93.184.216.34")},
			"rebind.example.com":   {ip("93.184.216.34"), ip("127.0.0.1")},
			"metadata.example.com": {ip("169.254.169.254")},
			"v6.example.com":       {ip("::1")},
		},
	}
	for _, tc := range []struct {
		url, refusal string
	}{
		{"https://hooks.example.com/meetops", ""},
		{"http://hooks.example.com:8443/x?y=1", ""},
		{"http://127.0.0.1:9000/hook", ""}, // an address listed literally
		{"http://10.0.0.7/hook", ""},       // idem, private
		{"https://evil.example.com/", "not in CALLBACK_ALLOW_HOSTS"},
		{"https://rebind.example.com/", "resolves to 127.0.0.1"}, // listed, but not as the literal
		{"https://metadata.example.com/", "resolves to 169.254.169.254"},
		{"https://v6.example.com/", "resolves to ::1"},
		{"http://169.254.169.254/latest/meta-data", "not in CALLBACK_ALLOW_HOSTS"},
		{"http://[::1]:8080/", "not in CALLBACK_ALLOW_HOSTS"},
		{"ftp://hooks.example.com/", "want an http or https URL"},
		{"https://user:pw@hooks.example.com/", "credentials in the URL"},
	} {
		err := p.Check(context.Background(), tc.url)
		if tc.refusal == "" {
			require.NoError(t, err, tc.url)
			continue
		}
		require.ErrorIs(t, err, callback.ErrRefused, tc.url)
		require.ErrorContains(t, err, tc.refusal, tc.url)
	}
	require.ErrorContains(t, callback.Policy{}.Check(context.Background(), "https://hooks.example.com/"), "CALLBACK_ALLOW_HOSTS is empty")

	hosts, err := callback.ParseHosts(" Hooks.Example.com, 10.0.0.7,[::1] ,")
	require.NoError(t, err)
	require.Equal(t, []string{"hooks.example.com", "10.0.0.7", "::1"}, hosts)
	for _, bad := range []string{"hooks.example.com:443", "https://hooks.example.com", "a/b"} {
		_, err := callback.ParseHosts(bad)
		require.Error(t, err, bad)
	}
}

func TestSignAndVerify(t *testing.T) {
	t.Parallel()
	secret, body := []byte("s3cret"), []byte(`{"batch_id":"b_1"}`)
	now := time.Unix(1_800_000_000, 0)
	sig := callback.Sign(secret, now, body)
	require.True(t, strings.HasPrefix(sig, "t=1800000000,v1="))
	require.NoError(t, callback.Verify(secret, sig, body, now.Add(time.Minute)))
	require.ErrorIs(t, callback.Verify(secret, sig, []byte(`{}`), now), callback.ErrBadSignature)
	require.ErrorIs(t, callback.Verify([]byte("other"), sig, body, now), callback.ErrBadSignature)
	require.ErrorIs(t, callback.Verify(secret, sig, body, now.Add(6*time.Minute)), callback.ErrBadSignature, "too old")
	require.ErrorIs(t, callback.Verify(secret, "v1=abc", body, now), callback.ErrBadSignature)
}

// receiver is a callback endpoint that answers from a script and records
// what it received.
type receiver struct {
	mu         sync.Mutex
	script     []int // statuses to answer, then 200
	deliveries []string
	bodies     []string
	sigs       []string
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	status := http.StatusOK
	if len(r.script) > 0 {
		status, r.script = r.script[0], r.script[1:]
	}
	r.deliveries = append(r.deliveries, req.Header.Get(callback.DeliveryHeader))
	r.bodies = append(r.bodies, string(body))
	r.sigs = append(r.sigs, req.Header.Get(callback.SignatureHeader))
	r.mu.Unlock()
	if status == http.StatusFound {
		http.Redirect(w, req, "http://169.254.169.254/latest/meta-data", status)
		return
	}
	w.WriteHeader(status)
}

func (r *receiver) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.deliveries...)
}

type testBundle struct {
	batches *batch.Store
	enq     *callback.Enqueuer
	insp    *asynq.Inspector
	dead    *deadletter.Store
}

// setup runs an asynq server with the delivery handler on a private Redis
// database, with a policy allowing 127.0.0.1 literally.
func setup(t *testing.T, policy callback.Policy) *testBundle {
	t.Helper()
	rdb := redistest.Client(t)
	b := &testBundle{batches: batch.New(rdb, batch.Options{TTL: time.Hour}), insp: asynq.NewInspectorFromRedisClient(rdb),
		dead: deadletter.New(rdb, deadletter.Options{})}
	client := asynq.NewClientFromRedisClient(rdb)
	b.enq = &callback.Enqueuer{Client: client, Batches: b.batches}
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{Concurrency: 2, LogLevel: asynq.FatalLevel,
		TaskCheckInterval: 10 * time.Millisecond, DelayedTaskCheckInterval: 50 * time.Millisecond,
		RetryDelayFunc: func(int, error, *asynq.Task) time.Duration { return 10 * time.Millisecond }})
	mux := asynq.NewServeMux()
	mux.Handle(callback.TaskType, &callback.Handler{Batches: b.batches, Policy: policy, Secret: []byte("s3cret"), DeadLetters: b.dead})
	require.NoError(t, srv.Start(mux))
	t.Cleanup(srv.Shutdown)
	return b
}

// completedBatch returns a sealed, complete batch of one member with the
// callback URL, and its completion.
func (b *testBundle) completedBatch(t *testing.T, url string) batch.Completion {
	t.Helper()
	ctx := context.Background()
	id, err := b.batches.Create(ctx, batch.Spec{Label: "cb", CallbackURL: url})
	require.NoError(t, err)
	_, err = b.batches.Add(ctx, id, []batch.Member{{Key: "k-" + id}})
	require.NoError(t, err)
	_, err = b.batches.Seal(ctx, id)
	require.NoError(t, err)
	done, err := b.batches.Transition(ctx, []string{id}, "k-"+id, batch.Succeeded)
	require.NoError(t, err)
	require.Len(t, done, 1)
	return done[0]
}

// A receiver that answers 503 twice gets the delivery three times and
// acknowledges it once: exactly one successful delivery per completion,
// each attempt with the same Meetops-Delivery (to de-duplicate on), signed.
// Enqueueing the same completion again (a second worker, the sweep)
// delivers nothing more.
func TestDeliveryExactlyOncePerCompletion(t *testing.T) {
	t.Parallel()
	rcv := &receiver{script: []int{503, 503}}
	ts := httptest.NewServer(rcv)
	defer ts.Close()
	b := setup(t, callback.Policy{AllowHosts: []string{"127.0.0.1"}})
	c := b.completedBatch(t, ts.URL+"/hook")
	ctx := context.Background()
	require.NoError(t, b.enq.Completed(ctx, []batch.Completion{c}))
	require.NoError(t, b.enq.Completed(ctx, []batch.Completion{c}), "the same completion again")
	require.NoError(t, b.enq.Sweep(ctx), "nothing due: recorded as sent")

	require.Eventually(t, func() bool {
		info, err := b.insp.GetTaskInfo("default", callback.TaskID(c.BatchID, 1))
		return err == nil && info.State == asynq.TaskStateCompleted
	}, 10*time.Second, 10*time.Millisecond)
	want := callback.DeliveryID(c.BatchID, 1)
	require.Equal(t, []string{want, want, want}, rcv.got(), "two 503s, then the delivery that counts")
	var p batch.Progress
	require.NoError(t, json.Unmarshal([]byte(rcv.bodies[2]), &p))
	require.Equal(t, c.BatchID, p.BatchID)
	require.True(t, p.Complete)
	require.NoError(t, callback.Verify([]byte("s3cret"), rcv.sigs[2], []byte(rcv.bodies[2]), time.Now()))
}

// A crash between the completion and the enqueue of its delivery: the
// sweep finds it owed and delivers it.
func TestSweepDeliversWhatACrashLeftOwed(t *testing.T) {
	t.Parallel()
	rcv := &receiver{}
	ts := httptest.NewServer(rcv)
	defer ts.Close()
	b := setup(t, callback.Policy{AllowHosts: []string{"127.0.0.1"}})
	c := b.completedBatch(t, ts.URL+"/hook") // completed; its worker "died" before enqueueing
	require.NoError(t, b.enq.Sweep(context.Background()))
	require.Eventually(t, func() bool { return len(rcv.got()) == 1 }, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, callback.DeliveryID(c.BatchID, 1), rcv.got()[0])
}

// The worker checks the URL again when it delivers, on the address it
// connects to: a name resolving to 127.0.0.1 (localhost), a link-local
// metadata address and a redirect to it are dead letters, and no request
// is followed to an internal address.
func TestDeliveryRefusesInternalAddresses(t *testing.T) {
	t.Parallel()
	rcv := &receiver{script: []int{http.StatusFound}}
	ts := httptest.NewServer(rcv)
	defer ts.Close()
	port := ts.URL[strings.LastIndex(ts.URL, ":"):]
	b := setup(t, callback.Policy{AllowHosts: []string{"127.0.0.1", "localhost", "[::1]", "::1"}})
	ctx := context.Background()
	for _, tc := range []struct{ url, reason string }{
		{"http://localhost" + port + "/hook", "resolves to 127.0.0.1"},             // a name for loopback, not listed literally
		{"http://169.254.169.254/latest/meta-data", "not in CALLBACK_ALLOW_HOSTS"}, // cloud metadata
		{ts.URL + "/redirect", "redirect, not followed"},                           // 127.0.0.1 is listed; its redirect is not followed
	} {
		c := b.completedBatch(t, tc.url)
		require.NoError(t, b.enq.Completed(ctx, []batch.Completion{c}))
		require.Eventually(t, func() bool {
			info, err := b.insp.GetTaskInfo("default", callback.TaskID(c.BatchID, 1))
			return err == nil && info.State == asynq.TaskStateArchived
		}, 10*time.Second, 10*time.Millisecond, tc.url)
		rec, err := b.dead.Get(ctx, callback.TaskID(c.BatchID, 1))
		require.NoError(t, err, tc.url)
		require.Contains(t, string(rec.Result), tc.reason, tc.url)
	}
	require.Len(t, rcv.got(), 1, "only the redirecting receiver was reached, once, and the redirect not followed")
}
