// Package redistest gives tests a private, real redis-server.
//
// Each test package that touches Redis calls [Main] from its TestMain; the
// package's tests then take an isolated logical database with [URL]. The
// server listens on a free loopback port with its own temporary directory and
// is stopped when the package's tests end. Tests that need to stop, kill or
// restart Redis start a dedicated server with [New].
//
// Two topologies of real servers, with no embedded fallback, test Redis
// Cluster and Sentinel: [NewCluster] and [SharedCluster] give three primaries
// with a replica each, [NewSentinel] and [SharedSentinel] a primary, a
// replica and three sentinels. Both can SIGKILL their primary and wait for
// the promotion of its replica. Without a redis-server binary they skip the
// test, or fail it with MEETOPS_REQUIRE_REDIS_SERVER=1. Every process is
// killed by the kernel if the test binary dies.
//
// Environment:
//
//   - REDIS_URL: use that server instead of starting one. Each test still gets
//     its own database index, and a database that is not empty is never used,
//     so nothing that was already there is read or deleted.
//   - MEETOPS_REQUIRE_REDIS_SERVER=1: fail when no redis-server binary is
//     found, instead of falling back to an embedded miniredis (CI sets it).
package redistest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// databases is how many logical databases a private server offers, so every
// test in a package can have its own.
const databases = 4096

// Options configure a dedicated server started with [New] or [Start].
type Options struct {
	// Password, when set, is required from clients (requirepass).
	Password string
	// AppendFsyncAlways turns on AOF with appendfsync always, so a restart
	// loses nothing that was acknowledged. Without it AOF runs with
	// appendfsync everysec.
	AppendFsyncAlways bool
	// Args are extra redis-server arguments, for example "--tls-port".
	Args []string
}

// Server is a redis-server process (or, as a fallback, a miniredis) owned by
// the test binary.
type Server struct {
	// Addr is host:port of the server.
	Addr string
	// Dir is the server's data directory (empty for miniredis).
	Dir string

	opts   Options
	bin    string
	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	mini   *miniredis.Miniredis
	nextDB atomic.Int64
	extern *url.URL // set when REDIS_URL points at an outside server
	conf   string   // set for a sentinel: its config file, which holds every setting
}

// Start starts a server. Prefer [New] in tests, which stops it at cleanup.
func Start(opts Options) (*Server, error) {
	if raw := os.Getenv("REDIS_URL"); raw != "" && opts.Password == "" && !opts.AppendFsyncAlways && len(opts.Args) == 0 {
		u, err := url.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("redistest: REDIS_URL: %w", err)
		}
		s := &Server{Addr: u.Host, extern: u}
		s.nextDB.Store(1)
		return s, nil
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("MEETOPS_REQUIRE_REDIS_SERVER") == "1" {
			return nil, errors.New("redistest: redis-server not found in PATH and MEETOPS_REQUIRE_REDIS_SERVER=1")
		}
		if opts.AppendFsyncAlways || len(opts.Args) > 0 {
			return nil, errors.New("redistest: redis-server not found in PATH; persistence and extra arguments need the real server")
		}
		m := miniredis.NewMiniRedis()
		if opts.Password != "" {
			m.RequireAuth(opts.Password)
		}
		if err := m.Start(); err != nil {
			return nil, fmt.Errorf("redistest: start miniredis: %w", err)
		}
		fmt.Fprintln(os.Stderr, "redistest: redis-server not found; falling back to embedded miniredis (set MEETOPS_REQUIRE_REDIS_SERVER=1 to fail instead)")
		s := &Server{Addr: m.Addr(), mini: m, opts: opts}
		s.nextDB.Store(1)
		return s, nil
	}
	dir, err := os.MkdirTemp("", "redistest-")
	if err != nil {
		return nil, fmt.Errorf("redistest: %w", err)
	}
	s := &Server{Dir: dir, opts: opts, bin: bin}
	s.nextDB.Store(1)
	var lastErr error
	for range 5 { // a free port can be taken between probing and binding
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if lastErr = s.start(); lastErr == nil {
			return s, nil
		}
	}
	_ = os.RemoveAll(dir)
	return nil, lastErr
}

