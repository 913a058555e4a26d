package redisconf

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

func TestTopologyError(t *testing.T) {
	t.Parallel()
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: &net.AddrError{Err: "connection refused"}}
	for err, want := range map[error]bool{
		refused:                      true,
		fmt.Errorf("x: %w", refused): true,
		io.EOF:                       true,
		io.ErrUnexpectedEOF:          true,
		syscall.ECONNRESET:           true,
		syscall.ECONNREFUSED:         true,
		context.DeadlineExceeded:     true,
		errors.New("CLUSTERDOWN The cluster is down"): true,
		context.Canceled: false,
		redis.Nil:        false,
		errors.New("ERR wrong number of arguments"):                                     false,
		errors.New("WRONGTYPE Operation against a key holding the wrong kind of value"): false,
	} {
		require.Equal(t, want, topologyError(err), "%v", err)
	}
}
