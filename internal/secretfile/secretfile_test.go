package secretfile_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/secretfile"
)

func write(t *testing.T, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(p, []byte(content), mode))
	require.NoError(t, os.Chmod(p, mode))
	return p
}

func TestReadTrimsTrailingWhiteSpace(t *testing.T) {
	t.Parallel()
	for _, content := range []string{"s3cret\n", "s3cret \n", "s3cret\r\n", "s3cret\t \n\n"} {
		got, warn, err := secretfile.Read(write(t, content, 0o600))
		require.NoError(t, err)
		require.Equal(t, "s3cret", got, "%q", content)
		require.Empty(t, warn)
	}
	got, _, err := secretfile.Read(write(t, "  lead and inner space  \n", 0o600))
	require.NoError(t, err)
	require.Equal(t, "  lead and inner space", got, "only trailing white space goes")
}

func TestReadWarnsOnLoosePermissions(t *testing.T) {
	t.Parallel()
	_, warn, err := secretfile.Read(write(t, "x", 0o640))
	require.NoError(t, err)
	require.Contains(t, warn, "readable by its group (mode 0640)")
	_, warn, err = secretfile.Read(write(t, "x", 0o644))
	require.NoError(t, err)
	require.Contains(t, warn, "readable by everyone")
	require.NotContains(t, warn, "x\n")
}

// A link to /dev/zero (or any huge file) is refused after MaxSize bytes,
// not read until memory runs out.
func TestReadIsBounded(t *testing.T) {
	t.Parallel()
	link := filepath.Join(t.TempDir(), "zero")
	require.NoError(t, os.Symlink("/dev/zero", link))
	_, _, err := secretfile.Read(link)
	require.ErrorContains(t, err, "larger than 64 KiB")
	_, _, err = secretfile.Read(write(t, string(make([]byte, secretfile.MaxSize+1)), 0o600))
	require.ErrorContains(t, err, "larger than 64 KiB")
	_, _, err = secretfile.Read(write(t, " \n", 0o600))
	require.ErrorContains(t, err, "is empty")
	_, _, err = secretfile.Read(t.TempDir())
	require.ErrorContains(t, err, "is a directory")
}
