// Package worker assembles the meetops worker process: configuration from
// flags and environment, the asynq server with the task handler, prompt
// recovery of a dead worker's tasks, the HTTP server for health, metrics
// and the dashboard, and the zero-configuration dev mode.
package worker

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/meetops/meetops/internal/api"
	"github.com/meetops/meetops/internal/apiclient"
	"github.com/meetops/meetops/internal/breaker"
	"github.com/meetops/meetops/internal/httpguard"
	"github.com/meetops/meetops/internal/ratelimit"
	"github.com/meetops/meetops/internal/redisconf"
	"github.com/meetops/meetops/internal/tasks"
)

// Config is the worker's configuration. Zero values mean defaults, noted on
// each field. Every field has an environment variable (its name in
// brackets) and, except secrets, a flag; see Load and the settings table.
type Config struct {
	// Redis is the Redis topology [REDIS_URL, REDIS_CLUSTER_ADDRS,
	// REDIS_SENTINEL_ADDRS, REDIS_SENTINEL_MASTER, REDIS_SENTINEL_PASSWORD,
	// REDIS_ACK_REPLICAS], the one setting every meetops process shares;
	// its zero value is one Redis at redis://127.0.0.1:6379/0 (see
	// redisconf.Config).
	Redis redisconf.Config

	// API configures the upstream client: endpoints and credentials
	// [RTC_ENDPOINT, RTC_AK, RTC_SK, RTC_PROJECT_ID, IAM_*, MEETING_*] and
	// the per-request timeout [UPSTREAM_TIMEOUT]; its zero values are
	// apiclient's defaults. The credentials choose the modes (see
	// apiclient.Config).
	API apiclient.Config

	// AuthRejectCount [AUTH_REJECT_COUNT] and AuthRejectWindow
	// [AUTH_REJECT_WINDOW] say when refused logins (a 401 or 403 from the
	// IAM, App ID, account or control-token login itself) reject a
	// credential: after at least AuthRejectCount refusals in a row, the
	// first AuthRejectWindow or more before the last, with no successful
	// login between; default 3 and 2m. Until then a failed login (refused,
	// 5xx or timeout) is retried with backoff (1 s doubling to 30 s) and
	// the tasks waiting for it are deferred without spending a retry; once
	// rejected they dead-letter with reason auth and /readyz is not ready.
	// AuthRetryInterval [AUTH_RETRY_INTERVAL] is how often a rejected
	// credential is tried again, its secret re-read from its NAME_FILE;
	// default 30s. A successful login ends the rejection.
	AuthRejectCount                     int
	AuthRejectWindow, AuthRetryInterval time.Duration

	// Concurrency [WORKER_CONCURRENCY] is how many tasks run at once;
	// default 50.
	Concurrency int
	// Processors [WORKER_PROCESSORS] is how many asynq processors share
	// Concurrency: each fetches its tasks from Redis one at a time, so one
	// alone caps a busy worker's throughput at one dequeue round trip per
	// task; default 2 (at most Concurrency). Each shows as a server in the
	// dashboard.
	Processors int
	// Queues [WORKER_QUEUES] are weighted queues, "critical=6,default=3,low=1";
	// default {"default": 1}.
	Queues map[string]int
	// HTTPAddr [HTTP_ADDR] serves /metrics, /healthz, /readyz and
	// /monitoring; default 127.0.0.1:8080. "off" disables it. An address
	// that is not loopback needs dashboard auth or DashboardInsecure.
	HTTPAddr string
	// DedupWindow [DEDUP_WINDOW] is how long ledger entries live; default
	// tasks.DefaultDedupWindow (24h).
	DedupWindow time.Duration
	// ShutdownTimeout [SHUTDOWN_TIMEOUT] is how long running tasks get on
	// SIGTERM; default 10s.
	ShutdownTimeout time.Duration
	// TaskCheckInterval [TASK_CHECK_INTERVAL] is how often an idle worker
	// polls for new tasks; default 1s (asynq's).
	TaskCheckInterval time.Duration
	// DelayedTaskCheckInterval [DELAYED_TASK_CHECK_INTERVAL] is how often
	// scheduled and retry tasks are moved to pending; default 1s.
	DelayedTaskCheckInterval time.Duration
	// RecoverInterval [RECOVER_INTERVAL] is how often the worker looks for
	// tasks of workers that died; default 5s. RecoverGrace [RECOVER_GRACE]
	// is how long after their asynq lease expired they are requeued;
	// default 5s (see orphans.go).
	RecoverInterval, RecoverGrace time.Duration
	// DeadLetterMaxLen [DEAD_LETTER_MAX] caps meetops' dead-letter store;
	// default 0, no cap.
	DeadLetterMaxLen int64
	// RateLimits [RATELIMIT_RTC_ROOMS, RATELIMIT_RTC_APPS,
	// RATELIMIT_MEETING_MGMT, RATELIMIT_MEETING_CONTROL,
	// RATELIMIT_MEETING_VMR] by group (tasks.Groups): "60/m", "10/s" or
	// "off"; unset groups take ratelimit.Defaults.
	RateLimits map[string]string
	// BreakerOff [BREAKER=off] turns the circuit breakers off; default on
	// (BREAKER=on): one per rate-limit group, shared through Redis, that
	// stops a failing group's calls but one probe per interval.
	BreakerOff bool
	// Breaker tunes them; zero values are breaker's defaults:
	// Threshold [BREAKER_THRESHOLD], the percentage of attempts failed
	// transiently that opens it, default 50 (1-100); MinAttempts
	// [BREAKER_MIN_ATTEMPTS], the attempts the window needs before the
	// ratio counts, default 20; Window [BREAKER_WINDOW], how far back
	// attempts count, default 10s (at least 100ms); ProbeInterval
	// [BREAKER_PROBE_INTERVAL], one probe per this across the fleet while
	// open, default 5s (at least 10ms); CloseAfter [BREAKER_CLOSE_AFTER],
	// probe successes in a row that close it, default 3.
	Breaker breaker.Settings

	// CallbackAllowHosts [CALLBACK_ALLOW_HOSTS] are the hosts batch
	// completion callbacks may go to (host names or IP literals, no
	// ports), checked again at delivery; empty: none (a batch with a
	// callback URL is refused at enqueue by producers with the same
	// setting). CallbackSecret [CALLBACK_SECRET, secret] signs the
	// deliveries; required with CallbackAllowHosts. CallbackQueue
	// [CALLBACK_QUEUE] is the queue deliveries go to; default "default".
	CallbackAllowHosts []string
	CallbackSecret     string
	CallbackQueue      string

	// DashboardWrite [DASHBOARD_WRITE=1] lets the dashboard change tasks;
	// default read-only. It needs DashboardUser and DashboardPassword,
	// whatever DashboardInsecure says.
	DashboardWrite bool
	// DashboardUser [DASHBOARD_USER] and DashboardPassword
	// [DASHBOARD_PASSWORD, secret] turn on basic auth for /monitoring.
	DashboardUser, DashboardPassword string
	// DashboardInsecure [DASHBOARD_INSECURE=1] lets a worker whose HTTPAddr
	// is not loopback serve /monitoring (task payloads and results)
	// without auth, logged at warn on every start; without it, that is a
	// start-up error. Default false.
	DashboardInsecure bool
	// DashboardHosts [DASHBOARD_HOSTS], comma-separated host names, are
	// the names the HTTP server answers to besides localhost, IP literals
	// and HTTPAddr's host; any other Host header gets 421, except on
	// /healthz and /readyz (DNS-rebinding protection, httpguard.Hosts).
	// Default none.
	DashboardHosts []string

	// LogLevel [LOG_LEVEL]: debug, info, warn, error; default info.
	LogLevel string
	// LogFormat [LOG_FORMAT]: json or console; default json, console when
	// stderr is a terminal.
	LogFormat string

	// Dev [-dev] runs the zero-configuration dev mode: embedded Redis and
	// the simulator.
	Dev bool

	// embeddedRedis is set by StartDev when Redis is the in-memory
	// miniredis, whose lack of persistence the banner already announces.
	embeddedRedis bool
	// apiTokens, set by StartDev (its dev token), mount the HTTP producer
	// API under /v1/ on the HTTP server.
	apiTokens []api.Token
	// warnings are problems Load found that do not stop the worker (a
	// secret file others can read); Main logs them.
	warnings []string
	// httpLimits are the HTTP server's timeouts and size limits; zero
	// values are httpguard's defaults. Tests shorten them.
	httpLimits httpguard.Options
	// secretFiles are the NAME_FILE paths Load read secrets from, by
	// variable (MEETING_APP_KEY → its file), for re-reading a rotated
	// secret after a refused login.
	secretFiles map[string]string
}

