package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/redistest"
)

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// silentServer accepts connections and never answers.
func silentServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { _ = c.Close() })
		}
	}()
	return l.Addr().String()
}

// Every way of failing to reach Redis is one clear line on stderr and exit
// 1 within --timeout, for every command that needs Redis.
func TestRedisFailuresAreOneLineAndExit1(t *testing.T) {
	t.Parallel()
	redistest.RequireReal(t)
	secured := redistest.New(t, redistest.Options{Password: "s3cret-pass"})
	plain := redistest.Shared(t)
	closed := closedPort(t)
	silent := silentServer(t)

	for _, tc := range []struct {
		name, url, stderr string
	}{
		{"unreachable", "redis://" + closed + "/0",
			"enqueue: cannot connect to Redis at " + closed + ": connection refused (is it running, on this port?)\n"},
		{"wrong password", "redis://:wrong@" + secured.Addr + "/0",
			"enqueue: wrong credentials for Redis at " + secured.Addr + ": check the password in the Redis URL (WRONGPASS invalid username-password pair or user is disabled.)\n"},
		{"missing password", "redis://" + secured.Addr + "/0",
			"enqueue: wrong credentials for Redis at " + secured.Addr + ": check the password in the Redis URL (NOAUTH Authentication required.)\n"},
		{"TLS to a plain server", "rediss://" + plain.Addr + "/0",
			"enqueue: no answer from Redis at " + plain.Addr + " within 300ms (unreachable, or a server without TLS addressed with rediss://?)\n"},
		{"no answer", "redis://" + silent + "/0",
			"enqueue: no answer from Redis at " + silent + " within 300ms (unreachable, or a TLS port addressed with redis://?)\n"},
	} {
		for _, cmd := range [][]string{
			{"disable", "--app-id", "a"},
			{"status", "k"},
			{"dead", "list"},
			{"bulk", "testdata/bulk/ops.jsonl"},
		} {
			t.Run(tc.name+"/"+cmd[0], func(t *testing.T) {
				t.Parallel()
				r := runEnqueue(t, invocation{}, append([]string{"--redis-url", tc.url, "--timeout", "300ms"}, cmd...)...)
				requireCode(t, r, exitFailure)
				require.Equal(t, tc.stderr, r.stderr)
				require.NotContains(t, r.stderr, "s3cret-pass")
				require.Less(t, r.elapsed, 3*time.Second, "bounded by --timeout")
			})
		}
	}
}

func TestBadRedisURLIsAUsageError(t *testing.T) {
	t.Parallel()
	r := runEnqueue(t, invocation{}, "--redis-url", "http://:s3cret@127.0.0.1:6379", "disable", "--app-id", "a")
	requireCode(t, r, exitUsage)
	require.True(t, strings.HasPrefix(r.stderr, "enqueue: REDIS_URL: redis: invalid URL scheme: http\n"), r.stderr)
	require.NotContains(t, r.stderr, "s3cret")
}

// selfSignedCert writes a self-signed certificate for 127.0.0.1 and its
// key, and returns their paths.
func selfSignedCert(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "redistest"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600))
	return certFile, keyFile
}

// A TLS mismatch either way is one line and exit 1; the right scheme works.
func TestRedisTLSMismatch(t *testing.T) {
	t.Parallel()
	redistest.RequireReal(t)
	certFile, keyFile := selfSignedCert(t)
	tlsAddr := closedPort(t) // free now; the server takes it
	_, tlsPort, _ := net.SplitHostPort(tlsAddr)
	redistest.New(t, redistest.Options{Args: []string{"--tls-port", tlsPort,
		"--tls-cert-file", certFile, "--tls-key-file", keyFile, "--tls-ca-cert-file", certFile, "--tls-auth-clients", "no"}})

	r := runEnqueue(t, invocation{}, "--redis-url", "redis://"+tlsAddr+"/0", "--timeout", "2s", "dead", "list")
	requireCode(t, r, exitFailure)
	require.Equal(t, "enqueue: connection closed by Redis at "+tlsAddr+" (a TLS port addressed with redis://? use rediss://)\n", r.stderr)

	r = runEnqueue(t, invocation{}, "--redis-url", "rediss://"+tlsAddr+"/0", "--timeout", "2s", "dead", "list")
	requireCode(t, r, exitFailure)
	require.Equal(t, "enqueue: TLS handshake with Redis at "+tlsAddr+" failed: x509: certificate signed by unknown authority\n", r.stderr)

	r = runEnqueue(t, invocation{}, "--redis-url", "rediss://"+tlsAddr+"/0?skip_verify=true", "--timeout", "2s", "dead", "list")
	requireCode(t, r, exitOK)
	require.Equal(t, "no dead letters\n", r.stdout)
}
