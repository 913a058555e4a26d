package reliability

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Rows print in the order of their scenario numbers (10 after 9, not after
// 1), the failover columns only where measured, and a totals row.
func TestTableOrderAndFailoverColumns(t *testing.T) {
	var tab Table
	tab.Add(Row{Scenario: "10 suite", Tasks: 3})
	tab.Add(Row{Scenario: "12 failover", Tasks: 5, Lost: 1, Failover: true, Stuck: 2, Recovery: 1234 * time.Millisecond})
	tab.Add(Row{Scenario: "9 TLS", Tasks: 1})
	tab.Add(Row{Scenario: "1 kill", Tasks: 2, Failed: true})
	var names []string
	for _, r := range tab.Rows() {
		names = append(names, r.Scenario)
	}
	require.Equal(t, []string{"1 kill", "9 TLS", "10 suite", "12 failover"}, names)

	var b strings.Builder
	require.NoError(t, tab.Fprint(&b))
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	require.Len(t, lines, 7) // title, header, 4 rows, total
	require.Regexp(t, `^scenario +result +tasks +lost +duplicated +stuck +recovery +upstream calls +time +note$`, lines[1])
	require.Regexp(t, `^9 TLS +ok +1 +0 +0 +- +- +0 `, lines[3])
	require.Regexp(t, `^12 failover +ok +5 +1 +0 +2 +1\.23s +0 `, lines[5])
	require.Regexp(t, `^total +FAIL +11 +1 +0 +2 +1\.23s +0 `, lines[6])
}
