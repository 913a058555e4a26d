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
	"github.com/meetops/meetops/internal/breaker"
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
	c, err := Load([]string{"-redis-url", "redis://flag:6379/2", "-concurrency", "9", "-processors", "4"}, envOf(env), io.Discard)
	require.NoError(t, err)
	require.Equal(t, "redis://flag:6379/2", c.Redis.URL, "flags override the environment")
	require.Equal(t, 9, c.Concurrency)
	require.Equal(t, 4, c.Processors)
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
		API: apiclient.Config{RTCAK: "AK", MeetingAccount: "acc"}, Redis: redisconf.Config{URL: "http://not-redis"},
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
}

// A bad REDIS_URL is reported without its password, even one holding an
// "@" (masking up to the first "@" printed the rest); with
// REDIS_CLUSTER_ADDRS set, a REDIS_URL that does not parse is an error too
// (it used to be dropped silently, and with it TLS and the password).
func TestRedisURLErrorsHideThePassword(t *testing.T) {
	t.Parallel()
	for _, redis := range []redisconf.Config{
		{URL: "rediss://user:hunter2@SECRET@host:bad/0"},
		{URL: "rediss://user:hunter2@SECRET@host:bad/0", ClusterAddrs: []string{"127.0.0.1:7000"}},
	} {
		err := Config{Redis: redis, API: validAPI}.WithDefaults().Validate()
		require.ErrorContains(t, err, "REDIS_URL: ")
		require.NotContains(t, err.Error(), "hunter2")
		require.NotContains(t, err.Error(), "SECRET")
	}
}

// NAME_FILE values are read bounded (a link to /dev/zero is an error, not
// 1.8 GB of memory and a worker that ignores SIGTERM), trailing white space
// is trimmed (a password written with a trailing space is the password
// meant), a file others can read is a warning, and REDIS_URL (which holds
// the Redis password) has a _FILE form too.
func TestLoadSecretFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), mode))
		require.NoError(t, os.Chmod(p, mode))
		return p
	}
	zero := filepath.Join(dir, "zero")
	require.NoError(t, os.Symlink("/dev/zero", zero))

	c, err := Load(nil, envOf(map[string]string{
		"IAM_PASSWORD_FILE": file("iam", "pass word \n", 0o600),
		"REDIS_URL_FILE":    file("url", "redis://:pw@10.0.0.1:6379/0\n", 0o644),
	}), io.Discard)
	require.NoError(t, err)
	require.Equal(t, "pass word", c.API.IAMPassword)
	require.Equal(t, "redis://:pw@10.0.0.1:6379/0", c.Redis.URL)
	require.Len(t, c.Warnings(), 1)
	require.Contains(t, c.Warnings()[0], "REDIS_URL_FILE: ")
	require.Contains(t, c.Warnings()[0], "readable by everyone")

	_, err = Load(nil, envOf(map[string]string{"RTC_SK_FILE": zero}), io.Discard)
	require.ErrorContains(t, err, "RTC_SK_FILE: "+zero+" is larger than 64 KiB")
	_, err = Load(nil, envOf(map[string]string{"REDIS_URL": "redis://x", "REDIS_URL_FILE": file("u2", "redis://y", 0o600)}), io.Discard)
	require.ErrorContains(t, err, "REDIS_URL and REDIS_URL_FILE are both set")
}

// The breaker's settings: defaults when unset, each variable read, every
// bad value reported naming its variable (at Load for one that does not
// parse, at Validate for one out of range), and BREAKER=off.
func TestBreakerSettings(t *testing.T) {
	t.Parallel()
	c, err := Load(nil, envOf(nil), io.Discard)
	require.NoError(t, err)
	c = c.WithDefaults()
	require.False(t, c.BreakerOff)
	require.Equal(t, breaker.Settings{Threshold: 50, MinAttempts: 20, Window: 10 * time.Second, ProbeInterval: 5 * time.Second, CloseAfter: 3}, c.Breaker)

	c, err = Load(nil, envOf(map[string]string{"BREAKER": "off", "BREAKER_THRESHOLD": "80%", "BREAKER_MIN_ATTEMPTS": "5",
		"BREAKER_WINDOW": "30s", "BREAKER_PROBE_INTERVAL": "2s", "BREAKER_CLOSE_AFTER": "1"}), io.Discard)
	require.NoError(t, err)
	require.True(t, c.BreakerOff)
	require.Equal(t, breaker.Settings{Threshold: 80, MinAttempts: 5, Window: 30 * time.Second, ProbeInterval: 2 * time.Second, CloseAfter: 1}, c.Breaker)
	c, err = Load([]string{"-breaker", "on", "-breaker-threshold", "60"}, envOf(map[string]string{"BREAKER": "off"}), io.Discard)
	require.NoError(t, err)
	require.False(t, c.BreakerOff, "the flag overrides the environment")
	require.Equal(t, 60, c.Breaker.Threshold)

	bad := map[string]string{"BREAKER": "maybe", "BREAKER_THRESHOLD": "half", "BREAKER_MIN_ATTEMPTS": "0",
		"BREAKER_WINDOW": "long", "BREAKER_PROBE_INTERVAL": "-1s", "BREAKER_CLOSE_AFTER": "x"}
	_, err = Load(nil, envOf(bad), io.Discard)
	require.Error(t, err)
	lines := strings.Split(err.Error(), "\n")
	require.Len(t, lines, len(bad), "one line per problem: %v", lines)
	for env := range bad {
		require.Contains(t, err.Error(), env+":")
	}

	c = Config{API: validAPI, Breaker: breaker.Settings{Threshold: 101, Window: time.Millisecond, ProbeInterval: time.Millisecond}}.WithDefaults()
	err = c.Validate()
	require.Error(t, err)
	lines = strings.Split(err.Error(), "\n")
	require.Len(t, lines, 3, "one line per problem: %v", lines)
	for _, want := range []string{"BREAKER_THRESHOLD", "BREAKER_WINDOW", "BREAKER_PROBE_INTERVAL"} {
		require.Contains(t, err.Error(), want)
	}
	c = Config{API: validAPI, Breaker: breaker.Settings{MinAttempts: -1, CloseAfter: -2}}.WithDefaults()
	err = c.Validate()
	require.ErrorContains(t, err, "BREAKER_MIN_ATTEMPTS")
	require.ErrorContains(t, err, "BREAKER_CLOSE_AFTER")
}
