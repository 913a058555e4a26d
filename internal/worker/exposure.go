package worker

import (
	"net"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/meetops/meetops/internal/redisconf"
)

// exposureWarnings lists what in c sends secrets or tasks over the network
// unprotected, for a warning at start-up: an upstream endpoint over plain
// http:// (credentials and tokens in clear; fine for the simulator, so dev
// mode is exempt), and a Redis off loopback without a password (anyone on
// the network can read and change the queues).
func exposureWarnings(c Config) []string {
	var out []string
	if !c.Dev {
		for _, e := range []struct{ env, url string }{
			{"RTC_ENDPOINT", c.API.RTCEndpoint}, {"IAM_ENDPOINT", c.API.IAMEndpoint}, {"MEETING_ENDPOINT", c.API.MeetingEndpoint},
		} {
			if strings.HasPrefix(strings.ToLower(e.url), "http://") {
				out = append(out, e.env+" is plain http:// ("+e.url+"): credentials and tokens cross the network unencrypted; use https://")
			}
		}
	}
	o, err := redis.ParseURL(c.Redis.URL)
	if err != nil || c.Redis.URL == "" {
		o = &redis.Options{Addr: "127.0.0.1:6379"}
	}
	if o.Password != "" {
		return out
	}
	addrs := []string{o.Addr}
	switch c.Redis.Topology() {
	case redisconf.Cluster:
		addrs = c.Redis.ClusterAddrs
	case redisconf.Sentinel:
		addrs = c.Redis.SentinelAddrs
	}
	for _, a := range addrs {
		if !loopbackAddr(a) {
			out = append(out, "Redis at "+a+" is not on loopback and has no password (REDIS_URL): anyone who reaches it can read and change every task; set requirepass and put the password in REDIS_URL")
			break
		}
	}
	return out
}

// loopbackAddr reports whether host:port (or a bare host) names this
// machine: localhost or a loopback IP. A Unix socket path counts as local.
func loopbackAddr(addr string) bool {
	if strings.HasPrefix(addr, "/") {
		return true
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}
