package redisconf_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/redisconf"
)

// problems returns the messages of the errors joined in err.
func problems(err error) []string {
	if err == nil {
		return nil
	}
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) {
		return []string{err.Error()}
	}
	var out []string
	for _, e := range joined.Unwrap() {
		out = append(out, problems(e)...)
	}
	return out
}

// requireProblems checks that err holds exactly one problem per entry of
// want, in order, each containing every substring of its entry.
func requireProblems(t *testing.T, err error, want ...[]string) {
	t.Helper()
	got := problems(err)
	require.Len(t, got, len(want), "problems: %q", got)
	for i, subs := range want {
		for _, sub := range subs {
			require.Contains(t, got[i], sub, "problem %d", i)
		}
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	cluster := []string{"10.0.0.1:7000", "10.0.0.2:7000"}
	sentinels := []string{"10.0.0.1:26379", "[::1]:26379"}
	for _, tc := range []struct {
		name string
		cfg  redisconf.Config
		want [][]string
	}{
		{name: "zero value: the default URL", cfg: redisconf.Config{}},
		{name: "single", cfg: redisconf.Config{URL: "redis://:pw@10.0.0.5:6379/3", AckReplicas: 1}},
		{name: "single TLS", cfg: redisconf.Config{URL: "rediss://user:pw@redis.example:6380/0"}},
		{name: "single unix socket", cfg: redisconf.Config{URL: "unix:///run/redis.sock?db=2"}},
		{name: "cluster", cfg: redisconf.Config{ClusterAddrs: cluster, AckReplicas: 1}},
		{name: "cluster, credentials from the URL", cfg: redisconf.Config{URL: "rediss://u:pw@ignored/0", ClusterAddrs: cluster}},
		{name: "sentinel", cfg: redisconf.Config{SentinelAddrs: sentinels, SentinelMaster: "mymaster", SentinelPassword: "s", URL: "redis://:pw@ignored/4"}},

		{name: "cluster and sentinel",
			cfg:  redisconf.Config{ClusterAddrs: cluster, SentinelAddrs: sentinels, SentinelMaster: "m"},
			want: [][]string{{"REDIS_CLUSTER_ADDRS and REDIS_SENTINEL_ADDRS and REDIS_SENTINEL_MASTER", "one topology"}}},
		{name: "cluster and a sentinel master",
			cfg: redisconf.Config{ClusterAddrs: cluster, SentinelMaster: "m"},
			want: [][]string{
				{"REDIS_CLUSTER_ADDRS and REDIS_SENTINEL_MASTER", "one topology"},
				{"REDIS_SENTINEL_ADDRS: required with REDIS_SENTINEL_MASTER"},
			}},
		{name: "sentinel addrs without master",
			cfg:  redisconf.Config{SentinelAddrs: sentinels},
			want: [][]string{{"REDIS_SENTINEL_MASTER: required with REDIS_SENTINEL_ADDRS"}}},
		{name: "sentinel master without addrs",
			cfg:  redisconf.Config{SentinelMaster: "mymaster"},
			want: [][]string{{"REDIS_SENTINEL_ADDRS: required with REDIS_SENTINEL_MASTER"}}},
		{name: "sentinel password alone",
			cfg:  redisconf.Config{SentinelPassword: "s"},
			want: [][]string{{"REDIS_SENTINEL_PASSWORD", "ignored"}}},

		{name: "bad URL, single",
			cfg:  redisconf.Config{URL: "http://10.0.0.5:6379"},
			want: [][]string{{"REDIS_URL:", "scheme"}}},
		{name: "bad URL with cluster: never silently dropped",
			cfg:  redisconf.Config{URL: "rediss://:pw@host:port/0", ClusterAddrs: cluster},
			want: [][]string{{"REDIS_URL:", "invalid port"}}},
		{name: "bad URL with sentinel",
			cfg:  redisconf.Config{URL: "redis://host/notadb", SentinelAddrs: sentinels, SentinelMaster: "m"},
			want: [][]string{{"REDIS_URL:", "database"}}},
		{name: "unix URL with cluster",
			cfg:  redisconf.Config{URL: "unix:///run/redis.sock", ClusterAddrs: cluster},
			want: [][]string{{"REDIS_URL:", "redis:// or rediss://", "REDIS_CLUSTER_ADDRS"}}},
		{name: "cluster has only DB 0",
			cfg:  redisconf.Config{URL: "redis://ignored/3", ClusterAddrs: cluster},
			want: [][]string{{"REDIS_URL:", "database 3", "REDIS_CLUSTER_ADDRS"}}},

		{name: "not host:port",
			cfg: redisconf.Config{ClusterAddrs: []string{"10.0.0.1", ":7000", "h:0", "h:x", "h:70000", "h:7000"}},
			want: [][]string{
				{`REDIS_CLUSTER_ADDRS: "10.0.0.1" is not host:port`},
				{`REDIS_CLUSTER_ADDRS: ":7000" is not host:port`, "missing host"},
				{`REDIS_CLUSTER_ADDRS: "h:0"`, "1 to 65535"},
				{`REDIS_CLUSTER_ADDRS: "h:x"`},
				{`REDIS_CLUSTER_ADDRS: "h:70000"`},
			}},
		{name: "sentinel address not host:port",
			cfg:  redisconf.Config{SentinelAddrs: []string{"sentinel-1"}, SentinelMaster: "m"},
			want: [][]string{{`REDIS_SENTINEL_ADDRS: "sentinel-1" is not host:port`}}},
		{name: "negative ack replicas",
			cfg:  redisconf.Config{AckReplicas: -1},
			want: [][]string{{"REDIS_ACK_REPLICAS:", "-1"}}},
		{name: "every problem at once",
			cfg: redisconf.Config{URL: "redis://h:p", ClusterAddrs: []string{"x"}, SentinelAddrs: []string{"y"}, AckReplicas: -2},
			want: [][]string{
				{"REDIS_CLUSTER_ADDRS and REDIS_SENTINEL_ADDRS"},
				{"REDIS_SENTINEL_MASTER: required"},
				{"REDIS_URL:"},
				{"REDIS_CLUSTER_ADDRS:", `"x"`},
				{"REDIS_SENTINEL_ADDRS:", `"y"`},
				{"REDIS_ACK_REPLICAS:"},
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			requireProblems(t, tc.cfg.Validate(), tc.want...)
		})
	}
}

// TestNoPasswordInMessages: a password, even one with "@", "/" or "%" in
// it, shows neither in an error nor in a description.
func TestNoPasswordInMessages(t *testing.T) {
	t.Parallel()
	const pw, tail = "PW1x", "S3CR3T"
	sentinel := func(url string) redisconf.Config {
		return redisconf.Config{URL: url, SentinelAddrs: []string{"s:26379"}, SentinelMaster: "m", SentinelPassword: "SENTINEL-" + tail}
	}
	cluster := func(url string) redisconf.Config {
		return redisconf.Config{URL: url, ClusterAddrs: []string{"c:7000"}}
	}
	for _, tc := range []struct {
		name    string
		cfg     redisconf.Config
		invalid string // a substring of the error, when the config is invalid
	}{
		{"valid", sentinel("redis://user:" + pw + tail + "@host:6379/0"), ""},
		{"valid, escaped @ in the password", cluster("rediss://user:" + pw + "%40" + tail + "@host:6379/0"), ""},
		{"raw @ in the password", cluster("redis://user:" + pw + "@" + tail + "@host:6379/0"), ""},
		{"raw @ in the password, bad port", cluster("redis://user:" + pw + "@" + tail + "@host:port/0"), "invalid port"},
		{"raw @ in the password, single, bad port", redisconf.Config{URL: "redis://user:" + pw + "@" + tail + "@host:port/0"}, "invalid port"},
		{"raw / in the password", cluster("redis://:" + pw + "/" + tail + "@host:6379/0"), "percent-encode"},
		{"bad escape in the password", sentinel("redis://:" + pw + "%zz" + tail + "@host:6379/0"), "percent-encode"},
		{"password as user", redisconf.Config{URL: "redis://" + pw + tail + "@host:6379/0"}, ""},
		{"password as user, bad option", redisconf.Config{URL: "redis://" + pw + tail + "@host:6379/0?nope=1"}, "nope"},
		{"no scheme", redisconf.Config{URL: ":" + pw + tail + "@host:6379"}, "REDIS_URL"},
		{"bad DB", sentinel("redis://u:" + pw + "@" + tail + "@host:6379/x"), "database"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.cfg.Validate()
			if tc.invalid == "" {
				require.NoError(t, err)
			} else {
				require.ErrorContains(t, err, tc.invalid)
			}
			_, ncErr := tc.cfg.NewClient(redisconf.ClientOptions{})
			for _, text := range []string{
				fmt.Sprint(err), fmt.Sprint(ncErr),
				tc.cfg.String(), fmt.Sprintf("%v", tc.cfg), fmt.Sprintf("%+v", tc.cfg), fmt.Sprintf("%#v", tc.cfg),
				redisconf.Redact(tc.cfg.URL),
			} {
				require.NotContains(t, text, pw)
				require.NotContains(t, text, tail)
				require.NotContains(t, text, "%zz")
			}
		})
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"redis://127.0.0.1:6379/0":               "redis://127.0.0.1:6379/0",
		"redis://:secret@host:6379/0":            "redis://:xxxxx@host:6379/0",
		"rediss://alice:secret@host:6379/0":      "rediss://alice:xxxxx@host:6379/0",
		"redis://user:PW@SECRET@host/0":          "redis://user:xxxxx@host/0",
		"redis://secret@host:6379":               "redis://xxxxx@host:6379",
		"redis://:se/cr:et@host:6379":            "redis://:xxxxx@host:6379",
		":secret@host:6379":                      ":xxxxx@host:6379",
		"secret@host":                            "xxxxx@host",
		"unix://:secret@/run/redis.sock?db=1":    "unix://:xxxxx@/run/redis.sock?db=1",
		"redis://host:6379/0?client_name=a@b":    "redis://host:xxxxx@b", // over-redacts, never under
		"":                                       "",
		"redis://:p%40ss@host:6379/0?db=1&x=y@z": "redis://:xxxxx@z",
	} {
		require.Equal(t, want, redisconf.Redact(in), in)
	}
}

