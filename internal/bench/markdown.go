package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
)

// markdownFile writes the results file at path as the README's Markdown
// table (bench -md FILE): the README's figures are regenerated from the
// JSON of a run, never typed in.
func markdownFile(w io.Writer, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var rep Report
	if err := json.Unmarshal(b, &rep); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	writeMarkdown(w, rep)
	return nil
}

// writeMarkdown writes rep as a Markdown table, then each row's note as a
// list item under it.
func writeMarkdown(w io.Writer, rep Report) {
	fmt.Fprintf(w, "Run of %s: %s, Go %s, redis-server %s.\n\n", rep.Date, rep.Machine, strings.TrimPrefix(rep.Go, "go"), rep.Redis)
	fmt.Fprintln(w, "| scenario | metric | ours | baseline | ratio | goal | met |")
	fmt.Fprintln(w, "| --- | --- | ---: | ---: | ---: | --- | --- |")
	for _, r := range rep.Rows {
		met := "yes"
		if !r.Met {
			met = "**no**"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %.2f | %s | %s |\n", cell(r.Scenario), cell(r.Metric), num(r.Ours), num(r.Baseline), r.Ratio, cell(r.Goal), met)
	}
	fmt.Fprintln(w)
	for _, r := range rep.Rows {
		if r.Note != "" {
			fmt.Fprintf(w, "- %s / %s: %s\n", cell(r.Scenario), cell(r.Metric), cell(r.Note))
		}
	}
}

// cell escapes what would end a Markdown table cell.
func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
