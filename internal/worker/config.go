// Package worker assembles the meetops worker process: configuration from
// flags and environment, the asynq server with the five handlers, the HTTP
// server for health, metrics and the dashboard, and the zero-configuration
// dev mode.
package worker

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// Config is the worker's configuration. Zero values mean defaults, noted on
// each field. Every field has an environment variable (its name in
// brackets) and, except secrets, a flag.
type Config struct {
	// RedisURL [REDIS_URL] is redis:// or rediss:// (TLS), with password
	// and DB in the URL. Default redis://127.0.0.1:6379/0.
	RedisURL string
	// RedisClusterAddrs [REDIS_CLUSTER_ADDRS], comma-separated host:port,
	// selects Redis Cluster instead of RedisURL.
	RedisClusterAddrs []string

	// RTCEndpoint [RTC_ENDPOINT]; default https://rtc-api.myhuaweicloud.com.
	RTCEndpoint string
	// RTCAK [RTC_AK], RTCSK [RTC_SK, secret], RTCProjectID [RTC_PROJECT_ID]:
	// AK/SK signing, chosen when RTC_AK is set.
	RTCAK, RTCSK, RTCProjectID string
	// IAM token mode, chosen when RTC_AK is empty and IAM_USER is set:
	// IAMEndpoint [IAM_ENDPOINT], IAMUser [IAM_USER], IAMPassword
	// [IAM_PASSWORD, secret], IAMDomain [IAM_DOMAIN], IAMProjectID
	// [IAM_PROJECT_ID].
	IAMEndpoint, IAMUser, IAMPassword, IAMDomain, IAMProjectID string

	// MeetingEndpoint [MEETING_ENDPOINT]; default
	// https://api.meeting.huaweicloud.com.
	MeetingEndpoint string
	// App ID authentication, chosen when MEETING_APP_ID is set:
	// MeetingAppID [MEETING_APP_ID], MeetingAppKey [MEETING_APP_KEY,
	// secret], MeetingUserID [MEETING_USER_ID], MeetingCorpID
	// [MEETING_CORP_ID].
	MeetingAppID, MeetingAppKey, MeetingUserID, MeetingCorpID string
	// Account authentication otherwise: MeetingAccount [MEETING_ACCOUNT],
	// MeetingPassword [MEETING_PASSWORD, secret].
	MeetingAccount, MeetingPassword string

	// Concurrency [WORKER_CONCURRENCY] is how many tasks run at once;
	// default 50.
	Concurrency int
	// Queues [WORKER_QUEUES] are weighted queues, "critical=6,default=3,low=1";
	// default {"default": 1}.
	Queues map[string]int
	// HTTPAddr [HTTP_ADDR] serves /metrics, /healthz, /readyz and
	// /monitoring; default 127.0.0.1:8080. "off" disables it.
	HTTPAddr string
	// DedupWindow [DEDUP_WINDOW] is how long ledger entries live; default 24h.
	DedupWindow time.Duration
	// ShutdownTimeout [SHUTDOWN_TIMEOUT] is how long running tasks get on
	// SIGTERM; default 10s.
	ShutdownTimeout time.Duration
	// UpstreamTimeout [UPSTREAM_TIMEOUT] bounds one upstream request;
	// default 15s.
	UpstreamTimeout time.Duration
	// TaskCheckInterval [TASK_CHECK_INTERVAL] is how often an idle worker
	// polls for new tasks; default 1s (asynq's).
	TaskCheckInterval time.Duration
	// DelayedTaskCheckInterval [DELAYED_TASK_CHECK_INTERVAL] is how often
	// scheduled and retry tasks are moved to pending; default 1s.
	DelayedTaskCheckInterval time.Duration
	// RecoverInterval [RECOVER_INTERVAL] is how often the worker looks for
	// tasks of workers that died; default 5s. RecoverGrace [RECOVER_GRACE]
	// is how long after their asynq lease expired they are requeued;
	// default 5s (see recover.go).
	RecoverInterval, RecoverGrace time.Duration
	// DeadLetterMaxLen [DEAD_LETTER_MAX] caps meetops' dead-letter store;
	// default 0, no cap.
	DeadLetterMaxLen int64
	// RateLimits [RATELIMIT_RTC_ROOMS, RATELIMIT_RTC_APPS,
	// RATELIMIT_MEETING_MGMT, RATELIMIT_MEETING_CONTROL,
	// RATELIMIT_MEETING_VMR] by group: "60/m", "10/s" or "off"; unset
	// groups take their defaults.
	RateLimits map[string]string

	// DashboardWrite [DASHBOARD_WRITE=1] lets the dashboard change tasks;
	// default read-only.
	DashboardWrite bool
	// DashboardUser [DASHBOARD_USER] and DashboardPassword
	// [DASHBOARD_PASSWORD, secret] turn on basic auth for /monitoring.
	DashboardUser, DashboardPassword string

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
}

// setting binds one configuration value to its environment variable and,
// unless it is a secret, a flag.
type setting struct {
	env, flag, usage string
	secret           bool
	set              func(string) error
}

