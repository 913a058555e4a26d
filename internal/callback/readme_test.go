package callback_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/callback"
)

// readmeBlock returns the README's first fenced block in lang that
// contains marker.
func readmeBlock(t *testing.T, lang, marker string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	require.NoError(t, err)
	for _, part := range strings.Split(string(b), "```"+lang+"\n")[1:] {
		block, _, _ := strings.Cut(part, "```")
		if strings.Contains(block, marker) {
			return block
		}
	}
	t.Fatalf("README.md has no %s block with %q", lang, marker)
	return ""
}

// verify is the README's Go receiver example, verbatim
// (TestReadmeGoVerifier checks they are the same).
func verify(secret []byte, header string, body []byte) bool {
	f := map[string]string{}
	for _, kv := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(kv, "=")
		f[k] = v
	}
	t, err := strconv.ParseInt(f["t"], 10, 64)
	mac := hmac.New(sha256.New, secret)
	fmt.Fprintf(mac, "%s.%s", f["t"], body)
	return err == nil && time.Since(time.Unix(t, 0)).Abs() <= 5*time.Minute &&
		hmac.Equal([]byte(f["v1"]), []byte(hex.EncodeToString(mac.Sum(nil))))
}

// signed returns a delivery body, a valid signature of it, a tampered
// body and an old signature.
func signed() (body []byte, sig, oldSig string, tampered []byte) {
	secret := []byte("s3cret")
	body = []byte(`{"batch_id":"b_0123456789abcdef01234567","total":3,"complete":true}`)
	return body, callback.Sign(secret, time.Now(), body), callback.Sign(secret, time.Now().Add(-10*time.Minute), body),
		[]byte(strings.Replace(string(body), "3", "4", 1))
}

func TestReadmeGoVerifier(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile("readme_test.go")
	require.NoError(t, err)
	block := readmeBlock(t, "go", "func verify(")
	require.Contains(t, string(src), block, "the README's Go example is the function tested here")
	body, sig, oldSig, tampered := signed()
	require.True(t, verify([]byte("s3cret"), sig, body))
	require.False(t, verify([]byte("s3cret"), sig, tampered))
	require.False(t, verify([]byte("other"), sig, body))
	require.False(t, verify([]byte("s3cret"), oldSig, body), "older than five minutes")
}

// The README's Python receiver example accepts what the worker signs and
// refuses a tampered body, another secret and an old signature.
func TestReadmePythonVerifier(t *testing.T) {
	t.Parallel()
	python, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("MEETOPS_REQUIRE_PYTHON") == "1" {
			t.Fatal("python3 not found in PATH and MEETOPS_REQUIRE_PYTHON=1")
		}
		t.Skip("python3 not found in PATH: install python3 to check the README's Python example")
	}
	body, sig, oldSig, tampered := signed()
	script := readmeBlock(t, "python", "def verify(") + fmt.Sprintf(`
import sys
checks = [
    verify(b"s3cret", %q, %q.encode()),
    not verify(b"s3cret", %q, %q.encode()),
    not verify(b"other", %q, %q.encode()),
    not verify(b"s3cret", %q, %q.encode()),
]
print(checks)
sys.exit(0 if all(checks) else 1)
`, sig, body, sig, tampered, sig, body, oldSig, body)
	out, err := exec.Command(python, "-c", script).CombinedOutput()
	require.NoError(t, err, "%s", out)
}