func TestTopology(t *testing.T) {
	t.Parallel()
	require.Equal(t, redisconf.Single, redisconf.Config{}.Topology())
	require.Equal(t, redisconf.Single, redisconf.Config{URL: "redis://h:1/0", AckReplicas: 2}.Topology())
	require.Equal(t, redisconf.Cluster, redisconf.Config{ClusterAddrs: []string{"h:1"}}.Topology())
	require.Equal(t, redisconf.Sentinel, redisconf.Config{SentinelAddrs: []string{"h:1"}, SentinelMaster: "m"}.Topology())
	require.Equal(t, redisconf.Sentinel, redisconf.Config{SentinelMaster: "m"}.Topology(), "half a Sentinel config still reads as Sentinel (and fails Validate)")
}

func TestString(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cfg  redisconf.Config
		want string
	}{
		{redisconf.Config{}, "redis://127.0.0.1:6379/0"},
		{redisconf.Config{URL: "rediss://:pw@10.0.0.5:6380/2", AckReplicas: 1}, "rediss://:xxxxx@10.0.0.5:6380/2 (ack replicas 1)"},
		{redisconf.Config{ClusterAddrs: []string{"a:1", "b:2"}}, "cluster a:1,b:2"},
		{redisconf.Config{URL: "rediss://app:pw@ignored/0", ClusterAddrs: []string{"a:1"}, AckReplicas: 1}, "cluster a:1 (tls, user app, password, ack replicas 1)"},
		{redisconf.Config{URL: "redis://:pw@ignored/3", SentinelAddrs: []string{"s1:26379", "s2:26379"}, SentinelMaster: "mymaster", SentinelPassword: "spw"},
			"sentinel master mymaster via s1:26379,s2:26379 (db 3, password, sentinel password)"},
		{redisconf.Config{URL: "redis://:pw@h:x", ClusterAddrs: []string{"a:1"}}, "cluster a:1 (invalid REDIS_URL)"},
	} {
		require.Equal(t, tc.want, tc.cfg.String())
	}
}

