// Command cloudsim serves the Huawei Cloud RTC, Meeting and IAM simulator
// (package internal/cloudsim) on a loopback address, for local runs, the
// worker's dev mode and benchmarks.
//
//	go run ./cmd/cloudsim -demo
//
// It prints the address and the fake credentials it accepts, and shuts down
// gracefully on SIGINT or SIGTERM.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/meetops/meetops/internal/cloudsim"
	"github.com/meetops/meetops/internal/httpguard"
)

// shutdownTimeout bounds the graceful shutdown.
const shutdownTimeout = 5 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "cloudsim:", err)
		os.Exit(1)
	}
}

// config is the parsed command line.
type config struct {
	addr, fixture, faults string
	credentials           string
	demo                  bool
	ttls                  cloudsim.TokenTTLs
	seed                  uint64
	logSize               int
}

func parseFlags(args []string, out io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("cloudsim", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&c.addr, "addr", "127.0.0.1:9080", "listen address (loopback; port 0 picks a free one)")
	fs.BoolVar(&c.demo, "demo", false, "seed the demo world (IDs in internal/cloudsim/README.md)")
	fs.StringVar(&c.fixture, "fixture", "", "JSON fixture `file` to seed (after -demo)")
	fs.StringVar(&c.faults, "faults", "", "JSON faults `file` (operation → fault)")
	fs.StringVar(&c.credentials, "credentials", "", "JSON `file` of the credentials to accept (fields as in cloudsim.Credentials, snake case); unset fields keep the demo ones")
	fs.DurationVar(&c.ttls.IAM, "iam-token-ttl", cloudsim.DefaultIAMTTL, "IAM token lifetime")
	fs.DurationVar(&c.ttls.Access, "access-token-ttl", cloudsim.DefaultAccessTTL, "Meeting access token lifetime")
	fs.DurationVar(&c.ttls.Control, "control-token-ttl", cloudsim.DefaultControlTTL, "Meeting control token lifetime")
	fs.Uint64Var(&c.seed, "seed", 0, "random seed for faults and generated IDs (0: from the time)")
	fs.IntVar(&c.logSize, "log-size", 1024, "request log capacity (GET /_sim/log)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	return c, nil
}

// run serves the simulator until ctx is done.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	c, err := parseFlags(args, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	sim, err := newSim(c)
	if err != nil {
		return err
	}
	defer sim.Close()

	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return fmt.Errorf("listening: %w", err)
	}
	url := "http://" + ln.Addr().String()
	printBanner(stdout, url, c, sim)

	srv := newServer(sim)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()

	select {
	case err := <-errc:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	fmt.Fprintln(stdout, "cloudsim: shutting down")
	sim.Close() // release hanging requests
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("shutting down: %w", err)
	}
	return nil
}

// newServer serves the simulator with the timeouts and size limits every
// meetops listener has (internal/httpguard's defaults: the simulator's
// longest legitimate answer is a fault's latency, well under the write
// timeout; a "hang" fault waits for the client to give up).
func newServer(sim *cloudsim.Sim) *http.Server {
	return httpguard.Server(sim, httpguard.Options{})
}

// newSim builds the simulator the flags describe.
func newSim(c config) (*cloudsim.Sim, error) {
	opts := cloudsim.Options{TTLs: c.ttls, LogSize: c.logSize}
	if c.credentials != "" {
		creds, err := loadCredentials(c.credentials)
		if err != nil {
			return nil, err
		}
		opts.Credentials = creds
	}
	if c.seed != 0 {
		opts.Rand = rand.New(rand.NewPCG(c.seed, c.seed))
	}
	sim := cloudsim.New(opts)
	if c.demo {
		sim.Demo()
	}
	if c.fixture != "" {
		if err := loadFile(c.fixture, sim.LoadFixture); err != nil {
			return nil, err
		}
	}
	if c.faults != "" {
		if err := loadFile(c.faults, sim.LoadFaults); err != nil {
			return nil, err
		}
	}
	return sim, nil
}

// loadCredentials reads a credentials file: the demo credentials with the
// fields the file sets replaced.
func loadCredentials(path string) (cloudsim.Credentials, error) {
	creds := cloudsim.DemoCredentials()
	err := loadFile(path, func(r io.Reader) error {
		dec := json.NewDecoder(r)
		dec.DisallowUnknownFields()
		return dec.Decode(&creds)
	})
	return creds, err
}

func loadFile(path string, load func(io.Reader) error) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("opening %s: %w", path, err)
	}
	defer f.Close()
	if err := load(f); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// printBanner tells where the simulator listens and which (fake)
// credentials it accepts, as environment variables for the worker.
func printBanner(w io.Writer, url string, c config, sim *cloudsim.Sim) {
	cr := sim.Credentials()
	fmt.Fprintf(w, "cloudsim listening on %s\n", url)
	if host, _, err := net.SplitHostPort(c.addr); err == nil {
		if ip := net.ParseIP(host); (ip == nil && host != "localhost") || (ip != nil && !ip.IsLoopback()) {
			fmt.Fprintln(w, "WARNING: not a loopback address; /_sim/ admin endpoints are unauthenticated")
		}
	}
	if c.demo {
		fmt.Fprintln(w, "demo world loaded (IDs: internal/cloudsim/README.md)")
	}
	fmt.Fprintln(w, "fake credentials it accepts (environment for the worker):")
	for _, kv := range [][2]string{
		{"RTC_ENDPOINT", url}, {"IAM_ENDPOINT", url}, {"MEETING_ENDPOINT", url},
		{"RTC_AK", cr.AK}, {"RTC_SK", cr.SK}, {"RTC_PROJECT_ID", cr.ProjectID},
		{"IAM_USER", cr.IAMUser}, {"IAM_PASSWORD", cr.IAMPassword}, {"IAM_DOMAIN", cr.IAMDomain}, {"IAM_PROJECT_ID", cr.IAMProjectID},
		{"MEETING_APP_ID", cr.AppID}, {"MEETING_APP_KEY", cr.AppKey}, {"MEETING_USER_ID", cr.UserID},
		{"MEETING_ACCOUNT", cr.Account}, {"MEETING_PASSWORD", cr.Password},
	} {
		fmt.Fprintf(w, "  %s=%s\n", kv[0], kv[1])
	}
}