// New starts a dedicated server for one test and stops it at cleanup.
func New(tb testing.TB, opts Options) *Server {
	tb.Helper()
	s, err := Start(opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Close)
	return s
}

func (s *Server) args() []string {
	if s.conf != "" {
		return []string{s.conf, "--sentinel"}
	}
	fsync := "everysec"
	if s.opts.AppendFsyncAlways {
		fsync = "always"
	}
	a := []string{
		"--bind", "127.0.0.1",
		"--port", portOf(s.Addr),
		"--dir", s.Dir,
		"--databases", strconv.Itoa(databases),
		"--save", "",
		"--appendonly", "yes",
		"--appendfsync", fsync,
		"--maxmemory-policy", "noeviction",
		"--protected-mode", "no",
		"--logfile", filepath.Join(s.Dir, "redis.log"),
	}
	if s.opts.Password != "" {
		a = append(a, "--requirepass", s.opts.Password)
	}
	return append(a, s.opts.Args...)
}

func (s *Server) start() error {
	cmd := exec.Command(s.bin, s.args()...)
	cmd.Dir = s.Dir
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("redistest: start redis-server: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()
	if err := s.waitReady(exited, cmd.Process.Pid, 10*time.Second); err != nil {
		_ = cmd.Process.Kill()
		<-exited
		log, _ := os.ReadFile(filepath.Join(s.Dir, "redis.log"))
		return fmt.Errorf("redistest: redis-server on %s: %w\n%s", s.Addr, err, tail(log, 800))
	}
	return nil
}

// waitReady waits until the server answers PING, and checks that the
// server answering is this process (pid): when two tests probe the same
// free port at once, the one that lost the race would otherwise take the
// other's server for its own.
func (s *Server) waitReady(exited <-chan struct{}, pid int, timeout time.Duration) error {
	c := redis.NewClient(&redis.Options{Addr: s.Addr, Password: s.opts.Password, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		var info string
		if err == nil {
			info, err = c.Info(ctx, "server").Result()
		}
		cancel()
		if err == nil {
			if !strings.Contains(info, "process_id:"+strconv.Itoa(pid)+"\r\n") {
				return fmt.Errorf("port %s is answered by another redis-server", portOf(s.Addr))
			}
			return nil
		}
		select {
		case <-exited:
			return errors.New("exited before it answered PING")
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no PONG within %s: %w", timeout, err)
		}
		time.Sleep(20 * time.Millisecond) // polling interval, bounded by the deadline
	}
}

// URL returns a redis:// URL for database db of the server.
func (s *Server) URL(db int) string {
	if s.extern != nil {
		u := *s.extern
		u.Path = "/" + strconv.Itoa(db)
		return u.String()
	}
	u := url.URL{Scheme: "redis", Host: s.Addr, Path: "/" + strconv.Itoa(db)}
	if s.opts.Password != "" {
		u.User = url.UserPassword("", s.opts.Password)
	}
	return u.String()
}

// Options returns go-redis options for database db.
func (s *Server) Options(db int) *redis.Options {
	o, err := redis.ParseURL(s.URL(db))
	if err != nil {
		panic(err) // URL builds only valid URLs
	}
	return o
}

// DB reserves a fresh, empty database for tb and returns its index. On a
// private server the database is flushed at cleanup; on an outside server
// (REDIS_URL) a database that already holds keys is skipped, never cleared.
func (s *Server) DB(tb testing.TB) int {
	tb.Helper()
	for {
		db := int(s.nextDB.Add(1) - 1)
		if db >= databases || (s.extern != nil && db >= 16) {
			tb.Fatalf("redistest: out of databases on %s", s.Addr)
		}
		c := redis.NewClient(s.Options(db))
		n, err := c.DBSize(context.Background()).Result()
		if err != nil {
			c.Close()
			if s.mini != nil || s.extern != nil {
				tb.Fatalf("redistest: select db %d on %s: %v", db, s.Addr, err)
			}
			tb.Fatalf("redistest: db %d on %s: %v", db, s.Addr, err)
		}
		if n != 0 {
			c.Close()
			if s.extern != nil {
				continue // someone else's data: leave it alone
			}
			tb.Fatalf("redistest: db %d on private server %s is not empty", db, s.Addr)
		}
		tb.Cleanup(func() {
			defer c.Close()
			if s.extern == nil {
				_ = c.FlushDB(context.Background()).Err()
			}
		})
		return db
	}
}

// Stop shuts the server down gracefully (SIGTERM, which rewrites nothing
// but flushes the AOF) and waits for it to exit. Its data directory is kept
// for [Server.Restart].
func (s *Server) Stop() error {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return nil
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		return fmt.Errorf("redistest: stop: %w", err)
	}
	select {
	case <-exited:
		return nil
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
		return errors.New("redistest: redis-server ignored SIGINT for 10s; killed")
	}
}

// Kill stops the server with SIGKILL, as a crash would.
func (s *Server) Kill() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-exited
}

