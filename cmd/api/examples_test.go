package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops"
	"github.com/meetops/meetops/internal/api/apitest"
	"github.com/meetops/meetops/internal/deadletter"
	"github.com/meetops/meetops/internal/tasks"
)

// seedDeadLetters records ops as dead letters (as the worker does when
// the simulator refuses them) in the API's Redis, and returns their keys.
func (p *apiProc) seedDeadLetters(t *testing.T, ops ...meetops.Op) []string {
	t.Helper()
	ro, err := redis.ParseURL(p.redisURL)
	require.NoError(t, err)
	rdb := redis.NewClient(ro)
	defer rdb.Close()
	store := deadletter.New(rdb, deadletter.Options{})
	var keys []string
	for i, op := range ops {
		payload, err := json.Marshal(op)
		require.NoError(t, err)
		key := tasks.Key(op)
		require.NoError(t, store.Add(t.Context(), deadletter.Record{Key: key, Type: op.TaskType(), Queue: "default", Reason: meetops.ReasonHTTP4xx,
			Payload: payload, Result: json.RawMessage(`{"outcome":"dead_letter","reason":"http_4xx","status":404,"error_code":"RTC.00001003","attempts":1}`),
			DeadAt: time.Now().Add(time.Duration(i) * time.Millisecond)}))
		keys = append(keys, key)
	}
	return keys
}

// The operations of examples/ops.jsonl the simulator refuses, whose keys
// the README's requeue and purge examples use.
var refusedOps = []meetops.Op{meetops.Dismiss{AppID: "demo-app-missing", RoomID: "room-001"}, meetops.Disable{AppID: "demo-app-missing"}}

// examples/python/enqueue.py, standard library only, against a real api
// process through a proxy that checks every exchange against the OpenAPI
// document: one operation, a batch from a JSONL file, status polling, the
// dead letters page after page.
func TestPythonExample(t *testing.T) {
	t.Parallel()
	python := requireTool(t, "python3", "MEETOPS_REQUIRE_PYTHON")
	p := startAPI(t)
	proxy := apitest.Load(t).NewProxy(t, p.url)
	dead := p.seedDeadLetters(t, append(refusedOps, meetops.Dismiss{AppID: "python-example", RoomID: "gone"})...)
	root := moduleRoot(t)
	py := func(token string, args ...string) (string, string, error) {
		cmd := exec.Command(python, append([]string{filepath.Join(root, "examples/python/enqueue.py")}, args...)...)
		cmd.Dir = root
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "MEETOPS_API=" + proxy.URL, "MEETOPS_TOKEN=" + token}
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		return out.String(), errOut.String(), err
	}
	decode := func(s string) map[string]any {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(s), &m), s)
		return m
	}

	out, errOut, err := py(p.tokens["svc"], "one")
	require.NoError(t, err, errOut)
	one := decode(out)
	require.Equal(t, "dismiss:322599b02d2d9687eab31a5c938aded0", one["key"])
	require.EqualValues(t, 201, one["http_status"])
	out, _, err = py(p.tokens["svc"], "one")
	require.NoError(t, err)
	require.Equal(t, true, decode(out)["duplicate"])
	require.EqualValues(t, 200, decode(out)["http_status"])

	out, errOut, err = py(p.tokens["svc"], "batch", "examples/ops.jsonl", "--label", "from python")
	require.NoError(t, err, errOut)
	summary := decode(out)
	lines, err := os.ReadFile(filepath.Join(root, "examples/ops.jsonl"))
	require.NoError(t, err)
	require.EqualValues(t, bytes.Count(bytes.TrimSpace(lines), []byte("\n"))+1, summary["total"])
	require.EqualValues(t, 0, summary["invalid"])
	out, errOut, err = py(p.tokens["svc"], "batch-status", summary["batch_id"].(string))
	require.NoError(t, err, errOut)
	require.Equal(t, "from python", decode(out)["label"])
	require.Equal(t, "svc", decode(out)["origin"])

	// No worker runs here: the poll gives up after --wait, pending.
	out, errOut, err = py(p.tokens["svc"], "status", "dismiss:322599b02d2d9687eab31a5c938aded0", "--wait", "1")
	require.NoError(t, err, errOut)
	require.Equal(t, "pending", decode(out)["state"])
	// A dead letter is finished: the poll returns at once. (The batch
	// enqueued the operations of the other two again.)
	out, _, err = py(p.tokens["svc"], "status", dead[2], "--wait", "30")
	require.NoError(t, err)
	require.Equal(t, "archived", decode(out)["state"])

	out, errOut, err = py(p.tokens["ops"], "dead", "--limit", "1")
	require.NoError(t, err, errOut)
	var listed []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		listed = append(listed, decode(line)["key"].(string))
	}
	require.Equal(t, dead, listed, "page after page of one")

	// Errors are reported from the problem, exit 1.
	_, errOut, err = py(p.tokens["svc"], "dead")
	require.Error(t, err)
	require.Contains(t, errOut, "403 forbidden")
	_, errOut, err = py("mo_wrong", "one")
	require.Error(t, err)
	require.Contains(t, errOut, "401 unauthorized")
	require.Contains(t, proxy.Seen(), "createBatch")
}

