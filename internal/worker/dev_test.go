package worker

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/redisconf"
)

// The dev banner never prints a Redis password: with a REDIS_URL of its
// own it shows the URL redacted and no export line to copy it from.
func TestDevBannerHidesTheRedisPassword(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	cfg := Config{Redis: redisconf.Config{URL: "redis://user:s3cret-pw@127.0.0.1:6390/2"}}
	_, dev, err := StartDev(cfg, &out)
	require.NoError(t, err)
	t.Cleanup(dev.Close)
	require.NotContains(t, out.String(), "s3cret-pw")
	require.Contains(t, out.String(), "redis://user:xxxxx@127.0.0.1:6390/2")

	out.Reset()
	_, dev, err = StartDev(Config{}, &out)
	require.NoError(t, err)
	t.Cleanup(dev.Close)
	require.Contains(t, out.String(), "export REDIS_URL="+dev.RedisURL, "the embedded Redis has no password: its URL is printed to copy")
}
