package worker

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/meetops/meetops/internal/breaker"
	"github.com/meetops/meetops/internal/callback"
	"github.com/meetops/meetops/internal/ratelimit"
	"github.com/meetops/meetops/internal/redisconf"
	"github.com/meetops/meetops/internal/secretfile"
	"github.com/meetops/meetops/internal/tasks"
)

// setting binds one configuration value to its environment variable and,
// unless it is a secret, a flag. The settings table is the single list of
// the worker's variables: Load reads it, and a test checks that README.md
// and .env.example document every entry.
type setting struct {
	env, flag, usage string
	// secret: environment only (no flag), also from NAME_FILE. file: a
	// setting with a flag that may also come from NAME_FILE (REDIS_URL,
	// which can hold a password).
	secret, file bool
	// apiField names the apiclient.Config field the setting binds, so
	// that the client's validation messages can name the variable.
	apiField string
	set      func(string) error
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
	positive := func(p *int) func(string) error {
		return func(v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return fmt.Errorf("want a positive integer, got %q", v)
			}
			*p = n
			return nil
		}
	}
	boolean := func(p *bool) func(string) error {
		return func(v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("want 1/0 or true/false, got %q", v)
			}
			*p = b
			return nil
		}
	}
	api := func(env, flag, usage, field string, p *string) setting {
		return setting{env: env, flag: flag, usage: usage, apiField: field, set: str(p)}
	}
	secret := func(env, field string, p *string) setting {
		return setting{env: env, secret: true, apiField: field, set: str(p)}
	}
	a := &c.API
	var s []setting
	for _, r := range c.Redis.Settings() {
		// REDIS_URL can hold the password: it may come from a file too.
		s = append(s, setting{env: r.Env, flag: r.Flag, usage: r.Usage, secret: r.Secret, file: r.Env == redisconf.EnvURL, set: r.Set})
	}
	s = append(s, []setting{
		api("RTC_ENDPOINT", "rtc-endpoint", "RTC API endpoint", "RTCEndpoint", &a.RTCEndpoint),
		api("RTC_AK", "rtc-ak", "RTC access key (AK/SK mode)", "RTCAK", &a.RTCAK),
		secret("RTC_SK", "RTCSK", &a.RTCSK),
		api("RTC_PROJECT_ID", "rtc-project-id", "RTC project ID (AK/SK mode)", "RTCProjectID", &a.RTCProjectID),
		api("IAM_ENDPOINT", "iam-endpoint", "IAM endpoint (token mode)", "IAMEndpoint", &a.IAMEndpoint),
		api("IAM_USER", "iam-user", "IAM user (token mode)", "IAMUser", &a.IAMUser),
		secret("IAM_PASSWORD", "IAMPassword", &a.IAMPassword),
		api("IAM_DOMAIN", "iam-domain", "IAM account (domain) name", "IAMDomain", &a.IAMDomain),
		api("IAM_PROJECT_ID", "iam-project-id", "IAM project ID", "IAMProjectID", &a.IAMProjectID),
		api("MEETING_ENDPOINT", "meeting-endpoint", "Meeting API endpoint", "MeetingEndpoint", &a.MeetingEndpoint),
		api("MEETING_APP_ID", "meeting-app-id", "Meeting App ID (App ID auth)", "MeetingAppID", &a.MeetingAppID),
		secret("MEETING_APP_KEY", "MeetingAppKey", &a.MeetingAppKey),
		api("MEETING_USER_ID", "meeting-user-id", "Meeting user ID (App ID auth)", "MeetingUserID", &a.MeetingUserID),
		api("MEETING_CORP_ID", "meeting-corp-id", "Meeting corp ID (SP mode)", "MeetingCorpID", &a.MeetingCorpID),
		api("MEETING_ACCOUNT", "meeting-account", "Meeting account (account auth)", "MeetingAccount", &a.MeetingAccount),
		secret("MEETING_PASSWORD", "MeetingPassword", &a.MeetingPassword),
		{env: "UPSTREAM_TIMEOUT", flag: "upstream-timeout", usage: "per-request upstream timeout (default 15s)", apiField: "Timeout", set: dur(&a.Timeout)},
		{env: "AUTH_REJECT_COUNT", flag: "auth-reject-count", usage: "refused logins in a row that reject a credential, with AUTH_REJECT_WINDOW (default 3)", set: positive(&c.AuthRejectCount)},
		{env: "AUTH_REJECT_WINDOW", flag: "auth-reject-window", usage: "how long logins must have been refused before a credential is rejected (default 2m)", set: dur(&c.AuthRejectWindow)},
		{env: "AUTH_RETRY_INTERVAL", flag: "auth-retry-interval", usage: "how often a rejected credential is tried again, its secret re-read from NAME_FILE (default 30s)", set: dur(&c.AuthRetryInterval)},
		{env: "WORKER_CONCURRENCY", flag: "concurrency", usage: "tasks processed at once (default 50)", set: positive(&c.Concurrency)},
		{env: "WORKER_PROCESSORS", flag: "processors", usage: "asynq processors sharing the concurrency, each dequeuing one task at a time (default 2)", set: positive(&c.Processors)},
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
	}...)
	br := &c.Breaker
	s = append(s, []setting{
		{env: "BREAKER", flag: "breaker", usage: "circuit breakers per rate-limit group: on or off (default on)", set: func(v string) error {
			switch v {
			case "on":
				c.BreakerOff = false
			case "off":
				c.BreakerOff = true
			default:
				return fmt.Errorf("want on or off, got %q", v)
			}
			return nil
		}},
		{env: "BREAKER_THRESHOLD", flag: "breaker-threshold", usage: fmt.Sprintf("percentage of attempts failed transiently that opens a group's breaker, 1-100 (default %d)", breaker.DefaultThreshold),
			set: func(v string) error { return positive(&br.Threshold)(strings.TrimSuffix(v, "%")) }},
		{env: "BREAKER_MIN_ATTEMPTS", flag: "breaker-min-attempts", usage: fmt.Sprintf("attempts in the window before the failure ratio counts (default %d)", breaker.DefaultMinAttempts), set: positive(&br.MinAttempts)},
		{env: "BREAKER_WINDOW", flag: "breaker-window", usage: fmt.Sprintf("how far back attempts count (default %s)", breaker.DefaultWindow), set: dur(&br.Window)},
		{env: "BREAKER_PROBE_INTERVAL", flag: "breaker-probe-interval", usage: fmt.Sprintf("one probe per this across all workers while a breaker is open (default %s)", breaker.DefaultProbeInterval), set: dur(&br.ProbeInterval)},
		{env: "BREAKER_CLOSE_AFTER", flag: "breaker-close-after", usage: fmt.Sprintf("probe successes in a row that close a breaker (default %d)", breaker.DefaultCloseAfter), set: positive(&br.CloseAfter)},
	}...)
	for _, g := range tasks.Groups {
		s = append(s, setting{env: rateLimitEnv(g), flag: strings.ReplaceAll(strings.ToLower(rateLimitEnv(g)), "_", "-"),
			usage: fmt.Sprintf("rate limit of %s calls: N/s, N/m, N/h or off (default %s)", g, ratelimit.Defaults[g]),
			set: func(v string) error {
				if c.RateLimits == nil {
					c.RateLimits = map[string]string{}
				}
				c.RateLimits[g] = v
				return nil
			}})
	}
	return append(s,
		setting{env: "CALLBACK_ALLOW_HOSTS", flag: "callback-allow-hosts", usage: "hosts batch callbacks may go to, comma-separated (default none)", set: func(v string) error {
			hosts, err := callback.ParseHosts(v)
			c.CallbackAllowHosts = hosts
			return err
		}},
		setting{env: "CALLBACK_SECRET", secret: true, set: str(&c.CallbackSecret)},
		setting{env: "CALLBACK_QUEUE", flag: "callback-queue", usage: `queue of the callback deliveries (default "default")`, set: str(&c.CallbackQueue)},
		setting{env: "DASHBOARD_WRITE", flag: "dashboard-write", usage: "let the dashboard change tasks (1/true; needs DASHBOARD_USER/DASHBOARD_PASSWORD)", set: boolean(&c.DashboardWrite)},
		setting{env: "DASHBOARD_USER", flag: "dashboard-user", usage: "basic-auth user for /monitoring", set: str(&c.DashboardUser)},
		setting{env: "DASHBOARD_PASSWORD", secret: true, set: str(&c.DashboardPassword)},
		setting{env: "DASHBOARD_INSECURE", flag: "dashboard-insecure", usage: "serve /monitoring without auth on a non-loopback HTTP_ADDR (1/true; logged at warn)", set: boolean(&c.DashboardInsecure)},
		setting{env: "DASHBOARD_HOSTS", flag: "dashboard-hosts", usage: "host names the HTTP server answers to besides localhost, IP literals and HTTP_ADDR's host, comma-separated", set: func(v string) error {
			c.DashboardHosts = splitList(v)
			return nil
		}},
		setting{env: "LOG_LEVEL", flag: "log-level", usage: "debug, info, warn, error (default info)", set: str(&c.LogLevel)},
		setting{env: "LOG_FORMAT", flag: "log-format", usage: "json or console (default json; console on a terminal)", set: str(&c.LogFormat)},
	)
}

