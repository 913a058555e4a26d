package reliability_test

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

// Scenario 7 lives in the packages it fuzzes: FuzzDecode (internal/tasks),
// FuzzSignVerify (internal/apiclient), FuzzJSONL and FuzzCSV
// (internal/bulk), FuzzDecode (internal/api: the HTTP API's request
// decoding). go test runs their seed corpora there; `make fuzz`
// explores each for 60 s. This test keeps the corpora from going missing
// and puts their size in the summary.
func TestFuzzSeedCorporaPresent(t *testing.T) {
	t.Parallel()
	row := report(t, "7 hostile input (fuzz seed corpora)")
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	seeds := 0
	for _, target := range []struct{ pkg, name string }{
		{"internal/tasks", "FuzzDecode"},
		{"internal/apiclient", "FuzzSignVerify"},
		{"internal/bulk", "FuzzJSONL"},
		{"internal/bulk", "FuzzCSV"},
		{"internal/api", "FuzzDecode"},
	} {
		entries, err := os.ReadDir(filepath.Join(root, target.pkg, "testdata", "fuzz", target.name))
		require.NoError(t, err, "seed corpus of %s", target.name)
		require.GreaterOrEqual(t, len(entries), 10, "seed corpus of %s", target.name)
		seeds += len(entries)
	}
	row.Tasks = seeds
	row.Note = fmt.Sprintf("%d seeds over 5 targets run by go test in their packages; make fuzz: 60 s each", seeds)
}
