package worker

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/apiclient"
	"github.com/meetops/meetops/internal/redisconf"
)

func TestExposureWarnings(t *testing.T) {
	t.Parallel()
	secure := apiclient.Config{RTCEndpoint: "https://rtc.example", MeetingEndpoint: "https://meeting.example"}
	for _, tc := range []struct {
		name string
		cfg  Config
		want []string
	}{
		{"defaults", Config{}, nil},
		{"https and loopback Redis", Config{API: secure, Redis: redisconf.Config{URL: "redis://127.0.0.1:6379/0"}}, nil},
		{"plain http upstream", Config{API: apiclient.Config{RTCEndpoint: "http://rtc.example", IAMEndpoint: "HTTP://iam.example"}},
			[]string{"RTC_ENDPOINT is plain http://", "IAM_ENDPOINT is plain http://"}},
		{"dev mode uses the simulator over http", Config{Dev: true, API: apiclient.Config{RTCEndpoint: "http://127.0.0.1:9080"}}, nil},
		{"remote Redis without password", Config{Redis: redisconf.Config{URL: "redis://10.0.0.5:6379/0"}},
			[]string{"Redis at 10.0.0.5:6379 is not on loopback and has no password"}},
		{"remote Redis with password", Config{Redis: redisconf.Config{URL: "redis://:pw@10.0.0.5:6379/0"}}, nil},
		{"cluster without password", Config{Redis: redisconf.Config{ClusterAddrs: []string{"127.0.0.1:7000", "redis-2:7000"}}},
			[]string{"Redis at redis-2:7000 is not on loopback"}},
		{"sentinel on localhost", Config{Redis: redisconf.Config{SentinelAddrs: []string{"localhost:26379", "[::1]:26380"}, SentinelMaster: "m"}}, nil},
	} {
		got := exposureWarnings(tc.cfg)
		require.Len(t, got, len(tc.want), "%s: %q", tc.name, got)
		for i, w := range tc.want {
			require.Contains(t, got[i], w, tc.name)
		}
	}
}
