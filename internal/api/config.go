package api

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/meetops/meetops/internal/callback"
	"github.com/meetops/meetops/internal/ratelimit"
	"github.com/meetops/meetops/internal/redisconf"
	"github.com/meetops/meetops/internal/secretfile"
	"github.com/meetops/meetops/internal/tasks"
)

// Config is the api command's configuration. Zero values mean defaults,
// noted on each field. Every field has an environment variable (in
// brackets) and, but for the tokens, a flag; see Load.
type Config struct {
	// Addr [API_ADDR] is where the API listens; default 127.0.0.1:8090.
	Addr string
	// Redis is the Redis topology [REDIS_URL (also REDIS_URL_FILE),
	// REDIS_CLUSTER_ADDRS, REDIS_SENTINEL_ADDRS, REDIS_SENTINEL_MASTER,
	// REDIS_SENTINEL_PASSWORD, REDIS_ACK_REPLICAS], the setting every
	// meetops process shares.
	Redis redisconf.Config
	// Tokens [API_TOKENS, or API_TOKENS_FILE] are the accepted tokens,
	// "NAME SCOPE sha256:HEX" lines (separated by "," in API_TOKENS).
	// Required.
	Tokens []Token
	// RateLimit [API_RATE_LIMIT] is each token's request rate: N/s, N/m,
	// N/h or off; default 100/s.
	RateLimit string
	// CallbackAllowHosts [CALLBACK_ALLOW_HOSTS] are the hosts a batch's
	// callback_url may name (host names or IP literals, no ports), as the
	// worker's setting; empty refuses every callback URL.
	CallbackAllowHosts []string
	// DedupWindow [DEDUP_WINDOW] is how long completed tasks and batches
	// are kept; give the API the worker's value. Default 24h.
	DedupWindow time.Duration
	// LogLevel [LOG_LEVEL]: debug, info, warn or error; default info.
	LogLevel string
	// LogFormat [LOG_FORMAT]: json (default) or text ("console", the
	// worker's name for its human format, is taken as text).
	LogFormat string

	// warnings are problems Load found that do not stop the API (a
	// secret file others can read).
	warnings []string
}

// Defaults.
const (
	DefaultAddr      = "127.0.0.1:8090"
	DefaultRateLimit = "100/s"
)

// Warnings returns what Load found worth a warning but not an error.
func (c Config) Warnings() []string { return c.warnings }

// WithDefaults returns c with zero values replaced by their defaults.
func (c Config) WithDefaults() Config {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.RateLimit == "" {
		c.RateLimit = DefaultRateLimit
	}
	if c.DedupWindow == 0 {
		c.DedupWindow = tasks.DefaultDedupWindow
	}
	if c.LogLevel == "" {
		c.LogLevel = "info"
	}
	if c.LogFormat == "" {
		c.LogFormat = "json"
	}
	return c
}

// Validate reports every problem in c (after WithDefaults), one line
// each, each naming the variable to fix, so that a misconfigured API
// stops at start-up.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if err := c.Redis.Validate(); err != nil {
		errs = append(errs, err)
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		add("API_ADDR: want host:port, got %q", c.Addr)
	}
	if len(c.Tokens) == 0 {
		add("API_TOKENS_FILE or API_TOKENS: no tokens, so nobody could use the API; add a line NAME SCOPE sha256:HEX (`api token NAME SCOPE` makes one)")
	}
	if _, err := ratelimit.ParseLimit(c.RateLimit); err != nil {
		add("API_RATE_LIMIT: %v", err)
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		add("LOG_LEVEL: %v", err)
	}
	if _, err := textFormat(c.LogFormat); err != nil {
		add("LOG_FORMAT: %v", err)
	}
	return errors.Join(errs...)
}

// setting binds one configuration value to its environment variable and,
// unless envOnly, a flag. The settings table is the list of the API's
// variables: Load reads it, and a test checks that README.md and
// .env.example document every entry.
type setting struct {
	env, flag, usage string
	// secret: environment only, never printed; file: may also come from
	// NAME_FILE (a secret always may).
	secret, file bool
	// envOnly: no flag (a list of token hashes belongs in the
	// environment or a file, not in ps).
	envOnly bool
	set     func(string) error
	// setFile, when not nil, parses the content of NAME_FILE instead of
	// set.
	setFile func(string) error
}