func TestSettings(t *testing.T) {
	t.Parallel()
	var c redisconf.Config
	type row struct {
		Env, Flag string
		Secret    bool
	}
	var got []row
	for _, s := range c.Settings() {
		got = append(got, row{s.Env, s.Flag, s.Secret})
		require.NotEmpty(t, s.Usage, s.Env)
	}
	require.Equal(t, []row{
		{"REDIS_URL", "redis-url", false},
		{"REDIS_CLUSTER_ADDRS", "redis-cluster-addrs", false},
		{"REDIS_SENTINEL_ADDRS", "redis-sentinel-addrs", false},
		{"REDIS_SENTINEL_MASTER", "redis-sentinel-master", false},
		{"REDIS_SENTINEL_PASSWORD", "", true},
		{"REDIS_ACK_REPLICAS", "redis-ack-replicas", false},
	}, got)

	set := map[string]string{
		"REDIS_URL":               "redis://:pw@h:1/2",
		"REDIS_CLUSTER_ADDRS":     " a:1 , ,b:2,",
		"REDIS_SENTINEL_ADDRS":    "s:3",
		"REDIS_SENTINEL_MASTER":   " m ",
		"REDIS_SENTINEL_PASSWORD": "spw",
		"REDIS_ACK_REPLICAS":      "2",
	}
	for _, s := range c.Settings() {
		require.NoError(t, s.Set(set[s.Env]), s.Env)
	}
	require.Equal(t, redisconf.Config{
		URL: "redis://:pw@h:1/2", ClusterAddrs: []string{"a:1", "b:2"}, SentinelAddrs: []string{"s:3"},
		SentinelMaster: "m", SentinelPassword: "spw", AckReplicas: 2,
	}, c)
	for _, s := range c.Settings() {
		if s.Env == "REDIS_ACK_REPLICAS" {
			for _, bad := range []string{"x", "-1", "1.5", ""} {
				require.ErrorContains(t, s.Set(bad), "non-negative integer", bad)
			}
		}
	}
}

