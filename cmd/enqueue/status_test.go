package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestStatusGolden(t *testing.T) {
	t.Parallel()
	b := setup(t)
	requireCode(t, b.run(t, "cancel", "--conference-id", "900000001", "--key", "cancel-weekly", "--at", "2030-01-06T18:00:00Z", "--max-retry", "4"), exitOK)
	requireCode(t, b.run(t, "dismiss", "--app-id", "demo-app", "--room-id", "room-001", "--queue", "critical"), exitOK)
	dead := b.archive(t, deadDisable, map[string]any{"reason": "http_4xx", "status": 404, "error_code": "RTC.00001003", "error_msg": "app not found", "request_id": "req-9", "attempts": 1})
	requireCode(t, b.run(t, "dead", "purge", dead, "--yes"), exitOK)
	b.addDeadLetter(t, dead, deadDisable, "default", map[string]any{"reason": "http_4xx", "status": 404, "error_code": "RTC.00001003", "error_msg": "app not found", "request_id": "req-9", "attempts": 1})

	var results []result
	for _, key := range []string{"cancel-weekly", "dismiss:322599b02d2d9687eab31a5c938aded0", dead} {
		for _, out := range []string{"text", "json"} {
			r := b.run(t, "status", key, "-o", out)
			requireCode(t, r, exitOK)
			results = append(results, r)
		}
	}
	golden(t, "status", results...)
}

func TestStatusErrors(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.run(t, "status", "dismiss:nope")
	requireCode(t, r, exitFailure)
	require.Equal(t, "enqueue: no task with key \"dismiss:nope\": not found\n", r.stderr)

	r = b.run(t, "status")
	requireCode(t, r, exitUsage)
	require.True(t, strings.HasPrefix(r.stderr, "enqueue: accepts 1 arg(s), received 0\n"), r.stderr)
}
