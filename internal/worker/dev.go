package worker

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"

	"github.com/alicebob/miniredis/v2"

	"github.com/meetops/meetops/internal/api"
	"github.com/meetops/meetops/internal/apiclient"
	"github.com/meetops/meetops/internal/cloudsim"
	"github.com/meetops/meetops/internal/httpguard"
	"github.com/meetops/meetops/internal/redisconf"
	"github.com/meetops/meetops/internal/tasks"
)

// devRateLimit is the dev mode's limit for every group not configured
// otherwise: fast enough that the example batch finishes in seconds, slow
// enough that the pacing shows.
const devRateLimit = "20/s"

// Dev is the running dev-mode environment: an embedded Redis (unless
// REDIS_URL was given), the cloud simulator seeded with its demo state, and
// a token for the HTTP API, which the worker then serves under /v1/.
type Dev struct {
	// Sim is the in-process simulator.
	Sim *cloudsim.Sim
	// SimURL is where the simulator listens.
	SimURL string
	// RedisURL is the URL of the embedded Redis ("" when Redis was
	// configured).
	RedisURL string
	// Token is the dev token of the HTTP API (scope admin), new at every
	// start; "" when HTTP_ADDR is off.
	Token string

	redis *miniredis.Miniredis
	http  *http.Server
}

// StartDev starts the dev environment and returns cfg wired to it:
// endpoints and credentials point at the simulator, Redis at the embedded
// server on 127.0.0.1:6379 (a free port when that one is taken) unless
// Redis is configured, and the HTTP server mounts the HTTP API with a
// random dev token (scope admin). It prints a banner to out, with the dev
// token and a curl line that works as pasted; it never shows a password.
func StartDev(cfg Config, out io.Writer) (Config, *Dev, error) {
	d := &Dev{}
	if cfg.Redis.URL == "" && cfg.Redis.Topology() == redisconf.Single {
		m := miniredis.NewMiniRedis()
		if err := m.StartAddr("127.0.0.1:6379"); err != nil {
			if err := m.StartAddr("127.0.0.1:0"); err != nil {
				return cfg, nil, fmt.Errorf("dev: start embedded Redis: %w", err)
			}
		}
		d.redis = m
		cfg.Redis.URL = "redis://" + m.Addr() + "/0"
		cfg.embeddedRedis = true
	}
	if d.redis != nil {
		d.RedisURL = cfg.Redis.URL
	}

	d.Sim = cloudsim.New(cloudsim.Options{})
	d.Sim.Demo()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		d.Close()
		return cfg, nil, fmt.Errorf("dev: listen for the simulator: %w", err)
	}
	d.SimURL = "http://" + ln.Addr().String()
	d.http = httpguard.Server(d.Sim, httpguard.Options{})
	go func() {
		if err := d.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(out, "dev: simulator stopped: %v\n", err)
		}
	}()

	creds := cloudsim.DemoCredentials()
	cfg.API = apiclient.Config{
		RTCEndpoint: d.SimURL, IAMEndpoint: d.SimURL, MeetingEndpoint: d.SimURL,
		RTCAK: creds.AK, RTCSK: creds.SK, RTCProjectID: creds.ProjectID,
		MeetingAppID: creds.AppID, MeetingAppKey: creds.AppKey, MeetingUserID: creds.UserID, MeetingCorpID: creds.CorpID,
		Timeout: cfg.API.Timeout,
	}
	if cfg.RateLimits == nil {
		cfg.RateLimits = map[string]string{}
	}
	for _, g := range tasks.Groups {
		if _, ok := cfg.RateLimits[g]; !ok {
			cfg.RateLimits[g] = devRateLimit
		}
	}
	httpAddr := cfg.HTTPAddr
	if httpAddr == "" {
		httpAddr = DefaultHTTPAddr
	}
	apiLines := "  HTTP API:   off (HTTP_ADDR=off)\n"
	if httpAddr != "off" {
		secret, tok, err := api.NewToken("dev", api.ScopeAdmin)
		if err != nil {
			d.Close()
			return cfg, nil, fmt.Errorf("dev: API token: %w", err)
		}
		d.Token = secret
		cfg.apiTokens = []api.Token{tok}
		base := "http://" + httpAddr
		apiLines = fmt.Sprintf(`  HTTP API:   %s/v1/  (docs: %s/v1/openapi.yaml)
  Dev token:  %s  (scope admin; a new one at every start)
    curl -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' -d '{"op":"dismiss","app_id":"demo-app","room_id":"room-001"}' %s/v1/operations
    export API=%s TOKEN=%s ADMIN_TOKEN=%s   # for the README's API examples
`, base, base, secret, secret, base, base, secret, secret)
	}
	embedded := "embedded (miniredis, in memory: nothing survives a restart)"
	export := "export REDIS_URL=" + cfg.Redis.URL
	if d.redis == nil {
		embedded = "as configured"
		// Never print a password: point at the configuration instead.
		export = "# use the same REDIS_URL / REDIS_CLUSTER_ADDRS / REDIS_SENTINEL_* as this worker"
		if cfg.Redis.Topology() == redisconf.Single && redisconf.Redact(cfg.Redis.URL) == cfg.Redis.URL {
			export = "export REDIS_URL=" + cfg.Redis.URL
		}
	}
	fmt.Fprintf(out, `
================================================================
  meetops DEV MODE: not for production.
  Redis:      %s  (%s)
  Simulator:  %s  (demo state; see internal/cloudsim/README.md)
  Dashboard:  http://%s/monitoring
  Metrics:    http://%s/metrics
%s
  Enqueue from another terminal:
    %s
    go run ./cmd/enqueue dismiss --app-id demo-app --room-id room-001
    go run ./cmd/enqueue bulk examples/ops.jsonl
================================================================

`, cfg.Redis, embedded, d.SimURL, httpAddr, httpAddr, apiLines, export)
	return cfg, d, nil
}

// Close stops the simulator and the embedded Redis.
func (d *Dev) Close() {
	if d.http != nil {
		_ = d.http.Close()
	}
	if d.redis != nil {
		d.redis.Close()
	}
}
