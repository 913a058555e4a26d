package reliability_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/proctest"
	"github.com/meetops/meetops/internal/redistest"
	"github.com/meetops/meetops/internal/reliability"
	"github.com/meetops/meetops/internal/tasks"
)

// testCA is a certificate authority generated for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	// PEM is the path of the CA certificate (PEM).
	PEM string
}

// newTestCA generates a CA and writes its certificate into dir.
func newTestCA(t *testing.T, dir, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	ca := &testCA{cert: cert, key: key, PEM: filepath.Join(dir, name+".pem")}
	writePEM(t, ca.PEM, "CERTIFICATE", der)
	return ca
}

// serverCert issues a certificate for 127.0.0.1 and localhost and writes
// it and its key into dir; it returns their paths.
func (ca *testCA) serverCert(t *testing.T, dir string) (certPath, keyPath string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	certPath, keyPath = filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")
	writePEM(t, certPath, "CERTIFICATE", der)
	writePEM(t, keyPath, "PRIVATE KEY", keyDER)
	return certPath, keyPath
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
}

// oneClearLine checks that a failed process printed exactly one line,
// prefixed with its name, with no stack trace and none of the secrets.
func oneClearLine(t *testing.T, p *proctest.Proc, name string, secrets ...string) string {
	t.Helper()
	exitErr, exited := p.Wait(30 * time.Second)
	require.True(t, exited, "%s exits", name)
	require.Error(t, exitErr, "%s fails", name)
	code, err := p.ExitCode()
	require.NoError(t, err)
	require.Equal(t, 1, code, "%s exit status", name)
	out := strings.TrimSpace(p.Output())
	lines := strings.Split(out, "\n")
	for _, l := range lines {
		if strings.HasPrefix(l, "redis: ") {
			t.Errorf("%s lets go-redis's internal logger print %q: install a quiet logger with redis.SetLogger, as cmd/enqueue does", name, l)
		}
	}
	require.Len(t, lines, 1, "%s prints one line:\n%s", name, out)
	require.True(t, strings.HasPrefix(lines[0], name+": "), "%s's line names it: %q", name, lines[0])
	require.NotContains(t, out, "goroutine", "no stack trace")
	for _, s := range secrets {
		require.NotContains(t, out, s, "no secret in the error")
	}
	return lines[0]
}

// runEnqueue runs one `enqueue dismiss` and returns the process once it has
// exited.
func runEnqueue(t *testing.T, env []string, redisURL, room string) *proctest.Proc {
	t.Helper()
	p := proctest.Start(t, proctest.Bin(t, "enqueue"), env,
		"dismiss", "--app-id", "demo-app-bulk", "--room-id", room, "--redis-url", redisURL, "--timeout", "3s")
	_, exited := p.Wait(30 * time.Second)
	require.True(t, exited, "enqueue exits")
	return p
}

