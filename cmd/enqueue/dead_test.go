package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops"
)

var (
	deadDismiss = meetops.Dismiss{AppID: "demo-app", RoomID: "room-404"}
	deadCancel  = meetops.Cancel{ConferenceID: "900000404"}
	deadReclaim = meetops.Reclaim{Account: "member-alice", VMRIDs: []string{"vmr-unassigned-1"}}
	deadDisable = meetops.Disable{AppID: "demo-app-missing"}
)

// deadLetters fills the bundle with four dead letters, one of them
// trimmed from asynq's archive, and returns their keys.
func (b *testBundle) deadLetters(t *testing.T) (dismiss, cancel, reclaim, disable string) {
	t.Helper()
	dismiss = b.archive(t, deadDismiss, map[string]any{"reason": "http_4xx", "status": 404, "error_code": "RTC.00001003",
		"error_msg": "The room does not exist.", "request_id": "req-1", "attempts": 1})
	cancel = "cancel-missing-conf"
	b.addDeadLetter(t, cancel, deadCancel, "critical", map[string]any{"reason": "http_4xx", "status": 400,
		"error_code": "MMC.111070005", "error_msg": "The conference does not exist.", "request_id": "req-2", "attempts": 1})
	reclaim = b.archive(t, deadReclaim, map[string]any{"reason": "retries_exhausted", "status": 503, "error_code": "",
		"error_msg": "upstream answered 503 Service Unavailable: the VMR service is being upgraded, please try again in a few minutes", "attempts": 13})
	disable = b.archive(t, deadDisable, map[string]any{"reason": "auth", "status": 401, "error_code": "USG.000000004",
		"error_msg": "token expired", "request_id": "req-4", "attempts": 1})
	return dismiss, cancel, reclaim, disable
}

func TestDeadGolden(t *testing.T) {
	t.Parallel()
	b := setup(t)
	dismiss, cancel, _, disable := b.deadLetters(t)
	var results []result
	step := func(code int, args ...string) {
		t.Helper()
		r := b.run(t, args...)
		requireCode(t, r, code)
		results = append(results, r)
	}
	step(exitOK, "dead", "list")
	step(exitOK, "dead", "list", "-o", "json")
	step(exitOK, "dead", "list", "--op", "cancel")
	step(exitOK, "dead", "list", "--reason", "retries_exhausted", "-o", "json")
	step(exitOK, "dead", "show", dismiss)
	step(exitOK, "dead", "show", cancel, "-o", "json")
	step(exitOK, "dead", "requeue", dismiss)
	step(exitOK, "dead", "requeue", "--all", "--op", "cancel", "-o", "json")
	step(exitOK, "dead", "purge", disable, "--yes")
	step(exitOK, "dead", "purge", "--all", "--yes", "-o", "json")
	step(exitOK, "dead", "list")
	step(exitOK, "dead", "list", "-o", "json")
	golden(t, "dead", results...)
}

// Requeue puts the task back to pending with a fresh retry budget, also
// when asynq trimmed its archive copy, and forgets the dead letter.
func TestDeadRequeue(t *testing.T) {
	t.Parallel()
	b := setup(t)
	dismiss, cancel, _, _ := b.deadLetters(t)
	r := b.run(t, "dead", "requeue", dismiss, cancel)
	requireCode(t, r, exitOK)
	for _, k := range []struct{ queue, key string }{{"default", dismiss}, {"critical", cancel}} {
		ti, err := b.insp.GetTaskInfo(k.queue, k.key)
		require.NoError(t, err, k.key)
		require.Equal(t, asynq.TaskStatePending, ti.State)
		require.Zero(t, ti.Retried)
		_, err = b.client.DeadLetter(b.ctx, k.key)
		require.ErrorIs(t, err, meetops.ErrNotFound)
	}
	st := b.run(t, "status", cancel, "-o", "json")
	requireCode(t, st, exitOK)
	require.Contains(t, st.stdout, `"state":"pending"`)
}