func (c *Config) settings() []setting {
	var s []setting
	for _, r := range c.Redis.Settings() {
		s = append(s, setting{env: r.Env, flag: r.Flag, usage: r.Usage, secret: r.Secret, file: r.Env == redisconf.EnvURL, set: r.Set})
	}
	return append(s,
		setting{env: "API_ADDR", flag: "api-addr", usage: "address the API listens on (default " + DefaultAddr + ")",
			set: func(v string) error { c.Addr = strings.TrimSpace(v); return nil }},
		setting{env: "API_TOKENS", envOnly: true, file: true,
			set: func(v string) error {
				tokens, err := ParseTokens("API_TOKENS", v, ',')
				c.Tokens = tokens
				return err
			},
			setFile: func(v string) error {
				tokens, err := ParseTokens("API_TOKENS_FILE", v, '\n')
				c.Tokens = tokens
				return err
			}},
		setting{env: "API_RATE_LIMIT", flag: "api-rate-limit", usage: "requests per token: N/s, N/m, N/h or off (default " + DefaultRateLimit + ")",
			set: func(v string) error { c.RateLimit = strings.TrimSpace(v); return nil }},
		setting{env: "CALLBACK_ALLOW_HOSTS", flag: "callback-allow-hosts", usage: "hosts a batch's callback_url may name, comma-separated (default none)",
			set: func(v string) error {
				hosts, err := callback.ParseHosts(v)
				c.CallbackAllowHosts = hosts
				return err
			}},
		setting{env: "DEDUP_WINDOW", flag: "dedup-window", usage: "how long completed tasks and batches are kept; the worker's value (default 24h)",
			set: func(v string) error {
				d, err := time.ParseDuration(strings.TrimSpace(v))
				if err != nil || d < 0 {
					return fmt.Errorf("want a duration like 30s or 24h, got %q", v)
				}
				c.DedupWindow = d
				return nil
			}},
		setting{env: "LOG_LEVEL", flag: "log-level", usage: "debug, info, warn, error (default info)",
			set: func(v string) error { c.LogLevel = strings.TrimSpace(v); return nil }},
		setting{env: "LOG_FORMAT", flag: "log-format", usage: "json or text (default json)",
			set: func(v string) error { c.LogFormat = strings.TrimSpace(v); return nil }},
	)
}

// ErrUsage marks a command-line error (an unknown flag, a stray argument).
var ErrUsage = errors.New("usage")

// Load reads the configuration: environment variables (REDIS_URL,
// REDIS_SENTINEL_PASSWORD and API_TOKENS also from NAME_FILE, a path
// whose content is the value: at most 64 KiB, trailing white space
// trimmed, a warning in Warnings when others can read it), then flags,
// which take precedence. A command-line error is returned alone
// (flag.ErrHelp for -h, else wrapping ErrUsage); otherwise every bad value
// is reported, one line each. Load does not check that the values fit
// together: Validate does.
func Load(args []string, getenv func(string) string, usage io.Writer) (Config, error) {
	var c Config
	var errs []error
	settings := c.settings()
	for _, s := range settings {
		v := getenv(s.env)
		set := s.set
		if s.secret || s.file {
			if path := getenv(s.env + "_FILE"); path != "" {
				if v != "" {
					errs = append(errs, fmt.Errorf("%s and %s_FILE are both set; use one", s.env, s.env))
					continue
				}
				content, warning, err := secretfile.Read(path)
				if err != nil {
					errs = append(errs, fmt.Errorf("%s_FILE: %w", s.env, err))
					continue
				}
				if warning != "" {
					c.warnings = append(c.warnings, s.env+"_FILE: "+warning)
				}
				v = content
				if s.setFile != nil {
					set = s.setFile
				}
			}
		}
		if v == "" {
			continue
		}
		if err := set(v); err != nil {
			errs = append(errs, prefixed(s.env, err)...)
		}
	}
	fs := flag.NewFlagSet("api", flag.ContinueOnError)
	fs.SetOutput(usage)
	for _, s := range settings {
		if s.secret || s.envOnly {
			continue
		}
		fs.Func(s.flag, s.usage+" [$"+s.env+"]", s.set)
	}
	fs.Usage = func() {
		fmt.Fprint(usage, `Usage: api [flags]
       api token NAME enqueue|admin

Serves meetops' HTTP producer API. Tokens come from API_TOKENS_FILE (a file
of NAME SCOPE sha256:HEX lines) or API_TOKENS (the same lines separated by
commas), never from flags; "api token" makes one. REDIS_URL,
REDIS_SENTINEL_PASSWORD and API_TOKENS may come from NAME_FILE variables.

Flags:
`)
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

// prefixed returns the errors err joins, each prefixed with env unless it
// already names it.
func prefixed(env string, err error) []error {
	var out []error
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		if !strings.HasPrefix(e.Error(), env) { // API_TOKENS_FILE: … names it too
			e = fmt.Errorf("%s: %w", env, e)
		}
		out = append(out, e)
	}
	walk(err)
	return out
}

// parseLevel parses a LOG_LEVEL.
func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info", "":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("want debug, info, warn or error, got %q", s)
}

// textFormat reports whether a LOG_FORMAT is the text format.
func textFormat(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "json", "":
		return false, nil
	case "text", "console":
		return true, nil
	}
	return false, fmt.Errorf("want json or text, got %q", s)
}

// NewLogger returns the API's logger: JSON lines, or text, on w, at level.
// Call it with a Config that passed Validate.
func NewLogger(w io.Writer, level, format string) *slog.Logger {
	lvl, _ := parseLevel(level)
	opts := &slog.HandlerOptions{Level: lvl}
	if text, _ := textFormat(format); text {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
