package bench

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// The median run of each figure is reported whole (its ours, baseline,
// ratio and verdict together), with the spread of the ratio in its note.
func TestMedianRowsKeepsTheMedianRun(t *testing.T) {
	t.Parallel()
	run := func(ratio float64, met bool) []Row {
		return []Row{
			{Scenario: "2 drain", Metric: "tasks/s", Ours: 100 * ratio, Baseline: 100, Ratio: ratio, Met: met, Note: "n"},
			{Scenario: "3 memory", Metric: "B/task", Ours: 7, Baseline: 7, Ratio: 1, Met: true},
		}
	}
	got := medianRows([][]Row{run(0.9, true), run(0.5, false), run(0.7, false)})
	require.Equal(t, []Row{
		{Scenario: "2 drain", Metric: "tasks/s", Ours: 70, Baseline: 100, Ratio: 0.7, Met: false, Note: "median of 3 runs, ratio 0.50–0.90; n"},
		{Scenario: "3 memory", Metric: "B/task", Ours: 7, Baseline: 7, Ratio: 1, Met: true, Note: "median of 3 runs, ratio 1.00–1.00"},
	}, got)
	require.Equal(t, run(0.9, true), medianRows([][]Row{run(0.9, true)}), "one run is reported as it is")
}
