package reliability_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/proctest"
	"github.com/meetops/meetops/internal/redistest"
	"github.com/meetops/meetops/internal/reliability"
	"github.com/meetops/meetops/internal/tasks"
)

// summary collects every scenario's figures; TestMain prints it.
var summary reliability.Table

// TestMain runs the tests (with a shared redis-server for the ones that
// leave Redis alone), then prints the summary table to stdout (go
// test shows it with -v or when a test fails) and, when
// MEETOPS_RELIABILITY_REPORT names a file, writes it there too.
func TestMain(m *testing.M) {
	code := redistest.Run(m) // the shared server of NewSharedRig
	proctest.RemoveBinaries()
	_ = summary.Fprint(os.Stdout)
	if path := os.Getenv("MEETOPS_RELIABILITY_REPORT"); path != "" {
		if f, err := os.Create(path); err == nil {
			_ = summary.Fprint(f)
			_ = f.Close()
		}
	}
	os.Exit(code)
}

// ctx returns a context cancelled at test cleanup.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return c
}

// tasksDefault are the default task options.
var tasksDefault = tasks.TaskOptions{}

// keyOf is the derived idempotency key of op.
func keyOf(t *testing.T, op tasks.Op) string {
	t.Helper()
	p, err := tasks.Prepare(op, tasks.TaskOptions{})
	require.NoError(t, err)
	return p.Key
}

// report returns the scenario's summary row, which the test fills in as it
// goes; it is added to the summary when the test ends — marked failed if it
// failed, and with the test's time if the test did not set one.
func report(t *testing.T, scenario string) *reliability.Row {
	row := &reliability.Row{Scenario: scenario}
	start := time.Now()
	t.Cleanup(func() {
		if row.Time == 0 {
			row.Time = time.Since(start)
		}
		row.Failed = t.Failed()
		summary.Add(*row)
	})
	return row
}