func (c *Config) settings() []setting {
	str := func(p *string) func(string) error { return func(v string) error { *p = v; return nil } }
	dur := func(p *time.Duration) func(string) error {
		return func(v string) error {
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 {
				return fmt.Errorf("want a duration like 30s or 24h, got %q", v)
			}
			*p = d
			return nil
		}
	}
	rate := func(group string) func(string) error {
		return func(v string) error {
			if c.RateLimits == nil {
				c.RateLimits = map[string]string{}
			}
			c.RateLimits[group] = v
			return nil
		}
	}
	return []setting{
		{env: "REDIS_URL", flag: "redis-url", usage: "Redis URL (redis:// or rediss://)", set: str(&c.RedisURL)},
		{env: "REDIS_CLUSTER_ADDRS", flag: "redis-cluster-addrs", usage: "Redis Cluster nodes, comma-separated", set: func(v string) error {
			c.RedisClusterAddrs = splitList(v)
			return nil
		}},
		{env: "RTC_ENDPOINT", flag: "rtc-endpoint", usage: "RTC API endpoint", set: str(&c.RTCEndpoint)},
		{env: "RTC_AK", flag: "rtc-ak", usage: "RTC access key (AK/SK mode)", set: str(&c.RTCAK)},
		{env: "RTC_SK", secret: true, set: str(&c.RTCSK)},
		{env: "RTC_PROJECT_ID", flag: "rtc-project-id", usage: "RTC project ID (AK/SK mode)", set: str(&c.RTCProjectID)},
		{env: "IAM_ENDPOINT", flag: "iam-endpoint", usage: "IAM endpoint (token mode)", set: str(&c.IAMEndpoint)},
		{env: "IAM_USER", flag: "iam-user", usage: "IAM user (token mode)", set: str(&c.IAMUser)},
		{env: "IAM_PASSWORD", secret: true, set: str(&c.IAMPassword)},
		{env: "IAM_DOMAIN", flag: "iam-domain", usage: "IAM account (domain) name", set: str(&c.IAMDomain)},
		{env: "IAM_PROJECT_ID", flag: "iam-project-id", usage: "IAM project ID", set: str(&c.IAMProjectID)},
		{env: "MEETING_ENDPOINT", flag: "meeting-endpoint", usage: "Meeting API endpoint", set: str(&c.MeetingEndpoint)},
		{env: "MEETING_APP_ID", flag: "meeting-app-id", usage: "Meeting App ID (App ID auth)", set: str(&c.MeetingAppID)},
		{env: "MEETING_APP_KEY", secret: true, set: str(&c.MeetingAppKey)},
		{env: "MEETING_USER_ID", flag: "meeting-user-id", usage: "Meeting user ID (App ID auth)", set: str(&c.MeetingUserID)},
		{env: "MEETING_CORP_ID", flag: "meeting-corp-id", usage: "Meeting corp ID (SP mode)", set: str(&c.MeetingCorpID)},
		{env: "MEETING_ACCOUNT", flag: "meeting-account", usage: "Meeting account (account auth)", set: str(&c.MeetingAccount)},
		{env: "MEETING_PASSWORD", secret: true, set: str(&c.MeetingPassword)},
		{env: "WORKER_CONCURRENCY", flag: "concurrency", usage: "tasks processed at once (default 50)", set: func(v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return fmt.Errorf("want a positive integer, got %q", v)
			}
			c.Concurrency = n
			return nil
		}},
		{env: "WORKER_QUEUES", flag: "queues", usage: "weighted queues, e.g. critical=6,default=3,low=1", set: func(v string) error {
			q, err := parseQueues(v)
			if err != nil {
				return err
			}
			c.Queues = q
			return nil
		}},
		{env: "HTTP_ADDR", flag: "http-addr", usage: "address for /metrics, /healthz, /readyz, /monitoring (default 127.0.0.1:8080; off to disable)", set: str(&c.HTTPAddr)},
		{env: "DEDUP_WINDOW", flag: "dedup-window", usage: "how long completed tasks and ledger entries are kept (default 24h)", set: dur(&c.DedupWindow)},
		{env: "SHUTDOWN_TIMEOUT", flag: "shutdown-timeout", usage: "grace period for running tasks on SIGTERM (default 10s)", set: dur(&c.ShutdownTimeout)},
		{env: "UPSTREAM_TIMEOUT", flag: "upstream-timeout", usage: "per-request upstream timeout (default 15s)", set: dur(&c.UpstreamTimeout)},
		{env: "TASK_CHECK_INTERVAL", flag: "task-check-interval", usage: "idle poll interval for new tasks (default 1s)", set: dur(&c.TaskCheckInterval)},
		{env: "DELAYED_TASK_CHECK_INTERVAL", flag: "delayed-task-check-interval", usage: "how often due scheduled/retry tasks are moved to pending (default 1s)", set: dur(&c.DelayedTaskCheckInterval)},
		{env: "RECOVER_INTERVAL", flag: "recover-interval", usage: "how often to requeue tasks of dead workers (default 5s)", set: dur(&c.RecoverInterval)},
		{env: "RECOVER_GRACE", flag: "recover-grace", usage: "requeue a dead worker's task this long after its lease expired (default 5s)", set: dur(&c.RecoverGrace)},
		{env: "DEAD_LETTER_MAX", flag: "dead-letter-max", usage: "cap on meetops' dead-letter store (default 0: no cap)", set: func(v string) error {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return fmt.Errorf("want a non-negative integer, got %q", v)
			}
			c.DeadLetterMaxLen = n
			return nil
		}},
		{env: "RATELIMIT_RTC_ROOMS", flag: "ratelimit-rtc-rooms", usage: "RTC room calls: 60/m, 10/s or off (default 60/m)", set: rate("rtc_rooms")},
		{env: "RATELIMIT_RTC_APPS", flag: "ratelimit-rtc-apps", usage: "RTC app calls (default 60/m)", set: rate("rtc_apps")},
		{env: "RATELIMIT_MEETING_MGMT", flag: "ratelimit-meeting-mgmt", usage: "Meeting management calls", set: rate("meeting_mgmt")},
		{env: "RATELIMIT_MEETING_CONTROL", flag: "ratelimit-meeting-control", usage: "Meeting control calls", set: rate("meeting_control")},
		{env: "RATELIMIT_MEETING_VMR", flag: "ratelimit-meeting-vmr", usage: "Meeting VMR calls", set: rate("meeting_vmr")},
		{env: "DASHBOARD_WRITE", flag: "dashboard-write", usage: "let the dashboard change tasks (1/true)", set: func(v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("want 1/0 or true/false, got %q", v)
			}
			c.DashboardWrite = b
			return nil
		}},
		{env: "DASHBOARD_USER", flag: "dashboard-user", usage: "basic-auth user for /monitoring", set: str(&c.DashboardUser)},
		{env: "DASHBOARD_PASSWORD", secret: true, set: str(&c.DashboardPassword)},
		{env: "LOG_LEVEL", flag: "log-level", usage: "debug, info, warn, error (default info)", set: str(&c.LogLevel)},
		{env: "LOG_FORMAT", flag: "log-format", usage: "json or console (default json; console on a terminal)", set: str(&c.LogFormat)},
	}
}

