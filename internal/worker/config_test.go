package worker

import (
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/apiclient"
	"github.com/meetops/meetops/internal/redisconf"
)

// validAPI is a complete upstream configuration (AK/SK and App ID).
var validAPI = apiclient.Config{RTCAK: "AK", RTCSK: "SK", RTCProjectID: "p", MeetingAppID: "id", MeetingAppKey: "key"}

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLoadEnvFlagsAndSecretFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	skFile := filepath.Join(dir, "sk")
	require.NoError(t, os.WriteFile(skFile, []byte("sk-from-file\n"), 0o600))
	env := map[string]string{
		"REDIS_URL": "redis://env:6379/1", "RTC_AK": "AK", "RTC_SK_FILE": skFile, "RTC_PROJECT_ID": "p",
		"WORKER_CONCURRENCY": "7", "WORKER_QUEUES": "critical=6,default=3,low=1", "DEDUP_WINDOW": "2h",
		"RATELIMIT_RTC_ROOMS": "10/s",
	}
	c, err := Load([]string{"-redis-url", "redis://flag:6379/2", "-concurrency", "9"}, envOf(env), io.Discard)
	require.NoError(t, err)
	require.Equal(t, "redis://flag:6379/2", c.RedisURL, "flags override the environment")
	require.Equal(t, 9, c.Concurrency)
	require.Equal(t, "sk-from-file", c.API.RTCSK, "a secret comes from NAME_FILE, trailing newline trimmed")
	require.Equal(t, map[string]int{"critical": 6, "default": 3, "low": 1}, c.Queues)
	require.Equal(t, 2*time.Hour, c.DedupWindow)
	require.Equal(t, "10/s", c.RateLimits["rtc_rooms"])
}

func TestLoadReportsEveryBadValue(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"WORKER_CONCURRENCY": "-1", "WORKER_QUEUES": "a=x", "DEDUP_WINDOW": "forever",
		"RTC_SK": "inline", "RTC_SK_FILE": "/nonexistent", "IAM_PASSWORD_FILE": "/nonexistent/pw",
	}
	_, err := Load(nil, envOf(env), io.Discard)
	require.Error(t, err)
	lines := strings.Split(err.Error(), "\n")
	require.Len(t, lines, 5, "one line per problem: %v", lines)
	for _, want := range []string{"WORKER_CONCURRENCY", "WORKER_QUEUES", "DEDUP_WINDOW", "RTC_SK and RTC_SK_FILE", "IAM_PASSWORD_FILE"} {
		require.Contains(t, err.Error(), want)
	}
	require.NotContains(t, err.Error(), "inline", "a secret value never appears in an error")
}

func TestLoadUsageErrors(t *testing.T) {
	t.Parallel()
	_, err := Load([]string{"-nope"}, envOf(nil), io.Discard)
	require.ErrorIs(t, err, ErrUsage)
	_, err = Load([]string{"stray"}, envOf(nil), io.Discard)
	require.ErrorIs(t, err, ErrUsage)
	_, err = Load([]string{"-h"}, envOf(nil), io.Discard)
	require.True(t, errors.Is(err, flag.ErrHelp))
}

func TestValidateNamesEachProblem(t *testing.T) {
	t.Parallel()
	c := Config{
		API: apiclient.Config{RTCAK: "AK", MeetingAccount: "acc"}, RedisURL: "http://not-redis",
		LogFormat: "xml", DashboardUser: "admin", RateLimits: map[string]string{"rtc_apps": "1/d"},
	}.WithDefaults()
	err := c.Validate()
	require.Error(t, err)
	for _, want := range []string{"REDIS_URL", "RTC_SK", "MEETING_PASSWORD", "LOG_FORMAT", "DASHBOARD_PASSWORD", "RATELIMIT_RTC_APPS"} {
		require.Contains(t, err.Error(), want)
	}
	c = Config{API: validAPI}.WithDefaults()
	require.NoError(t, c.Validate())
	require.Equal(t, 50, c.Concurrency)
	require.Equal(t, "127.0.0.1:8080", c.HTTPAddr)
	require.Equal(t, 10*time.Second, c.ShutdownTimeout)
	require.Equal(t, redisconf.DefaultURL, c.RedisURL)
}

func TestRedactURLError(t *testing.T) {
	t.Parallel()
	c := Config{RedisURL: "rediss://user:hunter2@host:bad/0", API: validAPI}.WithDefaults()
	err := c.Validate()
	require.Error(t, err)
	require.NotContains(t, err.Error(), "hunter2")
}
