package proctest

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"testing"
	"time"
)

// CLIResult is one finished run of the enqueue CLI.
type CLIResult struct {
	// Args are the arguments it ran with.
	Args []string
	// Stdout and Stderr are what it printed on each.
	Stdout, Stderr string
	// Code is its exit status.
	Code int
}

// cliTimeout bounds one RunCLI.
const cliTimeout = 2 * time.Minute

// RunCLI runs the enqueue CLI with args against the rig's Redis
// (RedisEnv, then env: later entries win) until it exits, at most two
// minutes, and returns what it printed and its exit status. A CLI that
// cannot be started or does not exit in time fails t.
func (r *Rig) RunCLI(t *testing.T, env []string, args ...string) CLIResult {
	t.Helper()
	bin := Bin(t, "enqueue") // build first: the timeout is for the run alone
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir()}, r.RedisEnv()...), env...)
	dieWithParent(cmd)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := CLIResult{Args: args, Stdout: stdout.String(), Stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("proctest: enqueue %q did not exit within %s:\n%s%s", args, cliTimeout, tail(res.Stdout, 2000), tail(res.Stderr, 2000))
	case errors.As(err, &ee):
		res.Code = ee.ExitCode()
	case err != nil:
		t.Fatalf("proctest: enqueue %q: %v", args, err)
	}
	return res
}

// StartCLI starts the enqueue CLI with args against the rig's Redis
// (RedisEnv, then env), for a run that the test watches while it goes
// (a bulk during a failover); it is killed at cleanup if still running.
func (r *Rig) StartCLI(t *testing.T, env []string, args ...string) *Proc {
	t.Helper()
	return Start(t, Bin(t, "enqueue"), append(r.RedisEnv(), env...), args...)
}
