package executor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/apiclient"
	"github.com/meetops/meetops/internal/breaker"
	"github.com/meetops/meetops/internal/retry"
)

// Only the upstream's own transient failures count against its breaker;
// what the limiter handles (throttling), 4xx, auth and trouble that is not
// the upstream's say nothing about it.
func TestBreakerOutcome(t *testing.T) {
	t.Parallel()
	reset := &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	tests := []struct {
		name      string
		err       error
		cancelled bool
		want      breaker.Outcome
	}{
		{"2xx", nil, false, breaker.Success},
		{"503", &apiclient.Error{Op: "dismiss", Status: 503}, false, breaker.Failure},
		{"500", &apiclient.Error{Op: "dismiss", Status: 500}, false, breaker.Failure},
		{"transport error", fmt.Errorf("dismiss: %w", &apiclient.Error{Op: "dismiss", Err: reset}), false, breaker.Failure},
		{"reset", fmt.Errorf("dismiss: %w", reset), false, breaker.Failure},
		{"timeout", fmt.Errorf("dismiss: %w", context.DeadlineExceeded), false, breaker.Failure},
		{"429", &apiclient.Error{Op: "dismiss", Status: 429}, false, breaker.Other},
		{"throttling code", &apiclient.Error{Op: "dismiss", Status: 403, Code: "APIG.0308"}, false, breaker.Other},
		{"404", &apiclient.Error{Op: "dismiss", Status: 404}, false, breaker.Other},
		{"401", &apiclient.Error{Op: "dismiss", Status: 401}, false, breaker.Other},
		{"not the upstream's", errors.New("redis: connection pool timeout"), false, breaker.Other},
		{"interrupted", &apiclient.Error{Op: "dismiss", Status: 503}, true, breaker.Other},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, breakerOutcome(retry.Classify(tt.err), tt.err, tt.cancelled), tt.name)
	}
}