func TestFromEnv(t *testing.T) {
	t.Parallel()
	from := func(env map[string]string) (redisconf.Config, error) {
		return redisconf.FromEnv(func(k string) string { return env[k] })
	}

	c, err := from(nil)
	require.NoError(t, err)
	require.Equal(t, redisconf.Config{}, c)
	require.Equal(t, redisconf.Single, c.Topology())

	c, err = from(map[string]string{"REDIS_URL": "rediss://:pw@ignored:6379/0", "REDIS_CLUSTER_ADDRS": "a:7000,b:7000", "REDIS_ACK_REPLICAS": "1"})
	require.NoError(t, err)
	require.Equal(t, redisconf.Cluster, c.Topology())
	require.Equal(t, []string{"a:7000", "b:7000"}, c.ClusterAddrs)
	require.Equal(t, 1, c.AckReplicas)

	c, err = from(map[string]string{"REDIS_SENTINEL_ADDRS": "s1:26379,s2:26379", "REDIS_SENTINEL_MASTER": "mymaster", "REDIS_SENTINEL_PASSWORD": "spw"})
	require.NoError(t, err)
	require.Equal(t, redisconf.Sentinel, c.Topology())
	require.Equal(t, "spw", c.SentinelPassword)

	// Setter errors and Validate's problems, all at once.
	_, err = from(map[string]string{"REDIS_ACK_REPLICAS": "many", "REDIS_SENTINEL_MASTER": "m", "REDIS_URL": "redis://:S3CR3T@h:x/0"})
	requireProblems(t, err,
		[]string{"REDIS_ACK_REPLICAS:", `"many"`},
		[]string{"REDIS_SENTINEL_ADDRS: required with REDIS_SENTINEL_MASTER"},
		[]string{"REDIS_URL:"},
	)
	require.False(t, strings.Contains(err.Error(), "S3CR3T"))
}