// Scenario 9. Redis with a password, and Redis over TLS (rediss://) with a
// CA generated here: the worker and enqueue work; a wrong password or a
// certificate from an unknown CA makes each fail at once with exit status 1
// and one clear line, without a stack trace or the password.
func TestRedisPasswordAndTLS(t *testing.T) {
	t.Parallel()
	row := report(t, "9 Redis password + TLS")
	redistest.RequireReal(t)
	started := time.Now()
	sim := proctest.StartCloudsim(t, "-log-size", "16")
	simEnv := append([]string{"LOG_FORMAT=json", "RATELIMIT_RTC_ROOMS=off"}, sim.Env...)
	var lines []string
	tasksRun, lost := 0, 0

	// completes enqueues one dismissal with the enqueue binary and waits
	// until a worker completes it.
	completes := func(t *testing.T, env []string, redisURL string, rdb *redis.Client, room string) {
		t.Helper()
		tasksRun++
		p := runEnqueue(t, env, redisURL, room)
		code, _ := p.ExitCode()
		require.Zero(t, code, "enqueue over %s: %s", redactURL(redisURL), p.Output())
		key := tasks.Key(tasks.Dismiss{AppID: "demo-app-bulk", RoomID: room})
		insp := asynq.NewInspectorFromRedisClient(rdb)
		if !proctest.Poll(30*time.Second, 20*time.Millisecond, func() bool {
			info, err := insp.GetTaskInfo(tasks.DefaultQueue, key)
			return err == nil && info.State == asynq.TaskStateCompleted
		}) {
			lost++
			t.Errorf("task %s did not complete", key)
		}
	}

	t.Run("password", func(t *testing.T) {
		const password = "redis-pw-5e1c7a9b3d"
		s := redistest.New(t, redistest.Options{Password: password})
		db := s.DB(t)
		rdb := redis.NewClient(s.Options(db))
		defer rdb.Close()
		good := s.URL(db)
		w := proctest.StartWorker(t, append(simEnv, "REDIS_URL="+good))
		completes(t, nil, good, rdb, "pw-ok")
		require.NotContains(t, w.Output(), password)

		bad := strings.Replace(good, password, "wrong-pw-8f2d", 1)
		line := oneClearLine(t, proctest.Start(t, proctest.Bin(t, "worker"), append(simEnv, "REDIS_URL="+bad, "HTTP_ADDR=127.0.0.1:0")),
			"worker", password, "wrong-pw-8f2d")
		lines = append(lines, line)
		line = oneClearLine(t, runEnqueue(t, nil, bad, "pw-bad"), "enqueue", password, "wrong-pw-8f2d")
		lines = append(lines, line)
	})

	t.Run("tls", func(t *testing.T) {
		dir := t.TempDir()
		ca := newTestCA(t, dir, "meetops-test-ca")
		certPath, keyPath := ca.serverCert(t, dir)
		other := newTestCA(t, dir, "someone-else-ca")
		tlsAddr := proctest.FreeAddr(t)
		_, tlsPort, _ := net.SplitHostPort(tlsAddr)
		s, err := redistest.Start(redistest.Options{Args: []string{"--tls-port", tlsPort,
			"--tls-cert-file", certPath, "--tls-key-file", keyPath, "--tls-ca-cert-file", ca.PEM, "--tls-auth-clients", "no"}})
		if err != nil {
			if strings.Contains(err.Error(), "TLS") || strings.Contains(err.Error(), "tls") {
				if os.Getenv("MEETOPS_REQUIRE_REDIS_SERVER") == "1" {
					t.Fatalf("redis-server cannot serve TLS (built without BUILD_TLS=yes?) and MEETOPS_REQUIRE_REDIS_SERVER=1: %v", err)
				}
				t.Skipf("redis-server cannot serve TLS (built without BUILD_TLS=yes?): %v", err)
			}
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		db := s.DB(t)
		rdb := redis.NewClient(s.Options(db))
		defer rdb.Close()
		tlsURL := "rediss://" + tlsAddr + "/" + strconv.Itoa(db)
		trust := []string{"SSL_CERT_FILE=" + ca.PEM}
		proctest.StartWorker(t, append(append(simEnv, trust...), "REDIS_URL="+tlsURL))
		completes(t, trust, tlsURL, rdb, "tls-ok")
		clients, err := rdb.ClientList(ctx(t)).Result()
		require.NoError(t, err)
		require.Contains(t, clients, "laddr=127.0.0.1:"+tlsPort, "clients are connected through the TLS port")

		untrusted := []string{"SSL_CERT_FILE=" + other.PEM}
		line := oneClearLine(t, runEnqueue(t, untrusted, tlsURL, "tls-bad"), "enqueue")
		require.Contains(t, line, "certificate")
		lines = append(lines, line)
		line = oneClearLine(t, proctest.Start(t, proctest.Bin(t, "worker"), append(append(simEnv, untrusted...), "REDIS_URL="+tlsURL, "HTTP_ADDR=127.0.0.1:0")), "worker")
		require.Contains(t, line, "certificate")
		lines = append(lines, line)
	})

	for _, l := range lines {
		t.Logf("failure line: %s", l)
	}
	*row = reliability.Row{Scenario: row.Scenario, Tasks: tasksRun, Lost: lost,
		UpstreamCalls: proctest.Calls(sim.Stats(t)), Time: time.Since(started),
		Note: fmt.Sprintf("rediss:// with a test CA; %d of 4 refused runs (wrong password, unknown CA): exit 1, one line", len(lines))}
}

// redactURL hides the password of a Redis URL for messages.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
