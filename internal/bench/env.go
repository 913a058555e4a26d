package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hibiken/asynq"

	"github.com/meetops/meetops/internal/apiclient"
	"github.com/meetops/meetops/internal/cloudsim"
	"github.com/meetops/meetops/internal/httpguard"
	"github.com/meetops/meetops/internal/worker"
)

// queue is the queue every scenario uses.
const queue = "bench"

// env is what every scenario shares: a private redis-server (and, for the
// cluster scenario, a private Redis Cluster) and the simulator on loopback.
type env struct {
	out          io.Writer
	single       *store
	cluster      *store // started by the cluster scenario
	redisVersion string
	sim          *cloudsim.Sim
	simURL       string
	simSrv       *http.Server
	self         string
	runs         int
	// verbose prints what the ratios come from (Redis commands per task).
	verbose bool
	// tmp holds the enqueue binary and the bulk files, built once.
	tmp, enqueueBin string
	bulkFiles       map[int]string
	// singleBulk and singleDrain are scenario 1's and 2's figures for the
	// single node, which the cluster scenario compares with.
	singleBulk  map[int]time.Duration
	singleDrain map[int]drainRun
}

func newEnv(ctx context.Context, out io.Writer) (*env, error) {
	os.Unsetenv("REDIS_URL") // always a private server: the bench flushes it
	single, err := newSingleStore()
	if err != nil {
		return nil, err
	}
	e := &env{out: out, single: single, bulkFiles: map[int]string{}, singleBulk: map[int]time.Duration{}, singleDrain: map[int]drainRun{}}
	info, _ := single.nodes[0].Info(ctx, "server").Result()
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "redis_version:"); ok {
			e.redisVersion = v
		}
	}
	e.sim = cloudsim.New(cloudsim.Options{LogSize: 30_000})
	e.sim.Demo()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.close()
		return nil, err
	}
	e.simURL = "http://" + ln.Addr().String()
	e.simSrv = httpguard.Server(e.sim, httpguard.Options{})
	go e.simSrv.Serve(ln)
	if e.self, err = os.Executable(); err != nil {
		e.close()
		return nil, err
	}
	return e, nil
}

func (e *env) close() {
	if e.simSrv != nil {
		e.simSrv.Close()
	}
	if e.cluster != nil {
		e.cluster.close()
	}
	e.single.close()
	if e.tmp != "" {
		os.RemoveAll(e.tmp)
	}
}

// reset empties s and the simulator's counters between runs (see
// store.reset).
func (e *env) reset(ctx context.Context, s *store) error {
	e.sim.Reset()
	e.sim.ClearFaults()
	return s.reset(ctx)
}

// workerEnv is the environment of a worker process on s pointed at the
// simulator, with the rate limits off.
func (e *env) workerEnv(s *store, extra ...string) []string {
	cr := e.sim.Credentials()
	env := append([]string{"PATH=" + os.Getenv("PATH")}, s.procEnv...)
	return append(append(env,
		"RTC_ENDPOINT="+e.simURL, "MEETING_ENDPOINT="+e.simURL,
		"RTC_AK="+cr.AK, "RTC_SK="+cr.SK, "RTC_PROJECT_ID="+cr.ProjectID,
		"MEETING_APP_ID="+cr.AppID, "MEETING_APP_KEY="+cr.AppKey, "MEETING_USER_ID="+cr.UserID,
		"WORKER_QUEUES="+queue+"=1", "HTTP_ADDR=off", "LOG_LEVEL=info", "LOG_FORMAT=json",
		"RATELIMIT_RTC_ROOMS=off", "RATELIMIT_RTC_APPS=off", "RATELIMIT_MEETING_MGMT=off",
		"RATELIMIT_MEETING_CONTROL=off", "RATELIMIT_MEETING_VMR=off",
		"BENCH_CPUPROFILE="+os.Getenv("BENCH_CPUPROFILE"), "BENCH_MEMPROFILE="+os.Getenv("BENCH_MEMPROFILE"),
	), extra...)
}

