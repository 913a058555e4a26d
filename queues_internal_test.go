package meetops

import (
	"testing"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"
)

// A queue's workers are processes: the asynq servers of one host and PID
// (a worker's processors) count once, those of another process apart, and
// a server that is not active not at all.
func TestServedQueuesCountsProcesses(t *testing.T) {
	t.Parallel()
	got := servedQueues([]*asynq.ServerInfo{
		{Host: "a", PID: 1, Status: asynqActive, Queues: map[string]int{"default": 3, "critical": 6}},
		{Host: "a", PID: 1, Status: asynqActive, Queues: map[string]int{"default": 3, "critical": 6}},
		{Host: "a", PID: 2, Status: asynqActive, Queues: map[string]int{"default": 1}},
		{Host: "b", PID: 1, Status: asynqActive, Queues: map[string]int{"default": 1}},
		{Host: "c", PID: 1, Status: "stopped", Queues: map[string]int{"low": 1}},
	})
	require.Equal(t, map[string]*ServedQueue{
		"default":  {Name: "default", Weight: 3, Workers: 3},
		"critical": {Name: "critical", Weight: 6, Workers: 1},
	}, got)
}
