package browsertest_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/browsertest"
)

func TestChromiumFindsTheBinaryInPath(t *testing.T) {
	dir := t.TempDir()
	fake := filepath.Join(dir, "chromium")
	require.NoError(t, os.WriteFile(fake, []byte("#!/bin/sh\n"), 0o755))
	t.Setenv("PATH", dir)
	require.Equal(t, fake, browsertest.Chromium(t))
}

func TestChromiumSkipsWithoutTheBinary(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	t.Setenv("MEETOPS_REQUIRE_CHROMIUM", "")
	var skipped bool
	t.Run("inner", func(t *testing.T) {
		defer func() { skipped = t.Skipped() }()
		browsertest.Chromium(t)
	})
	require.True(t, skipped, "no chromium and no requirement: the test is skipped")
}