// Warnings returns what Load found worth a warning but not an error.
func (c Config) Warnings() []string { return c.warnings }

// Defaults.
const (
	DefaultConcurrency     = 50
	DefaultProcessors      = 2
	DefaultHTTPAddr        = "127.0.0.1:8080"
	DefaultShutdownTimeout = 10 * time.Second
)

// WithDefaults returns c with zero values replaced by their defaults.
func (c Config) WithDefaults() Config {
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.Processors == 0 {
		c.Processors = min(DefaultProcessors, max(c.Concurrency, 1))
	}
	if len(c.Queues) == 0 {
		c.Queues = map[string]int{tasks.DefaultQueue: 1}
	}
	if c.HTTPAddr == "" {
		c.HTTPAddr = DefaultHTTPAddr
	}
	if c.DedupWindow == 0 {
		c.DedupWindow = tasks.DefaultDedupWindow
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.TaskCheckInterval == 0 {
		c.TaskCheckInterval = time.Second
	}
	if c.DelayedTaskCheckInterval == 0 {
		c.DelayedTaskCheckInterval = time.Second
	}
	if c.LogLevel == "" {
		c.LogLevel = "info"
	}
	if c.RecoverInterval == 0 {
		c.RecoverInterval = DefaultRecoverInterval
	}
	if c.RecoverGrace == 0 {
		c.RecoverGrace = DefaultRecoverGrace
	}
	c.Breaker = c.Breaker.WithDefaults()
	return c
}

// Validate reports every problem in c (after WithDefaults), one per line,
// each naming the environment variable to fix, so a misconfigured worker
// fails at start-up, never at its first task.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if err := c.Redis.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.API.RTCAK == "" && c.API.IAMUser == "" {
		add("RTC credentials: set RTC_AK/RTC_SK/RTC_PROJECT_ID (AK/SK) or IAM_USER/IAM_PASSWORD/IAM_DOMAIN/IAM_PROJECT_ID (token)")
	}
	if c.API.MeetingAppID == "" && c.API.MeetingAccount == "" {
		add("Meeting credentials: set MEETING_APP_ID/MEETING_APP_KEY (App ID) or MEETING_ACCOUNT/MEETING_PASSWORD (account)")
	}
	if err := c.API.Validate(apiEnvName); err != nil {
		errs = append(errs, err)
	}
	if c.Concurrency < 1 {
		add("WORKER_CONCURRENCY: must be at least 1")
	}
	if c.Processors < 1 || c.Processors > max(c.Concurrency, 1) {
		add("WORKER_PROCESSORS: must be between 1 and WORKER_CONCURRENCY (%d), got %d", c.Concurrency, c.Processors)
	}
	if c.AuthRejectCount < 0 {
		add("AUTH_REJECT_COUNT: must be at least 1 (0: the default, 3), got %d", c.AuthRejectCount)
	}
	if c.AuthRejectWindow < 0 {
		add("AUTH_REJECT_WINDOW: must not be negative, got %s", c.AuthRejectWindow)
	}
	if c.AuthRetryInterval < 0 {
		add("AUTH_RETRY_INTERVAL: must not be negative, got %s", c.AuthRetryInterval)
	}
	if _, err := zerolog.ParseLevel(c.LogLevel); err != nil || c.LogLevel == "" {
		add("LOG_LEVEL: want debug, info, warn or error, got %q", c.LogLevel)
	}
	if c.LogFormat != "" && c.LogFormat != "json" && c.LogFormat != "console" {
		add("LOG_FORMAT: want json or console, got %q", c.LogFormat)
	}
	if len(c.CallbackAllowHosts) > 0 && c.CallbackSecret == "" {
		add("CALLBACK_SECRET: required with CALLBACK_ALLOW_HOSTS (it signs the callbacks)")
	}
	if c.CallbackQueue != "" {
		if err := tasks.CheckID(c.CallbackQueue); err != nil {
			add("CALLBACK_QUEUE: %v", err)
		}
	}
	if (c.DashboardUser == "") != (c.DashboardPassword == "") {
		add("DASHBOARD_USER and DASHBOARD_PASSWORD: set both or neither")
	}
	if c.DashboardWrite && !c.dashboardAuth() {
		add("DASHBOARD_WRITE=1 needs dashboard auth: set DASHBOARD_USER and DASHBOARD_PASSWORD (DASHBOARD_INSECURE does not lift this)")
	}
	if c.HTTPAddr != "off" {
		if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
			add("HTTP_ADDR: want host:port or off, got %q", c.HTTPAddr)
		} else if !loopbackAddr(c.HTTPAddr) && !c.dashboardAuth() && !c.DashboardInsecure {
			add("HTTP_ADDR %s is not loopback: set DASHBOARD_USER and DASHBOARD_PASSWORD for /monitoring, or DASHBOARD_INSECURE=1 to serve it without auth", c.HTTPAddr)
		}
	}
	for _, h := range c.DashboardHosts {
		if strings.ContainsAny(h, "/@ \t") {
			add("DASHBOARD_HOSTS: want host names like dash.example.com (no scheme, path or user), got %q", h)
		}
	}
	for group, v := range c.RateLimits {
		if _, err := ratelimit.ParseLimit(v); err != nil {
			add("%s: %v", rateLimitEnv(group), err)
		}
	}
	if b := c.Breaker; b.Threshold < 1 || b.Threshold > 100 {
		add("BREAKER_THRESHOLD: want a percentage from 1 to 100, got %d", b.Threshold)
	}
	if c.Breaker.MinAttempts < 1 {
		add("BREAKER_MIN_ATTEMPTS: must be at least 1, got %d", c.Breaker.MinAttempts)
	}
	if c.Breaker.Window < 100*time.Millisecond {
		add("BREAKER_WINDOW: must be at least 100ms, got %s", c.Breaker.Window)
	}
	if c.Breaker.ProbeInterval < 10*time.Millisecond {
		add("BREAKER_PROBE_INTERVAL: must be at least 10ms, got %s", c.Breaker.ProbeInterval)
	}
	if c.Breaker.CloseAfter < 1 {
		add("BREAKER_CLOSE_AFTER: must be at least 1, got %d", c.Breaker.CloseAfter)
	}
	return errors.Join(errs...)
}

// dashboardAuth reports whether /monitoring is behind basic auth.
func (c Config) dashboardAuth() bool { return c.DashboardUser != "" && c.DashboardPassword != "" }

// insecureDashboard reports whether the dashboard is served without auth
// on an address that is not loopback (allowed by DashboardInsecure only).
func (c Config) insecureDashboard() bool {
	return c.HTTPAddr != "off" && !loopbackAddr(c.HTTPAddr) && !c.dashboardAuth()
}
