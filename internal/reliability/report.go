package reliability

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// Row is the outcome of one scenario.
type Row struct {
	// Scenario names the scenario; rows print sorted by its leading
	// number, then by name, so start it with its number ("1 worker
	// killed").
	Scenario string
	// Tasks is how many tasks the scenario ran.
	Tasks int
	// Lost counts tasks that did not end as the scenario requires
	// (completed, or dead-lettered with a record).
	Lost int
	// Duplicated counts upstream objects changed more than once, or tasks
	// that called upstream more often than allowed.
	Duplicated int
	// UpstreamCalls is how many requests the simulator answered (every
	// operation, logins included).
	UpstreamCalls int
	// Time is the scenario's wall time.
	Time time.Duration
	// Failover marks the row of a failover scenario, which measures Stuck
	// and Recovery; the other rows print "-" for them.
	Failover bool
	// Stuck counts tasks still neither completed nor dead-lettered when
	// the scenario stopped waiting for them to settle.
	Stuck int
	// Recovery is the time from a replica's promotion to the first task
	// completed after it.
	Recovery time.Duration
	// Note is a short figure worth showing ("recovery 62s").
	Note string
	// Failed says the scenario's test failed.
	Failed bool
}

// Table collects rows from scenarios running in parallel.
type Table struct {
	mu   sync.Mutex
	rows []Row
}

// Add records a row.
func (t *Table) Add(r Row) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.rows = append(t.rows, r)
}

// Rows returns the rows sorted by scenario.
func (t *Table) Rows() []Row {
	t.mu.Lock()
	defer t.mu.Unlock()
	rows := slices.Clone(t.rows)
	slices.SortStableFunc(rows, func(a, b Row) int {
		if c := cmp.Compare(number(a.Scenario), number(b.Scenario)); c != 0 {
			return c
		}
		return strings.Compare(a.Scenario, b.Scenario)
	})
	return rows
}

// number is the number a scenario's name starts with, or -1 without one.
func number(scenario string) int {
	digits, _, _ := strings.Cut(scenario, " ")
	n, err := strconv.Atoi(digits)
	if err != nil {
		return -1
	}
	return n
}

// failoverColumns are the stuck and recovery cells of r: "-" unless r is a
// failover scenario's.
func failoverColumns(r Row) (stuck, recovery string) {
	if !r.Failover {
		return "-", "-"
	}
	return strconv.Itoa(r.Stuck), r.Recovery.Round(10 * time.Millisecond).String()
}

// Fprint writes the table with a title line and a totals row; it writes
// nothing when no row was added.
func (t *Table) Fprint(w io.Writer) error {
	rows := t.Rows()
	if len(rows) == 0 {
		return nil
	}
	if _, err := fmt.Fprintln(w, "\nreliability summary"); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\tresult\ttasks\tlost\tduplicated\tstuck\trecovery\tupstream calls\ttime\tnote")
	var total Row
	for _, r := range rows {
		result := "ok"
		if r.Failed {
			result = "FAIL"
			total.Failed = true
		}
		if r.Failover {
			total.Failover = true
			total.Stuck += r.Stuck
			total.Recovery = max(total.Recovery, r.Recovery)
		}
		stuck, recovery := failoverColumns(r)
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\t%s\t%d\t%s\t%s\n", r.Scenario, result, r.Tasks, r.Lost, r.Duplicated,
			stuck, recovery, r.UpstreamCalls, r.Time.Round(100*time.Millisecond), r.Note)
		total.Tasks += r.Tasks
		total.Lost += r.Lost
		total.Duplicated += r.Duplicated
		total.UpstreamCalls += r.UpstreamCalls
		total.Time = max(total.Time, r.Time)
	}
	result := "ok"
	if total.Failed {
		result = "FAIL"
	}
	stuck, recovery := failoverColumns(total)
	fmt.Fprintf(tw, "total\t%s\t%d\t%d\t%d\t%s\t%s\t%d\t%s\t%s\n", result, total.Tasks, total.Lost, total.Duplicated,
		stuck, recovery, total.UpstreamCalls, total.Time.Round(100*time.Millisecond), "time: longest scenario; recovery: slowest")
	return tw.Flush()
}
