package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/meetops/meetops/internal/termtext"
)

// table writes aligned columns for people.
type table struct {
	tw *tabwriter.Writer
}

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	if len(header) > 0 {
		t.row(toAny(header)...)
	}
	return t
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

func (t *table) row(cells ...any) {
	for i, c := range cells {
		if i > 0 {
			fmt.Fprint(t.tw, "\t")
		}
		fmt.Fprint(t.tw, cell(c))
	}
	fmt.Fprintln(t.tw)
}

func (t *table) flush() error { return t.tw.Flush() }

// cell renders one table cell: "-" for empty values, UTC times, tabs and
// newlines flattened so the columns stay aligned, and any other control
// character escaped (an upstream message or a task ID could carry terminal
// escape sequences).
func cell(v any) string {
	var s string
	switch x := v.(type) {
	case string:
		s = x
	case time.Time:
		if x.IsZero() {
			return "-"
		}
		s = x.UTC().Format(time.RFC3339)
	case bool:
		s = "no"
		if x {
			s = "yes"
		}
	case int:
		if x == 0 {
			return "-"
		}
		s = fmt.Sprint(x)
	default:
		s = fmt.Sprint(x)
	}
	if s == "" {
		return "-"
	}
	return termtext.Escape(strings.NewReplacer("\t", " ", "\n", " ", "\r", " ").Replace(s))
}

// truncate shortens s to n runes, marking the cut.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// writeJSON writes v as one line of JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// indentJSON renders raw JSON indented for people ("-" when empty), its
// control characters escaped line by line.
func indentJSON(raw []byte, prefix string) string {
	if len(raw) == 0 {
		return prefix + "-"
	}
	var b bytes.Buffer
	if err := json.Indent(&b, raw, prefix, "  "); err != nil {
		return prefix + termtext.Escape(string(raw))
	}
	lines := strings.Split(b.String(), "\n")
	for i, l := range lines {
		lines[i] = termtext.Escape(l)
	}
	return prefix + strings.Join(lines, "\n")
}

// jsonArray streams a JSON array, one element per line, so a long list
// never sits in memory.
type jsonArray struct {
	w     io.Writer
	count int
}

func (j *jsonArray) add(v any) error {
	var b bytes.Buffer
	if err := writeJSON(&b, v); err != nil {
		return err
	}
	sep := ",\n"
	if j.count == 0 {
		sep = "[\n"
	}
	j.count++
	_, err := fmt.Fprintf(j.w, "%s%s", sep, bytes.TrimSuffix(b.Bytes(), []byte("\n")))
	return err
}

func (j *jsonArray) close() error {
	if j.count == 0 {
		_, err := fmt.Fprintln(j.w, "[]")
		return err
	}
	_, err := fmt.Fprint(j.w, "\n]\n")
	return err
}