// Load reads the configuration: environment variables (secrets also from
// NAME_FILE, a path whose content is the secret), then flags, which take
// precedence. A command-line error is returned alone (flag.ErrHelp for -h,
// else wrapping ErrUsage); otherwise every bad value is reported, one per
// line. Load does not check that the values fit together: Validate does.
func Load(args []string, getenv func(string) string, usage io.Writer) (Config, error) {
	var c Config
	var errs []error
	settings := c.settings()
	for _, s := range settings {
		v := getenv(s.env)
		if s.secret {
			if path := getenv(s.env + "_FILE"); path != "" {
				if v != "" {
					errs = append(errs, fmt.Errorf("%s and %s_FILE are both set; use one", s.env, s.env))
					continue
				}
				b, err := os.ReadFile(path)
				if err != nil {
					errs = append(errs, fmt.Errorf("%s_FILE: %w", s.env, err))
					continue
				}
				v = strings.TrimRight(string(b), "\r\n")
			}
		}
		if v == "" {
			continue
		}
		if err := s.set(v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.env, err))
		}
	}
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	fs.SetOutput(usage)
	fs.BoolVar(&c.Dev, "dev", false, "dev mode: embedded Redis and the cloud simulator, no configuration needed")
	for _, s := range settings {
		if s.secret {
			continue
		}
		fs.Func(s.flag, s.usage+" [$"+s.env+"]", s.set)
	}
	fs.Usage = func() {
		fmt.Fprintf(usage, "Usage: worker [flags]\n\nRuns the meetops worker. Secrets (RTC_SK, IAM_PASSWORD, MEETING_APP_KEY,\nMEETING_PASSWORD, DASHBOARD_PASSWORD) come only from the environment or a\nNAME_FILE variable naming a file that holds them.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c, err
		}
		return c, fmt.Errorf("%w: %w", ErrUsage, err)
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("%w: unexpected arguments %q", ErrUsage, fs.Args())
	}
	return c, errors.Join(errs...)
}

// ErrUsage marks a command-line error (an unknown flag, a stray argument).
var ErrUsage = errors.New("usage")

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func parseQueues(v string) (map[string]int, error) {
	q := map[string]int{}
	for _, part := range splitList(v) {
		name, w, ok := strings.Cut(part, "=")
		if !ok {
			w = "1"
		}
		n, err := strconv.Atoi(w)
		if name == "" || err != nil || n < 1 {
			return nil, fmt.Errorf("want name=weight pairs like critical=6,default=3,low=1, got %q", part)
		}
		q[name] = n
	}
	if len(q) == 0 {
		return nil, errors.New("no queues given")
	}
	return q, nil
}