// apiExample is one block of README.md's HTTP API section.
type apiExample struct {
	name    string
	status  string
	invalid bool
	script  string
}

var exampleRE = regexp.MustCompile("(?s)<!-- api-example: (\\S+) status=(\\d+)( invalid)? -->\n```sh\n(.*?)```")

func readmeExamples(t *testing.T) []apiExample {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(moduleRoot(t), "README.md"))
	require.NoError(t, err)
	var out []apiExample
	for _, m := range exampleRE.FindAllStringSubmatch(string(b), -1) {
		out = append(out, apiExample{name: m[1], status: m[2], invalid: m[3] != "", script: m[4]})
	}
	require.GreaterOrEqual(t, len(out), 15)
	return out
}

// README.md's curl examples run as they are, in order, against a real api
// process through a proxy that checks every exchange against the OpenAPI
// document; each answers the status its marker says, and together they
// reach every operation of the document.
func TestREADMECurlExamples(t *testing.T) {
	t.Parallel()
	requireTool(t, "curl", "MEETOPS_REQUIRE_CURL")
	bash := requireTool(t, "bash", "MEETOPS_REQUIRE_CURL")
	p := startAPI(t)
	spec := apitest.Load(t)
	proxy := spec.NewProxy(t, p.url)
	p.seedDeadLetters(t, refusedOps...)
	// The examples write api.yaml (the document) in the working directory:
	// run them in a copy of what they read.
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "examples"), 0o755))
	ops, err := os.ReadFile(filepath.Join(moduleRoot(t), "examples/ops.jsonl"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "examples/ops.jsonl"), ops, 0o600))

	env := []string{"PATH=" + os.Getenv("PATH"), "API=" + proxy.URL, "TOKEN=" + p.tokens["svc"], "ADMIN_TOKEN=" + p.tokens["ops"]}
	// Each curl prints the status on a line of its own after its output.
	const prelude = "set -euo pipefail\ncurl() { command curl --write-out '\\n%{http_code}\\n' \"$@\"; }\n"
	batchID := ""
	for _, ex := range readmeExamples(t) {
		t.Run(ex.name, func(t *testing.T) {
			proxy.ExpectInvalid(ex.invalid)
			defer proxy.ExpectInvalid(false)
			cmd := exec.Command(bash, "-c", prelude+ex.script)
			cmd.Dir = dir
			cmd.Env = append(env, "BATCH_ID="+batchID)
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, "%s\n%s", ex.script, out)
			lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
			require.Equal(t, ex.status, lines[len(lines)-1], "%s\n%s", ex.script, out)
			for _, line := range lines {
				var m map[string]any
				if json.Unmarshal([]byte(line), &m) == nil && m["batch_id"] != nil && m["pending"] == nil {
					batchID = m["batch_id"].(string)
				}
			}
			for _, secret := range p.tokens {
				require.NotContains(t, string(out), secret, "no token in an answer")
			}
		})
	}
	require.Equal(t, spec.OperationIDs(), proxy.Seen(), "every operation of the document has a README example")
	_ = fmt.Sprint
}
