package bench

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
)

// The README's table is the JSON's rows, one a line, with the verdict and
// the notes; a "|" inside a cell cannot split it.
func TestWriteMarkdown(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	writeMarkdown(&b, Report{Date: "2026-12-03T07:00:00Z", Machine: "2 cores, X, linux/amd64", Go: "go1.26.8", Redis: "7.0.15", Rows: []Row{
		{Scenario: "2 drain 50000", Metric: "tasks/s", Ours: 3000, Baseline: 3500, Ratio: 0.857, Goal: "time ≤ 1.25× bare", Met: true, Note: "median of 3 runs"},
		{Scenario: "5 memory", Metric: "Redis bytes/completed task", Ours: 1040.4, Baseline: 742, Ratio: 1.402, Goal: "≤ 800 | all-in", Met: false},
	}})
	require.Equal(t, `Run of 2026-12-03T07:00:00Z: 2 cores, X, linux/amd64, Go 1.26.8, redis-server 7.0.15.

| scenario | metric | ours | baseline | ratio | goal | met |
| --- | --- | ---: | ---: | ---: | --- | --- |
| 2 drain 50000 | tasks/s | 3000 | 3500 | 0.86 | time ≤ 1.25× bare | yes |
| 5 memory | Redis bytes/completed task | 1040 | 742 | 1.40 | ≤ 800 \| all-in | **no** |

- 2 drain 50000 / tasks/s: median of 3 runs
`, b.String())
}