// rateLimitEnv is the variable that sets group's rate limit:
// RATELIMIT_RTC_ROOMS for rtc_rooms.
func rateLimitEnv(group string) string { return "RATELIMIT_" + strings.ToUpper(group) }

// apiEnvName names an apiclient.Config field by the variable that sets it,
// for the client's validation messages.
func apiEnvName(field string) string {
	var c Config
	for _, s := range c.settings() {
		if s.apiField == field {
			return s.env
		}
	}
	return field
}

// Load reads the configuration: environment variables (secrets, and
// REDIS_URL, also from NAME_FILE, a path whose content is the value: at
// most 64 KiB, trailing white space trimmed, a warning in Warnings when
// others can read it), then flags, which take precedence. A command-line error is returned alone (flag.ErrHelp for -h,
// else wrapping ErrUsage); otherwise every bad value is reported, one per
// line. Load does not check that the values fit together: Validate does.
func Load(args []string, getenv func(string) string, usage io.Writer) (Config, error) {
	var c Config
	var errs []error
	settings := c.settings()
	for _, s := range settings {
		v := getenv(s.env)
		if s.secret || s.file {
			if path := getenv(s.env + "_FILE"); path != "" {
				if v != "" {
					errs = append(errs, fmt.Errorf("%s and %s_FILE are both set; use one", s.env, s.env))
					continue
				}
				secret, warning, err := secretfile.Read(path)
				if err != nil {
					errs = append(errs, fmt.Errorf("%s_FILE: %w", s.env, err))
					continue
				}
				if warning != "" {
					c.warnings = append(c.warnings, s.env+"_FILE: "+warning)
				}
				if s.secret {
					if c.secretFiles == nil {
						c.secretFiles = map[string]string{}
					}
					c.secretFiles[s.env] = path
				}
				v = secret
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
	var secrets []string
	for _, s := range settings {
		if s.secret {
			secrets = append(secrets, s.env)
			continue
		}
		fs.Func(s.flag, s.usage+" [$"+s.env+"]", s.set)
	}
	fs.Usage = func() {
		fmt.Fprintf(usage, "Usage: worker [flags]\n\nRuns the meetops worker. Secrets (%s)\ncome only from the environment or a NAME_FILE variable naming a file that\nholds them.\n\nFlags:\n",
			strings.Join(secrets, ", "))
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
