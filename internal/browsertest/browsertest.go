// Package browsertest finds the headless Chromium that the dashboard's
// browser tests drive, with one rule for every package that has them.
package browsertest

import (
	"os"
	"os/exec"
	"testing"
)

// Chromium returns the path of a Chromium binary in PATH. When there is
// none it skips the test, saying what to install, or fails it when CI
// demands the browser checks with MEETOPS_REQUIRE_CHROMIUM=1, so a missing
// browser never passes silently there.
func Chromium(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("MEETOPS_REQUIRE_CHROMIUM") == "1" {
		t.Fatal("chromium not found in PATH and MEETOPS_REQUIRE_CHROMIUM=1")
	}
	t.Skip("chromium not found in PATH: install Debian's chromium to run the browser checks")
	return ""
}
