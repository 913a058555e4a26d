package api

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func hashLine(name, scope, token string) string {
	sum := sha256.Sum256([]byte(token))
	return name + " " + scope + " sha256:" + hex.EncodeToString(sum[:])
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLoadFromEnvironmentFlagsAndFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "tokens")
	content := "# billing's token\n" + hashLine("billing", "enqueue", "t1") + "  # rotated 2030-01\n\n" + hashLine("ops@oncall", "admin", "t2") + "\n"
	require.NoError(t, os.WriteFile(file, []byte(content), 0o600))
	c, err := Load([]string{"-api-addr", "0.0.0.0:9000", "-log-format", "text"}, env(map[string]string{
		"API_TOKENS_FILE": file, "API_ADDR": "127.0.0.1:1", "API_RATE_LIMIT": "5/m", "CALLBACK_ALLOW_HOSTS": "Hooks.Example.com, 10.0.0.5",
		"DEDUP_WINDOW": "2h", "LOG_LEVEL": "debug", "REDIS_URL": "redis://:pw@10.0.0.9:6379/2",
	}), io.Discard)
	require.NoError(t, err)
	require.Equal(t, "0.0.0.0:9000", c.Addr, "flags win")
	require.Equal(t, "text", c.LogFormat)
	require.Equal(t, "5/m", c.RateLimit)
	require.Equal(t, []string{"hooks.example.com", "10.0.0.5"}, c.CallbackAllowHosts)
	require.Equal(t, 2*time.Hour, c.DedupWindow)
	require.Len(t, c.Tokens, 2)
	require.Equal(t, "billing", c.Tokens[0].Name)
	require.Equal(t, ScopeAdmin, c.Tokens[1].Scope)
	require.Equal(t, sha256.Sum256([]byte("t2")), c.Tokens[1].Hash)
	require.NoError(t, c.WithDefaults().Validate())
	require.NotContains(t, c.String(), "pw", "no password in the start-up line")
	require.NotContains(t, c.String(), hex.EncodeToString(c.Tokens[0].Hash[:]), "no hash either")

	// API_TOKENS: the same lines, separated by commas.
	c, err = Load(nil, env(map[string]string{"API_TOKENS": hashLine("a", "enqueue", "x") + "," + hashLine("b", "admin", "y")}), io.Discard)
	require.NoError(t, err)
	require.Len(t, c.Tokens, 2)
	c = c.WithDefaults()
	require.Equal(t, DefaultAddr, c.Addr)
	require.Equal(t, DefaultRateLimit, c.RateLimit)
	require.Equal(t, "json", c.LogFormat)
}

// Every problem at once, one line each, each naming its variable; no
// line quotes a token line's hash field (it may be a token put there by
// mistake).
func TestEveryProblemIsReportedOnceOneLineEach(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "tokens")
	require.NoError(t, os.WriteFile(file, []byte("svc enqueue mo_THIS-IS-A-REAL-TOKEN\nsvc superuser sha256:00\nbad/name admin sha256:"+strings.Repeat("a", 64)+"\n"+hashLine("x", "admin", "1")+" extra\n"), 0o644))
	c, err := Load(nil, env(map[string]string{"API_TOKENS_FILE": file, "DEDUP_WINDOW": "forever"}), io.Discard)
	require.Error(t, err)
	err = errors.Join(err, c.WithDefaults().Validate())
	_, verr := Load(nil, env(map[string]string{"API_TOKENS": "x", "API_TOKENS_FILE": file}), io.Discard)
	c2, _ := Load(nil, env(map[string]string{"API_ADDR": "nowhere", "API_RATE_LIMIT": "lots", "LOG_LEVEL": "loud", "LOG_FORMAT": "xml",
		"REDIS_CLUSTER_ADDRS": "h:1", "REDIS_SENTINEL_MASTER": "m"}), io.Discard)
	err = errors.Join(err, verr, c2.WithDefaults().Validate())
	lines := strings.Split(err.Error(), "\n")
	want := []string{
		"API_TOKENS_FILE: line 1: token svc: want sha256:HEX, the token's SHA-256, never the token itself",
		"API_TOKENS_FILE: line 2: token svc: scope must be enqueue or admin, got \"superuser\"",
		"API_TOKENS_FILE: line 2: token svc: want sha256: and 64 hex digits",
		"API_TOKENS_FILE: line 2: token svc: the name is already used on line 1",
		"API_TOKENS_FILE: line 3: name may hold only A-Z a-z 0-9 . _ @ -",
		"API_TOKENS_FILE: line 4: want NAME SCOPE sha256:HEX, got 4 fields",
		"DEDUP_WINDOW: want a duration like 30s or 24h, got \"forever\"",
		"API_TOKENS_FILE or API_TOKENS: no tokens, so nobody could use the API; add a line NAME SCOPE sha256:HEX (`api token NAME SCOPE` makes one)",
		"API_TOKENS and API_TOKENS_FILE are both set; use one",
		"REDIS_CLUSTER_ADDRS and REDIS_SENTINEL_MASTER: set one topology, Redis Cluster or Sentinel, not both",
		"REDIS_SENTINEL_ADDRS: required with REDIS_SENTINEL_MASTER (the sentinels' host:port addresses)",
		"API_ADDR: want host:port, got \"nowhere\"",
		"API_TOKENS_FILE or API_TOKENS: no tokens, so nobody could use the API; add a line NAME SCOPE sha256:HEX (`api token NAME SCOPE` makes one)",
		"API_RATE_LIMIT: want N/s, N/m, N/h or off (N ≥ 1), got \"lots\"",
		"LOG_LEVEL: want debug, info, warn or error, got \"loud\"",
		"LOG_FORMAT: want json or text, got \"xml\"",
	}
	require.Equal(t, want, lines)
	require.NotContains(t, err.Error(), "THIS-IS-A-REAL-TOKEN")
	require.Equal(t, []string{"API_TOKENS_FILE: " + file + " is readable by everyone (mode 0644): chmod 600 it"}, c.Warnings())
}