// proc is a worker process started by the bench.
type proc struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

// startRole runs the bench binary again as a worker process on s. Its log
// goes to /dev/null: ours still formats and writes every info line.
func (e *env) startRole(ctx context.Context, s *store, role string, env []string) (*proc, error) {
	before, err := s.insp.Servers()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(e.self, "-role", role)
	cmd.Env = env
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	// Ready when asynq has registered one more server.
	deadline := time.Now().Add(20 * time.Second)
	for {
		servers, err := s.insp.Servers()
		if err == nil && len(servers) > len(before) {
			return p, nil
		}
		select {
		case <-p.exited:
			return nil, fmt.Errorf("%s process exited at start-up", role)
		case <-ctx.Done():
			p.stop()
			return nil, ctx.Err()
		default:
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("%s process not ready in 20s", role)
		}
		time.Sleep(20 * time.Millisecond) // polling interval, bounded by the deadline
	}
}

// peakRSS returns the process's peak resident set size in bytes.
func (p *proc) peakRSS() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// cpuSeconds returns the process's user+system CPU time so far.
func (p *proc) cpuSeconds() float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which is in parentheses).
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // clock ticks (USER_HZ = 100 on Linux)
}

func (p *proc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// runWorkerRole is the real worker, configured from the environment.
// BENCH_CPUPROFILE=FILE writes a CPU profile of it and BENCH_MEMPROFILE=FILE
// an allocation profile (`go tool pprof -sample_index=alloc_space`, or
// inuse_space for what it holds at exit); each worker process of the run
// writes FILE.PID.
func runWorkerRole(ctx context.Context) error {
	suffix := "." + strconv.Itoa(os.Getpid())
	if path := os.Getenv("BENCH_CPUPROFILE"); path != "" {
		f, err := os.Create(path + suffix)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if path := os.Getenv("BENCH_MEMPROFILE"); path != "" {
		defer func() {
			f, err := os.Create(path + suffix)
			if err != nil {
				fmt.Fprintf(os.Stderr, "bench: %v\n", err)
				return
			}
			defer f.Close()
			if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
				fmt.Fprintf(os.Stderr, "bench: %s: %v\n", path, err)
			}
		}()
	}
	return worker.Main(ctx, nil, os.Getenv, os.Stderr)
}

// runBareRole is the baseline: a bare asynq server whose handler makes the
// same upstream call with the same client and nothing else.
func runBareRole(ctx context.Context) error {
	api, err := apiclient.New(apiclient.Config{
		RTCEndpoint: os.Getenv("RTC_ENDPOINT"), RTCAK: os.Getenv("RTC_AK"), RTCSK: os.Getenv("RTC_SK"),
		RTCProjectID: os.Getenv("RTC_PROJECT_ID"),
	})
	if err != nil {
		return err
	}
	opt, err := asynq.ParseRedisURI(os.Getenv("REDIS_URL"))
	if err != nil {
		return err
	}
	conc, _ := strconv.Atoi(os.Getenv("WORKER_CONCURRENCY"))
	if conc == 0 {
		conc = worker.DefaultConcurrency
	}
	srv := asynq.NewServer(opt, asynq.Config{Concurrency: conc, Queues: map[string]int{queue: 1}, LogLevel: asynq.WarnLevel})
	mux := asynq.NewServeMux()
	mux.HandleFunc("rtc:room:dismiss", func(ctx context.Context, t *asynq.Task) error {
		var p struct {
			AppID  string `json:"app_id"`
			RoomID string `json:"room_id"`
		}
		if err := json.Unmarshal(t.Payload(), &p); err != nil {
			return err
		}
		_, err := api.DismissRoom(ctx, p.AppID, p.RoomID)
		return err
	})
	if err := srv.Start(mux); err != nil {
		return err
	}
	<-ctx.Done()
	srv.Shutdown()
	return nil
}
