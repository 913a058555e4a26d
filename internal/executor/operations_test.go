package executor

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/tasks"
)

// Every task type the model declares is one the handler can execute, and
// nothing else is registered.
func TestEveryTaskTypeHasAnOperation(t *testing.T) {
	t.Parallel()
	require.Len(t, operations, len(tasks.Types))
	for _, typ := range tasks.Types {
		o, ok := operations[typ]
		require.True(t, ok, "no operation for %s", typ)
		require.NotNil(t, o.call, typ)
		require.NotNil(t, o.alreadyDone, typ)
		require.NotEmpty(t, tasks.GroupOf(typ), "%s has no rate-limit group", typ)
	}
}