func TestLoadCommandLine(t *testing.T) {
	t.Parallel()
	var usage strings.Builder
	_, err := Load([]string{"-h"}, env(nil), &usage)
	require.ErrorIs(t, err, flag.ErrHelp)
	for _, s := range []string{"-api-addr", "-api-rate-limit", "-redis-url", "-callback-allow-hosts", "-dedup-window", "API_TOKENS_FILE", "api token NAME"} {
		require.Contains(t, usage.String(), s)
	}
	require.NotContains(t, usage.String(), "-api-tokens ", "no flag for the tokens")
	_, err = Load([]string{"-nope"}, env(nil), io.Discard)
	require.ErrorIs(t, err, ErrUsage)
	_, err = Load([]string{"stray"}, env(nil), io.Discard)
	require.ErrorIs(t, err, ErrUsage)
}

// Every variable of the settings table is documented where operators look:
// .env.example (set or commented out) and the README.
func TestEverySettingIsDocumented(t *testing.T) {
	t.Parallel()
	envFile, err := os.ReadFile("../../.env.example")
	require.NoError(t, err)
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	var c Config
	for _, s := range c.settings() {
		require.Regexp(t, regexp.MustCompile(`(?m)^#*`+s.env+`=`), string(envFile), ".env.example does not list %s", s.env)
		require.Contains(t, string(readme), "`"+s.env+"`", "README.md does not document %s", s.env)
		if s.secret || s.envOnly {
			require.Empty(t, s.flag, s.env)
		} else {
			require.NotEmpty(t, s.flag, s.env)
		}
	}
	require.Contains(t, string(readme), "`API_TOKENS_FILE`")
	require.Regexp(t, regexp.MustCompile(`(?m)^#*API_TOKENS_FILE=`), string(envFile))
}

func TestTokens(t *testing.T) {
	t.Parallel()
	secret, tok, err := NewToken("billing", ScopeEnqueue)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(secret, "mo_"))
	require.Len(t, secret, 3+43)
	parsed, err := ParseTokens("t", tok.Line(), '\n')
	require.NoError(t, err)
	require.Equal(t, []Token{tok}, parsed)
	other, tok2, _ := NewToken("ops", ScopeAdmin)
	set := tokenSet{tokens: []Token{tok, tok2}}
	got, ok := set.lookup(secret)
	require.True(t, ok)
	require.Equal(t, "billing", got.Name)
	got, ok = set.lookup(other)
	require.True(t, ok)
	require.Equal(t, "ops", got.Name)
	for _, bad := range []string{"", secret[:len(secret)-1], secret + "x", tok.Line(), "sha256:" + hex.EncodeToString(tok.Hash[:])} {
		_, ok := set.lookup(bad)
		require.False(t, ok, bad)
	}
	require.True(t, ScopeAdmin.allows(ScopeEnqueue))
	require.False(t, ScopeEnqueue.allows(ScopeAdmin))
	_, _, err = NewToken("no spaces", ScopeAdmin)
	require.Error(t, err)
	_, _, err = NewToken("x", "root")
	require.Error(t, err)
	// Upper-case hex is the same hash; the same hash twice is refused.
	up := strings.ToUpper(hex.EncodeToString(tok.Hash[:]))
	_, err = ParseTokens("t", "a enqueue sha256:"+up+"\nb admin "+tok.Line()[len("billing enqueue "):], '\n')
	require.ErrorContains(t, err, "t: line 2: token b: the same hash as line 1")
}
