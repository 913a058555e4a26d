package worker

import (
	"slices"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"
)

// The worker runs WORKER_PROCESSORS asynq servers that share
// WORKER_CONCURRENCY between them, each registered in Redis (the
// dashboard's Servers page).
func TestProcessorsShareTheConcurrency(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) { c.Concurrency, c.Processors, c.Queues = 7, 3, map[string]int{"processors-test": 1} })
	var servers []*asynq.ServerInfo
	require.Eventually(t, func() bool {
		all, err := b.w.insp.Servers()
		require.NoError(t, err)
		servers = slices.DeleteFunc(all, func(s *asynq.ServerInfo) bool { return s.Queues["processors-test"] == 0 })
		return len(servers) == 3
	}, 10*time.Second, 10*time.Millisecond, "three servers registered")
	var conc []int
	for _, s := range servers {
		conc = append(conc, s.Concurrency)
	}
	slices.Sort(conc)
	require.Equal(t, []int{2, 2, 3}, conc, "7 tasks at once in all")
}

// The default is two processors, never more than the concurrency; more
// than the concurrency is an error naming the variable.
func TestProcessorsDefaultAndBounds(t *testing.T) {
	t.Parallel()
	c := Config{API: validAPI}.WithDefaults()
	require.Equal(t, DefaultProcessors, c.Processors)
	c = Config{API: validAPI, Concurrency: 1}.WithDefaults()
	require.Equal(t, 1, c.Processors)
	require.NoError(t, c.Validate())
	c = Config{API: validAPI, Concurrency: 2, Processors: 3}.WithDefaults()
	require.ErrorContains(t, c.Validate(), "WORKER_PROCESSORS")
}
