package worker

import (
	"bytes"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

// A console log line quoting hostile text (an upstream message, a task ID)
// carries no raw control character a terminal would act on.
func TestConsoleLogEscapesControlCharacters(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := NewLogger(&buf, "info", "console")
	hostile := "x\x1b]0;pwned\x07\x1b[2J\u009b31m"
	log.Warn().Str("error_msg", hostile).Err(errors.New(hostile)).Interface("payload", map[string]string{"id": hostile}).
		Msg("dead-lettered " + hostile)
	out := buf.String()
	require.NotEmpty(t, out)
	// (zerolog's own colour codes are fine; the hostile sequences are not.)
	for _, c := range []string{"\x1b]0;pwned", "\x07", "\x1b[2J", "\u009b"} {
		require.NotContains(t, out, c, "raw control sequence in %q", out)
	}
	require.Contains(t, out, "dead-lettered x")
}
