package api_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops"
	"github.com/meetops/meetops/internal/api"
	"github.com/meetops/meetops/internal/api/apitest"
	"github.com/meetops/meetops/internal/httpguard"
	"github.com/meetops/meetops/internal/ratelimit"
	"github.com/meetops/meetops/internal/redistest"
	"github.com/meetops/meetops/internal/syncbuf"
)

func TestMain(m *testing.M) {
	redis.SetLogger(quiet{}) // go-redis's dial errors while a test stops Redis
	redistest.Main(m)
}

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

// rig is an API server on a real HTTP listener and a private Redis
// database, with a client whose every exchange is checked against the
// OpenAPI document.
type rig struct {
	t        *testing.T
	url      string
	http     *http.Client
	producer *meetops.Client
	rdb      *redis.Client
	reg      *prometheus.Registry
	logs     *syncbuf.Buffer
	// secrets are the tokens by name: "svc" (enqueue), "ops" (admin).
	secrets map[string]string
}

type rigOption func(*rigConfig)

type rigConfig struct {
	redisURL  string
	rateLimit ratelimit.Limit
	client    []meetops.ClientOption
}

func withRedis(url string) rigOption { return func(c *rigConfig) { c.redisURL = url } }
func withRateLimit(l ratelimit.Limit) rigOption {
	return func(c *rigConfig) { c.rateLimit = l }
}
func withClientOptions(o ...meetops.ClientOption) rigOption {
	return func(c *rigConfig) { c.client = append(c.client, o...) }
}

func newRig(t *testing.T, opts ...rigOption) *rig {
	t.Helper()
	var cfg rigConfig
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.redisURL == "" {
		cfg.redisURL = redistest.URL(t)
	}
	producer, err := meetops.NewClient(cfg.redisURL, cfg.client...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = producer.Close() })
	ro, err := redis.ParseURL(cfg.redisURL)
	require.NoError(t, err)
	rdb := redis.NewClient(ro)
	t.Cleanup(func() { _ = rdb.Close() })

	r := &rig{t: t, producer: producer, rdb: rdb, reg: prometheus.NewRegistry(), logs: &syncbuf.Buffer{}, secrets: map[string]string{}}
	var tokens []api.Token
	for name, scope := range map[string]api.Scope{"svc": api.ScopeEnqueue, "ops": api.ScopeAdmin} {
		secret, tok, err := api.NewToken(name, scope)
		require.NoError(t, err)
		r.secrets[name] = secret
		tokens = append(tokens, tok)
	}
	s, err := api.New(api.Options{
		Producer: producer, Tokens: tokens, RateLimit: cfg.rateLimit,
		Logger:     slog.New(slog.NewJSONHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Registerer: r.reg, Gatherer: r.reg,
	})
	require.NoError(t, err)
	t.Cleanup(s.Close)
	srv := httptest.NewUnstartedServer(nil)
	srv.Config = httpguard.Server(s.Handler(), httpguard.Options{MaxBodyBytes: -1})
	srv.Start()
	t.Cleanup(srv.Close)
	r.url = srv.URL
	r.http = apitest.Load(t).Client(t)
	return r
}

// with returns r for the subtest t: its checks and failures are t's.
func (r *rig) with(t *testing.T) *rig {
	c := *r
	c.t, c.http = t, apitest.Load(t).Client(t)
	return &c
}

// answer is an HTTP answer, read.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// json decodes the answer's body into a map.
func (a answer) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(a.body, &m), "%s", a.body)
	return m
}

// problem decodes a problem answer and checks its shape.
func (a answer) problem(t *testing.T, status int, typ string) api.Problem {
	t.Helper()
	require.Equal(t, status, a.status, "%s", a.body)
	require.Equal(t, "application/problem+json", a.header.Get("Content-Type"))
	var p api.Problem
	require.NoError(t, json.Unmarshal(a.body, &p))
	require.Equal(t, typ, p.Type, "%s", a.body)
	require.Equal(t, status, p.Status)
	require.NotEmpty(t, p.Title)
	require.NotEmpty(t, p.Detail)
	return p
}

// req describes one request.
type req struct {
	method, path string
	token        string // a name in secrets, a literal "Bearer …" header when it has a space, or "" for none
	ctype        string
	body         string
	header       map[string]string
	// invalid: the document forbids the request (see apitest.Invalid);
	// beyond: in words its validator cannot check (apitest.Beyond).
	invalid, beyond bool
	// reader, when set, is the body, sent without a length (chunked).
	reader io.Reader
}

func (r *rig) do(q req) answer {
	r.t.Helper()
	var body io.Reader = strings.NewReader(q.body)
	if q.reader != nil {
		body = q.reader
	} else if q.body == "" {
		body = nil
	}
	hr, err := http.NewRequest(q.method, r.url+q.path, body)
	require.NoError(r.t, err)
	if q.reader != nil {
		hr.ContentLength = -1
	}
	switch {
	case q.token == "":
	case strings.Contains(q.token, " "):
		hr.Header.Set("Authorization", q.token)
	default:
		secret, ok := r.secrets[q.token]
		require.True(r.t, ok, q.token)
		hr.Header.Set("Authorization", "Bearer "+secret)
	}
	if q.ctype != "" {
		hr.Header.Set("Content-Type", q.ctype)
	}
	for k, v := range q.header {
		hr.Header.Set(k, v)
	}
	if q.invalid {
		hr = apitest.Invalid(hr)
	}
	if q.beyond {
		hr = apitest.Beyond(hr)
	}
	resp, err := r.http.Do(hr)
	require.NoError(r.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(r.t, err)
	return answer{status: resp.StatusCode, header: resp.Header, body: b}
}

// post sends a JSON body with the "svc" token.
func (r *rig) post(path, body string) answer {
	r.t.Helper()
	return r.do(req{method: http.MethodPost, path: path, token: "svc", ctype: "application/json", body: body})
}

// get sends a GET with token.
func (r *rig) get(path, token string) answer {
	r.t.Helper()
	return r.do(req{method: http.MethodGet, path: path, token: token})
}

// logLines returns the access log lines so far, decoded.
func (r *rig) logLines() []map[string]any {
	r.t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(r.logs.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		require.NoError(r.t, json.Unmarshal([]byte(line), &m), line)
		out = append(out, m)
	}
	return out
}
