package redistest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// pollInterval is how often the topologies poll the servers while they wait
// for a state (cluster formed, replica in sync, failover done). Every wait is
// bounded by a deadline or the caller's context.
const pollInterval = 20 * time.Millisecond

// startTimeout bounds how long a topology may take to form.
const startTimeout = 30 * time.Second

// realServer returns the path of redis-server, or an error that says how to
// get one. The topologies have no miniredis fallback: an embedded server can
// be neither a cluster nor a sentinel.
func realServer() (string, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("MEETOPS_REQUIRE_REDIS_SERVER") == "1" {
			return "", errors.New("redistest: redis-server not found in PATH and MEETOPS_REQUIRE_REDIS_SERVER=1")
		}
		return "", errors.New("redistest: redis-server not found in PATH; Redis Cluster and Sentinel need the real server (install redis-server)")
	}
	return bin, nil
}

// startNode starts one redis-server of a topology on a free loopback port in
// a temporary directory of its own. A port can be taken between probing and
// binding, so a failed start is retried on new ports.
func startNode(bin string, prepare func(s *Server) error) (*Server, error) {
	var lastErr error
	for range 5 {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s, err := startNodeOn(bin, port, prepare)
		if err == nil {
			return s, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

// startNodeOn starts one redis-server on port (once). prepare sets it up
// (its arguments or config file) once its address and directory are known.
func startNodeOn(bin string, port int, prepare func(s *Server) error) (*Server, error) {
	dir, err := os.MkdirTemp("", "redistest-")
	if err != nil {
		return nil, fmt.Errorf("redistest: %w", err)
	}
	s := &Server{Dir: dir, bin: bin, Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
	s.nextDB.Store(1)
	if err = prepare(s); err == nil {
		err = s.start()
	}
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

// startNodes starts n nodes at once (start-up is mostly waiting for the
// processes to listen) and stops them all if one fails.
func startNodes(n int, start func(i int) (*Server, error)) ([]*Server, error) {
	nodes := make([]*Server, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { nodes[i], errs[i] = start(i) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, s := range nodes {
			if s != nil {
				s.Close()
			}
		}
		return nil, err
	}
	return nodes, nil
}

// running reports whether the server's process is alive (not killed or
// stopped by the test).
func (s *Server) running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd != nil
}

// admins caches one small administrative client per node address, for the
// topologies' own polling and set-up commands.
type admins struct {
	mu      sync.Mutex
	clients map[string]*redis.Client
}

func (a *admins) get(addr, password string) *redis.Client {
	a.mu.Lock()
	defer a.mu.Unlock()
	if c, ok := a.clients[addr]; ok {
		return c
	}
	if a.clients == nil {
		a.clients = map[string]*redis.Client{}
	}
	c := redis.NewClient(&redis.Options{
		Addr: addr, Password: password,
		// Fail fast: a poll that hits a dead node moves on to the next one.
		MaxRetries: -1, DialTimeout: time.Second, ReadTimeout: 2 * time.Second,
		DialerRetries: 1, PoolSize: 2, DisableIdentity: true,
	})
	a.clients[addr] = c
	return c
}

func (a *admins) close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, c := range a.clients {
		_ = c.Close()
	}
	a.clients = nil
}

// poll calls cond every pollInterval until it reports done, it fails, or ctx
// ends; on timeout the error says what was awaited and the last state seen.
func poll(ctx context.Context, what string, cond func(ctx context.Context) (done bool, state string, err error)) error {
	var last string
	for {
		done, state, err := cond(ctx)
		if err != nil {
			return fmt.Errorf("redistest: %s: %w", what, err)
		}
		if done {
			return nil
		}
		last = state
		select {
		case <-ctx.Done():
			return fmt.Errorf("redistest: %s: %w (last seen: %s)", what, ctx.Err(), last)
		case <-time.After(pollInterval): // polling interval, bounded by ctx
		}
	}
}

// infoField returns the value of field in the text of an INFO reply.
func infoField(info, field string) string {
	for line := range strings.Lines(info) {
		if k, v, ok := strings.Cut(strings.TrimRight(line, "\r\n"), ":"); ok && k == field {
			return v
		}
	}
	return ""
}

// isMaster reports whether the server at c answers ROLE with "master".
func isMaster(ctx context.Context, c *redis.Client) bool {
	role, err := c.Do(ctx, "ROLE").Slice()
	return err == nil && len(role) > 0 && role[0] == "master"
}

// sharedTopology is a topology started lazily, once per test package, by the
// first test that asks for it, and closed by [Main].
type sharedTopology[T interface{ stop() }] struct {
	once sync.Once
	val  T
	err  error
}

func (s *sharedTopology[T]) get(tb testing.TB, start func() (T, error)) T {
	tb.Helper()
	RequireReal(tb)
	if !mainRunning.Load() {
		tb.Fatal("redistest: call redistest.Main(m) from TestMain, which tears the shared topologies down")
	}
	s.once.Do(func() { s.val, s.err = start() })
	if s.err != nil {
		tb.Fatal(s.err)
	}
	return s.val
}

func (s *sharedTopology[T]) close() {
	// Taking once makes a close that races with a late first use wait for
	// it, and makes a later use fail rather than start a topology no one
	// would stop.
	s.once.Do(func() { s.err = errors.New("redistest: the package's tests have ended") })
	if s.err == nil {
		s.val.stop()
	}
}

var (
	sharedCluster  sharedTopology[*Cluster]
	sharedSentinel sharedTopology[*Sentinel]
)

// closeSharedTopologies stops the shared topologies that tests started.
func closeSharedTopologies() {
	sharedCluster.close()
	sharedSentinel.close()
}