func TestDeadPurgeConfirmation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	dismiss, _, _, _ := b.deadLetters(t)

	r := b.run(t, "dead", "purge", dismiss)
	requireCode(t, r, exitUsage)
	require.Equal(t, "enqueue: refusing to purge without confirmation: standard input is not a terminal; pass --yes\n"+
		"Run 'enqueue dead purge --help' for usage.\n", r.stderr)

	r = b.runWith(t, invocation{terminal: true, stdin: "n\n"}, "dead", "purge", "--all")
	requireCode(t, r, exitFailure)
	require.Equal(t, "Purge 4 dead letters? This cannot be undone. [y/N] enqueue: nothing purged\n", r.stderr)
	n, err := b.client.CountDeadLetters(b.ctx, meetops.DeadLetterFilter{})
	require.NoError(t, err)
	require.EqualValues(t, 4, n)

	r = b.runWith(t, invocation{terminal: true, stdin: "y\n"}, "dead", "purge", "--all", "--reason", "http_4xx")
	requireCode(t, r, exitOK)
	require.Equal(t, "Purge 2 dead letters? This cannot be undone. [y/N] ", r.stderr)
	require.Equal(t, "purged 2 dead letters\n", r.stdout)
	_, err = b.insp.GetTaskInfo("default", dismiss)
	require.ErrorIs(t, err, asynq.ErrTaskNotFound, "asynq's archive copy is gone too")
}

func TestDeadErrors(t *testing.T) {
	t.Parallel()
	b := setup(t)
	dismiss, _, _, _ := b.deadLetters(t)
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"no subcommand", []string{"dead"}, exitUsage, "enqueue: enqueue dead needs a command: list, purge, requeue, show\n"},
		{"unknown subcommand", []string{"dead", "bury"}, exitUsage, "enqueue: unknown command \"bury\" for \"enqueue dead\"\n"},
		{"requeue nothing", []string{"dead", "requeue"}, exitUsage, "enqueue: give the KEYs of the dead letters, or --all\n"},
		{"keys and all", []string{"dead", "purge", dismiss, "--all", "--yes"}, exitUsage, "enqueue: give KEYs or --all, not both\n"},
		{"keys and filter", []string{"dead", "requeue", dismiss, "--op", "dismiss"}, exitUsage, "enqueue: --op and --reason select with --all; drop them when naming KEYs\n"},
		{"unknown op", []string{"dead", "list", "--op", "explode"}, exitUsage, "enqueue: op: unknown operation \"explode\" (want one of dismiss, disable, cancel, hangup, reclaim)\n"},
		{"unknown reason", []string{"dead", "requeue", "--all", "--reason", "boredom"}, exitUsage, "enqueue: reason: unknown reason \"boredom\" (want one of http_4xx, invalid_payload, retries_exhausted, auth)\n"},
		{"show unknown", []string{"dead", "show", "nope"}, exitFailure, "enqueue: no dead letter with key \"nope\": not found\n"},
		{"requeue unknown", []string{"dead", "requeue", "nope", dismiss}, exitFailure, "enqueue: nope: no dead letter with this key: not found\n"},
		{"purge unknown", []string{"dead", "purge", "nope", "--yes"}, exitFailure, "enqueue: nope: no dead letter with this key: not found\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := b.run(t, tc.args...)
			requireCode(t, r, tc.code)
			require.True(t, strings.HasPrefix(r.stderr, tc.stderr), "stderr:\n%s", r.stderr)
		})
	}
}

// An upstream message (or code) with terminal escape sequences is shown
// escaped in every human output — the dead-letter table, show, status and
// a requeue failure on stderr — and exact in JSON.
func TestHostileUpstreamTextIsEscapedForTerminals(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const hostile = "gone\x1b]0;pwned\x07\x1b[2J\u009b31m"
	key := b.archive(t, deadDismiss, map[string]any{"reason": "http_4xx", "status": 404,
		"error_code": "RTC.\x1b[5m1", "error_msg": hostile, "attempts": 1})
	b.addDeadLetter(t, "bad\x1b[1mkey", meetops.Dismiss{AppID: "a", RoomID: ".."}, "default",
		map[string]any{"reason": "invalid_payload", "error_msg": hostile, "attempts": 1})
	for _, args := range [][]string{
		{"dead", "list"},
		{"dead", "show", key},
		{"status", "bad\x1b[1mkey"},
		{"dead", "requeue", "bad\x1b[1mkey"},
	} {
		r := b.run(t, args...)
		for _, out := range []string{r.stdout, r.stderr} {
			require.NotContains(t, out, "\x1b", "%v: raw ESC in %q", args, out)
			require.NotContains(t, out, "\x07", "%v", args)
			require.NotContains(t, out, "\u009b", "%v", args)
		}
		require.Contains(t, r.stdout+r.stderr, `\x1b`, "%v: shown escaped", args)
	}
	r := b.run(t, "dead", "show", key, "-o", "json")
	requireCode(t, r, exitOK)
	var d meetops.DeadLetter
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &d))
	require.Equal(t, hostile, d.ErrorMsg, "JSON output stays exact")
}
