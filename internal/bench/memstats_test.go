package bench

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// The -v tables list every name either run has, the heaviest over both
// first.
func TestHeaviestFirst(t *testing.T) {
	t.Parallel()
	ours := map[string]memStat{"ledger": {keys: 10, bytes: 1200}, "task": {keys: 10, bytes: 5760}}
	bare := map[string]memStat{"task": {keys: 10, bytes: 4320}, "queues": {keys: 1, bytes: 40}}
	require.Equal(t, []string{"task", "ledger", "queues"}, heaviestFirst(ours, bare, func(m memStat) float64 { return float64(m.bytes) }))
}
