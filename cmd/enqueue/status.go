package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func (a *app) statusCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "status KEY",
		Short: "Show the state and result of a task",
		Long: `Show the state and result of the task with idempotency key KEY, in whichever
queue it is: pending, scheduled, active, retry, archived (a dead letter) or
completed. A key nothing knows of exits 1. A task waiting in a queue no
running worker serves is shown with a warning on stderr.`,
		Example: "  enqueue status dismiss:322599b02d2d9687eab31a5c938aded0\n  enqueue status offboarding-4711 -o json",
		Args:    cobra.ExactArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			c, err := a.connect(cmd.Context())
			if err != nil {
				return err
			}
			st, err := c.Status(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if st.Unserved {
				a.warnUnserved(cmd.Context(), c, st.Queue)
			}
			if a.json() {
				return writeJSON(a.stdout, st)
			}
			t := newTable(a.stdout)
			t.row("key", st.Key)
			t.row("op", st.Op)
			t.row("queue", st.Queue)
			t.row("state", st.State)
			retried := "-" // unknown once asynq no longer has the task
			if st.Retried > 0 || st.MaxRetry > 0 {
				retried = fmt.Sprintf("%d of %d", st.Retried, st.MaxRetry)
			}
			t.row("retried", retried)
			t.row("next run", st.NextProcessAt)
			t.row("completed", st.CompletedAt)
			t.row("last error", st.LastError)
			t.row("payload", string(st.Payload))
			t.row("result", string(st.Result))
			return t.flush()
		}),
	}
}
