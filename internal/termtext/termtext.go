// Package termtext makes untrusted text safe to print on a terminal.
//
// Upstream error messages, task IDs and payloads can carry ESC, OSC and
// other control sequences that a terminal would act on (rewrite the
// screen, set the window title, hide text, or worse). [Escape] shows them
// as visible escapes instead. It is for output meant for people (tables,
// console logs, one-line errors); JSON output stays exact.
package termtext

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// Escape returns s with every C0 control character (tab and newline
// included), DEL, every C1 control character and every byte that is not
// valid UTF-8 replaced by a visible escape: \x1b, \u009b, \xff. Other
// text, non-ASCII letters included, is unchanged; s is returned as is when
// it needs nothing.
func Escape(s string) string {
	if clean(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b.WriteString(`\x`)
			b.WriteString(hex2(s[i]))
		case r < 0x20 || r == 0x7f:
			b.WriteString(`\x`)
			b.WriteString(hex2(byte(r)))
		case r >= 0x80 && r <= 0x9f:
			b.WriteString(`\u00`)
			b.WriteString(hex2(byte(r)))
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// clean reports whether s needs no escaping.
func clean(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f {
			return false
		}
		if c >= 0x80 {
			// Non-ASCII: valid UTF-8 without C1 controls (encoded as
			// 0xC2 0x80–0x9F) is clean.
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 || r >= 0x80 && r <= 0x9f {
				return false
			}
			i += size - 1
		}
	}
	return true
}

func hex2(c byte) string {
	h := strconv.FormatUint(uint64(c), 16)
	if len(h) == 1 {
		return "0" + h
	}
	return h
}
