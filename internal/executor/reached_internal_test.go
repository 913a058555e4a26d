package executor

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/ledger"
)

// Whether an "already done" answer counts as an earlier attempt's success.
// A dead letter rerun because its worker died before asynq archived it
// (ledger Failed, asynq counted a retry) must die again, not turn into
// already_done: its earlier answer was definitive.
func TestMayHaveReached(t *testing.T) {
	t.Parallel()
	tests := []struct {
		prev    ledger.State
		retried int
		want    bool
	}{
		{ledger.None, 0, false},
		{ledger.None, 1, true}, // a retry whose record a failover lost
		{ledger.Started, 0, true},
		{ledger.Started, 3, true},
		{ledger.Failed, 0, false},
		{ledger.Failed, 1, false}, // a dead letter rerun after a SIGKILL
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, mayHaveReached(tt.prev, tt.retried), "%q after %d retries", tt.prev, tt.retried)
	}
}
