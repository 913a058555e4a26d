package termtext_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/termtext"
)

func TestEscape(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"plain text", "plain text"},
		{"ünïcödé 会议 ok", "ünïcödé 会议 ok"},
		{"\x1b[2J\x1b]0;pwned\x07", `\x1b[2J\x1b]0;pwned\x07`},
		{"tab\there\nnew\rline", `tab\x09here\x0anew\x0dline`},
		{"del\x7f", `del\x7f`},
		{"csi \u009b31m c1", `csi \u009b31m c1`},
		{"bad \xff\xfe utf8", `bad \xff\xfe utf8`},
		{"", ""},
	} {
		got := termtext.Escape(tc.in)
		require.Equal(t, tc.want, got, "%q", tc.in)
		for _, c := range []byte(got) {
			require.False(t, c < 0x20 || c == 0x7f, "control byte %#x left in %q", c, got)
		}
	}
}

func FuzzEscape(f *testing.F) {
	f.Add("\x1b]8;;http://evil\x07link\x1b]8;;\x07")
	f.Add("\u009b\u0085ok")
	f.Fuzz(func(t *testing.T, s string) {
		got := termtext.Escape(s)
		for i, r := range got {
			if r < 0x20 || r == 0x7f || r >= 0x80 && r <= 0x9f || r == 0xfffd && got[i] != 0xef {
				t.Fatalf("Escape(%q) = %q keeps %U", s, got, r)
			}
		}
		if termtext.Escape(got) != got {
			t.Fatalf("Escape is not idempotent on %q", got)
		}
	})
}