// Restart stops the server and starts it again on the same port with the
// same data directory, so it reloads its append-only file.
func (s *Server) Restart() error {
	if s.bin == "" {
		return errors.New("redistest: restart needs a real redis-server")
	}
	if err := s.Stop(); err != nil {
		return err
	}
	return s.StartAgain()
}

// StartAgain starts a stopped or killed server on its old port and data dir.
func (s *Server) StartAgain() error {
	var err error
	for range 50 { // the port can linger briefly after the old process exits
		if err = s.start(); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return err
}

// Close stops the server and removes its data directory.
func (s *Server) Close() {
	if s.mini != nil {
		s.mini.Close()
		return
	}
	if s.extern != nil {
		return
	}
	s.Kill()
	_ = os.RemoveAll(s.Dir)
}

// Embedded reports whether the server is the miniredis fallback.
func (s *Server) Embedded() bool { return s.mini != nil }

var (
	shared      *Server
	sharedErr   error
	mainRunning atomic.Bool // set by Main, so lazily started topologies are torn down
)

// Main starts the package's shared server, runs the tests and stops it, and
// with it the shared Cluster and Sentinel topologies if a test started them
// ([SharedCluster], [SharedSentinel]). Call it from TestMain:
//
//	func TestMain(m *testing.M) { redistest.Main(m) }
func Main(m *testing.M) { os.Exit(Run(m)) }

// Run is Main without the exit: it starts the shared server, runs the
// tests, stops the server and returns the exit code, for a TestMain that
// has more to do after the tests.
func Run(m *testing.M) int {
	shared, sharedErr = Start(Options{})
	mainRunning.Store(true)
	code := m.Run()
	closeSharedTopologies()
	if shared != nil {
		shared.Close()
	}
	return code
}

// Shared returns the package's shared server started by [Main].
func Shared(tb testing.TB) *Server {
	tb.Helper()
	if sharedErr != nil {
		tb.Fatal(sharedErr)
	}
	if shared == nil {
		tb.Fatal("redistest: call redistest.Main(m) from TestMain")
	}
	return shared
}

// URL returns the URL of a fresh, empty database of the package's shared
// server, reserved for tb.
func URL(tb testing.TB) string {
	tb.Helper()
	s := Shared(tb)
	return s.URL(s.DB(tb))
}

// Client returns a go-redis client on a fresh database of the package's
// shared server, closed at cleanup.
func Client(tb testing.TB) *redis.Client {
	tb.Helper()
	s := Shared(tb)
	c := redis.NewClient(s.Options(s.DB(tb)))
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("redistest: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func portOf(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// RequireReal skips tb, saying why, when no redis-server binary is installed
// (tests of persistence, restarts and TLS need the real server), and fails it
// instead when MEETOPS_REQUIRE_REDIS_SERVER=1, so CI never passes by skipping.
func RequireReal(tb testing.TB) {
	tb.Helper()
	if _, err := exec.LookPath("redis-server"); err == nil {
		return
	}
	if os.Getenv("MEETOPS_REQUIRE_REDIS_SERVER") == "1" {
		tb.Fatal("redistest: redis-server not found in PATH and MEETOPS_REQUIRE_REDIS_SERVER=1")
	}
	tb.Skip("redistest: redis-server not found in PATH; this test needs the real server (install redis-server)")
}
