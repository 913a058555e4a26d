package worker

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/meetops/meetops/internal/apiclient"
	"github.com/meetops/meetops/internal/ratelimit"
	"github.com/meetops/meetops/internal/version"
)

// Defaults.
const (
	DefaultRedisURL        = "redis://127.0.0.1:6379/0"
	DefaultConcurrency     = 50
	DefaultHTTPAddr        = "127.0.0.1:8080"
	DefaultShutdownTimeout = 10 * time.Second
	DefaultDedupWindow     = 24 * time.Hour
)

// WithDefaults returns c with zero values replaced by their defaults.
func (c Config) WithDefaults() Config {
	if c.RedisURL == "" && len(c.RedisClusterAddrs) == 0 {
		c.RedisURL = DefaultRedisURL
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if len(c.Queues) == 0 {
		c.Queues = map[string]int{"default": 1}
	}
	if c.HTTPAddr == "" {
		c.HTTPAddr = DefaultHTTPAddr
	}
	if c.DedupWindow == 0 {
		c.DedupWindow = DefaultDedupWindow
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
	return c
}

// apiConfig maps c to the API client's configuration.
func (c Config) apiConfig() apiclient.Config {
	return apiclient.Config{
		RTCEndpoint: c.RTCEndpoint, RTCAK: c.RTCAK, RTCSK: c.RTCSK, RTCProjectID: c.RTCProjectID,
		IAMEndpoint: c.IAMEndpoint, IAMUser: c.IAMUser, IAMPassword: c.IAMPassword,
		IAMDomain: c.IAMDomain, IAMProjectID: c.IAMProjectID,
		MeetingEndpoint: c.MeetingEndpoint, MeetingAppID: c.MeetingAppID, MeetingAppKey: c.MeetingAppKey,
		MeetingUserID: c.MeetingUserID, MeetingCorpID: c.MeetingCorpID,
		MeetingAccount: c.MeetingAccount, MeetingPassword: c.MeetingPassword,
		Timeout: c.UpstreamTimeout, Version: version.Version,
	}
}

// Validate reports every problem in c (after WithDefaults), one per line,
// so a misconfigured worker fails at start-up, never at its first task.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if len(c.RedisClusterAddrs) == 0 {
		if _, err := redis.ParseURL(c.RedisURL); err != nil {
			add("REDIS_URL: %s", redactURLError(err, c.RedisURL))
		}
	}
	if c.RTCAK == "" && c.IAMUser == "" {
		add("RTC credentials: set RTC_AK/RTC_SK/RTC_PROJECT_ID (AK/SK) or IAM_USER/IAM_PASSWORD/IAM_DOMAIN/IAM_PROJECT_ID (token)")
	}
	if c.MeetingAppID == "" && c.MeetingAccount == "" {
		add("Meeting credentials: set MEETING_APP_ID/MEETING_APP_KEY (App ID) or MEETING_ACCOUNT/MEETING_PASSWORD (account)")
	}
	if _, err := apiclient.New(c.apiConfig()); err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			errs = append(errs, errors.New(envNames.Replace(strings.TrimPrefix(line, "apiclient: "))))
		}
	}
	if c.Concurrency < 1 {
		add("WORKER_CONCURRENCY: must be at least 1")
	}
	if _, err := zerolog.ParseLevel(c.LogLevel); err != nil || c.LogLevel == "" {
		add("LOG_LEVEL: want debug, info, warn or error, got %q", c.LogLevel)
	}
	if c.LogFormat != "" && c.LogFormat != "json" && c.LogFormat != "console" {
		add("LOG_FORMAT: want json or console, got %q", c.LogFormat)
	}
	if (c.DashboardUser == "") != (c.DashboardPassword == "") {
		add("DASHBOARD_USER and DASHBOARD_PASSWORD: set both or neither")
	}
	for group, v := range c.RateLimits {
		if _, err := ratelimit.ParseLimit(v); err != nil {
			add("RATELIMIT_%s: %v", strings.ToUpper(group), err)
		}
	}
	return errors.Join(errs...)
}

// envNames renames the API client's configuration fields to the
// environment variables an operator sets.
var envNames = strings.NewReplacer(
	"RTCEndpoint", "RTC_ENDPOINT", "RTCAK", "RTC_AK", "RTCSK", "RTC_SK", "RTCProjectID", "RTC_PROJECT_ID",
	"IAMEndpoint", "IAM_ENDPOINT", "IAMUser", "IAM_USER", "IAMPassword", "IAM_PASSWORD",
	"IAMDomain", "IAM_DOMAIN", "IAMProjectID", "IAM_PROJECT_ID",
	"MeetingEndpoint", "MEETING_ENDPOINT", "MeetingAppID", "MEETING_APP_ID", "MeetingAppKey", "MEETING_APP_KEY",
	"MeetingUserID", "MEETING_USER_ID", "MeetingCorpID", "MEETING_CORP_ID",
	"MeetingAccount", "MEETING_ACCOUNT", "MeetingPassword", "MEETING_PASSWORD",
)

// redactURLError keeps a Redis URL's password out of an error message.
func redactURLError(err error, raw string) string {
	msg := err.Error()
	if i := strings.Index(raw, "@"); i > 0 {
		if j := strings.Index(raw, "://"); j >= 0 && j < i {
			msg = strings.ReplaceAll(msg, raw[j+3:i], "xxxxx")
		}
	}
	return msg
}
