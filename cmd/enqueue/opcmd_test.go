package main

import (
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestOperationsGolden(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"dismiss", []string{"dismiss", "--app-id", "demo-app", "--room-id", "room-001"}},
		{"disable", []string{"disable", "--app-id", "demo-app-2", "--key", "offboarding-4711", "--queue", "critical", "--max-retry", "3"}},
		{"cancel", []string{"cancel", "--conference-id", "900000010", "--user-uuid", "u-1", "--end-ongoing", "--at", "2030-01-06T18:00:00Z"}},
		{"hangup", []string{"hangup", "--conference-id", "900000010", "--participant-ids", "p-002,p-001", "--participant-ids", "p-003"}},
		{"reclaim", []string{"reclaim", "--account", "tp-user-bob", "--account-type", "1", "--vmr-ids", "vmr-bob-1,vmr-bob-2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var results []result
			for _, args := range [][]string{tc.args, append(tc.args, "-o", "json")} {
				b := setup(t) // new, then duplicate, in each form
				for range 2 {
					r := b.run(t, args...)
					requireCode(t, r, exitOK)
					results = append(results, r)
				}
			}
			golden(t, "op-"+tc.name, results...)
		})
	}
}

func TestOperationExitCodes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	requireCode(t, b.run(t, "disable", "--app-id", "a", "--key", "k1"), exitOK)

	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"duplicate", []string{"disable", "--app-id", "a", "--key", "k1"}, exitOK, ""},
		{"key reused", []string{"disable", "--app-id", "b", "--key", "k1"}, exitKeyReused,
			`enqueue: key "k1" in queue "default" holds disable {"app_id":"a"}, not disable {"app_id":"b"}: idempotency key already used for a different operation` + "\n"},
		{"invalid ID", []string{"dismiss", "--app-id", "", "--room-id", ".."}, exitUsage,
			"enqueue: invalid: --app-id: must not be empty; --room-id: must not be \"..\"\n"},
		{"invalid list element", []string{"hangup", "--conference-id", "c", "--participant-ids", "p-1,"}, exitUsage,
			"enqueue: invalid: --participant-ids[1]: must not be empty\n"},
		{"invalid account type", []string{"reclaim", "--account", "a", "--account-type", "2", "--vmr-ids", "v"}, exitUsage,
			"enqueue: invalid: --account-type: must be 0 or 1, got 2\n"},
		{"invalid key", []string{"disable", "--app-id", "a", "--key", "a b"}, exitUsage,
			"enqueue: invalid: --key: must not contain white space\n"},
		{"negative delay", []string{"disable", "--app-id", "a", "--in", "-1m"}, exitUsage,
			"enqueue: invalid: --in: must not be negative, got -1m0s\n"},
		{"negative retries", []string{"disable", "--app-id", "a", "--max-retry", "-2"}, exitUsage,
			"enqueue: invalid: --max-retry: must not be negative, got -2\n"},
		{"missing flag", []string{"dismiss", "--app-id", "a"}, exitUsage,
			"enqueue: required flag(s) \"room-id\" not set\nRun 'enqueue dismiss --help' for usage.\n"},
		{"unknown flag", []string{"disable", "--app", "a"}, exitUsage,
			"enqueue: unknown flag: --app\nRun 'enqueue disable --help' for usage.\n"},
		{"bad flag value", []string{"reclaim", "--account", "a", "--account-type", "x", "--vmr-ids", "v"}, exitUsage,
			"enqueue: invalid argument \"x\" for \"--account-type\" flag: strconv.ParseInt: parsing \"x\": invalid syntax\nRun 'enqueue reclaim --help' for usage.\n"},
		{"argument", []string{"disable", "--app-id", "a", "extra"}, exitUsage,
			"enqueue: unknown command \"extra\" for \"enqueue disable\"\nRun 'enqueue disable --help' for usage.\n"},
		{"in and at", []string{"disable", "--app-id", "a", "--in", "1m", "--at", "2030-01-01T00:00:00Z"}, exitUsage,
			"enqueue: --in and --at exclude each other\nRun 'enqueue disable --help' for usage.\n"},
		{"bad at", []string{"disable", "--app-id", "a", "--at", "tomorrow"}, exitUsage,
			"enqueue: --at must be an RFC 3339 time like 2030-01-06T09:00:00Z, got \"tomorrow\"\nRun 'enqueue disable --help' for usage.\n"},
		{"bad output", []string{"disable", "--app-id", "a", "-o", "yaml"}, exitUsage,
			"enqueue: --output must be text or json, got \"yaml\"\nRun 'enqueue disable --help' for usage.\n"},
		{"unknown command", []string{"explode"}, exitUsage,
			"enqueue: unknown command \"explode\" for \"enqueue\"\nRun 'enqueue --help' for usage.\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := b.run(t, tc.args...)
			requireCode(t, r, tc.code)
			if tc.code != exitOK {
				require.Equal(t, tc.stderr, r.stderr)
				require.Empty(t, r.stdout)
			}
		})
	}
}

// Validation happens before connecting: a bad operation is exit 2 even
// with Redis down.
func TestValidationNeedsNoRedis(t *testing.T) {
	t.Parallel()
	r := runEnqueue(t, invocation{}, "--redis-url", "redis://127.0.0.1:1/0", "dismiss", "--app-id", "a", "--room-id", ".")
	requireCode(t, r, exitUsage)
}

func TestEveryCommandHasHelpWithAnExample(t *testing.T) {
	t.Parallel()
	for _, cmd := range [][]string{
		{}, {"dismiss"}, {"disable"}, {"cancel"}, {"hangup"}, {"reclaim"}, {"bulk"}, {"status"},
		{"dead"}, {"dead", "list"}, {"dead", "show"}, {"dead", "requeue"}, {"dead", "purge"},
	} {
		r := runEnqueue(t, invocation{}, append(cmd, "--help")...)
		require.Equal(t, exitOK, r.code, "%v", cmd)
		require.Contains(t, r.stdout, "Examples:\n  enqueue ", "%v --help", cmd)
		require.Empty(t, r.stderr)
	}
}

func TestRedisURLFromTheEnvironment(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := runEnqueue(t, invocation{env: map[string]string{"REDIS_URL": b.url}}, "disable", "--app-id", "a")
	requireCode(t, r, exitOK)
	require.EqualValues(t, 1, mustCount(t, b))

	help := runEnqueue(t, invocation{env: map[string]string{"REDIS_URL": "redis://:s3cret@example:6379/0"}}, "--help")
	require.NotContains(t, help.stdout, "s3cret", "--help never shows a password")

	// REDIS_URL_FILE: the URL (with its password) from a file.
	path := writeFile(t, "redis-url", b.url+" \n")
	require.NoError(t, os.Chmod(path, 0o600))
	r = runEnqueue(t, invocation{env: map[string]string{"REDIS_URL_FILE": path}}, "disable", "--app-id", "b")
	requireCode(t, r, exitOK)
	require.Equal(t, unservedDefault, r.stderr, "no word of the file, only that no worker runs")
	require.EqualValues(t, 2, mustCount(t, b))
	r = runEnqueue(t, invocation{env: map[string]string{"REDIS_URL_FILE": path, "REDIS_URL": b.url}}, "disable", "--app-id", "c")
	requireCode(t, r, exitUsage)
	require.Contains(t, r.stderr, "REDIS_URL and REDIS_URL_FILE are both set")
}

func mustCount(t *testing.T, b *testBundle) int {
	t.Helper()
	q, err := b.insp.GetQueueInfo("default")
	require.NoError(t, err)
	return q.Size
}
