package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/meetops/meetops"
	"github.com/meetops/meetops/internal/bulk"
)

// commonFlags are the enqueue options every operation command takes.
type commonFlags struct {
	key, queue, at string
	in             time.Duration
	maxRetry       int
	requireServed  bool
}

func (c *commonFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&c.key, "key", "", "idempotency key (default: derived from the operation)")
	fs.StringVar(&c.queue, "queue", "", `queue (default "default")`)
	fs.DurationVar(&c.in, "in", 0, "run after this delay, e.g. 10m")
	fs.StringVar(&c.at, "at", "", "run at this RFC 3339 time, e.g. 2030-01-06T09:00:00Z")
	fs.IntVar(&c.maxRetry, "max-retry", 0, "retries of transient failures before dead-lettering (default 12; 0: none)")
	fs.BoolVar(&c.requireServed, requireServedFlag, false, requireServedUsage)
}

// requireServedFlag refuses an enqueue into a queue no running worker
// serves (bulk: any such line refuses the whole input).
const (
	requireServedFlag  = "require-served-queue"
	requireServedUsage = "refuse, with exit 5 and nothing enqueued, when no running worker serves the queue (default: enqueue it and warn)"
)

// options turns the flags that were set into enqueue options.
func (c *commonFlags) options(fs *pflag.FlagSet) ([]meetops.Option, error) {
	var opts []meetops.Option
	if fs.Changed("key") {
		opts = append(opts, meetops.WithKey(c.key))
	}
	if fs.Changed("queue") {
		opts = append(opts, meetops.WithQueue(c.queue))
	}
	if fs.Changed("in") && fs.Changed("at") {
		return nil, usageErrorf("--in and --at exclude each other")
	}
	if fs.Changed("in") {
		opts = append(opts, meetops.ProcessIn(c.in))
	}
	if fs.Changed("at") {
		t, err := time.Parse(time.RFC3339, c.at)
		if err != nil {
			return nil, usageErrorf("--at must be an RFC 3339 time like 2030-01-06T09:00:00Z, got %q", c.at)
		}
		opts = append(opts, meetops.ProcessAt(t))
	}
	if fs.Changed("max-retry") {
		opts = append(opts, meetops.WithMaxRetry(c.maxRetry))
	}
	if c.requireServed {
		opts = append(opts, meetops.RequireServedQueue())
	}
	return opts, nil
}

// opSpec describes one operation command.
type opSpec struct {
	use, short, example string
	// flags registers the operation's own flags and returns a function
	// that builds the operation from them.
	flags    func(fs *pflag.FlagSet) func() meetops.Op
	required []string
}

func opCommands(a *app) []*cobra.Command {
	specs := []opSpec{{
		use:     meetops.Dismiss{}.Name(),
		short:   "Dismiss an RTC room, removing all its users",
		example: "  enqueue dismiss --app-id demo-app --room-id room-001\n  enqueue dismiss --app-id demo-app --room-id room-002 --in 10m -o json",
		flags: func(fs *pflag.FlagSet) func() meetops.Op {
			var op meetops.Dismiss
			fs.StringVar(&op.AppID, "app-id", "", "RTC application ID")
			fs.StringVar(&op.RoomID, "room-id", "", "room ID")
			return func() meetops.Op { return op }
		},
		required: []string{"app-id", "room-id"},
	}, {
		use:     meetops.Disable{}.Name(),
		short:   "Disable an RTC application",
		example: "  enqueue disable --app-id demo-app-2\n  enqueue disable --app-id demo-app-2 --key offboarding-4711 --queue critical",
		flags: func(fs *pflag.FlagSet) func() meetops.Op {
			var op meetops.Disable
			fs.StringVar(&op.AppID, "app-id", "", "RTC application ID")
			return func() meetops.Op { return op }
		},
		required: []string{"app-id"},
	}, {
		use:     meetops.Cancel{}.Name(),
		short:   "Cancel a scheduled meeting (--end-ongoing: also end one in progress)",
		example: "  enqueue cancel --conference-id 900000001\n  enqueue cancel --conference-id 900000010 --end-ongoing --at 2030-01-06T18:00:00Z",
		flags: func(fs *pflag.FlagSet) func() meetops.Op {
			var op meetops.Cancel
			fs.StringVar(&op.ConferenceID, "conference-id", "", "meeting (conference) ID")
			fs.StringVar(&op.UserUUID, "user-uuid", "", "UUID of the user to act as (default: the authenticated one)")
			fs.BoolVar(&op.EndOngoing, "end-ongoing", false, "also end the meeting when it is in progress")
			return func() meetops.Op { return op }
		},
		required: []string{"conference-id"},
	}, {
		use:     meetops.HangUp{}.Name(),
		short:   "Hang up participants (1 to 500) of a meeting in progress",
		example: "  enqueue hangup --conference-id 900000010 --participant-ids p-001,p-002",
		flags: func(fs *pflag.FlagSet) func() meetops.Op {
			var op meetops.HangUp
			fs.StringVar(&op.ConferenceID, "conference-id", "", "meeting (conference) ID")
			fs.StringSliceVar(&op.ParticipantIDs, "participant-ids", nil, "comma-separated participant IDs")
			return func() meetops.Op { return op }
		},
		required: []string{"conference-id", "participant-ids"},
	}, {
		use:     meetops.Reclaim{}.Name(),
		short:   "Reclaim cloud meeting rooms (VMRs, 1 to 100) from a member account",
		example: "  enqueue reclaim --account member-alice --vmr-ids vmr-alice-1,vmr-alice-2\n  enqueue reclaim --account tp-user-bob --account-type 1 --vmr-ids vmr-bob-1",
		flags: func(fs *pflag.FlagSet) func() meetops.Op {
			var op meetops.Reclaim
			fs.StringVar(&op.Account, "account", "", "member account")
			fs.IntVar(&op.AccountType, "account-type", 0, "0: Huawei Cloud Meeting account, 1: third-party user ID")
			fs.StringSliceVar(&op.VMRIDs, "vmr-ids", nil, "comma-separated VMR IDs")
			return func() meetops.Op { return op }
		},
		required: []string{"account", "vmr-ids"},
	}}
	cmds := make([]*cobra.Command, 0, len(specs))
	for _, s := range specs {
		cmds = append(cmds, a.opCommand(s))
	}
	return cmds
}

func (a *app) opCommand(s opSpec) *cobra.Command {
	var common commonFlags
	cmd := &cobra.Command{
		Use:   s.use + " [flags]",
		Short: s.short,
		Long: s.short + ".\n\nPrints the task's key and state. Enqueueing the same operation again (same\nkey, same payload) changes nothing and exits 0; a key already used for a\ndifferent operation exits 3.\n\n" +
			"When no running worker serves the queue, the task is enqueued and waits for\none; a warning on stderr names the queues workers serve. With\n--require-served-queue nothing is enqueued and the exit code is 5.",
		Example: s.example,
		Args:    cobra.NoArgs,
	}
	build := s.flags(cmd.Flags())
	common.register(cmd.Flags())
	for _, f := range s.required {
		_ = cmd.MarkFlagRequired(f) // the flag was just registered
		cmd.Flags().Lookup(f).Usage += " (required)"
	}
	cmd.RunE = runE(func(cmd *cobra.Command, _ []string) error {
		opts, err := common.options(cmd.Flags())
		if err != nil {
			return err
		}
		op := build()
		if err := meetops.Validate(op, opts...); err != nil {
			return flagError(err)
		}
		c, err := a.connect(cmd.Context())
		if err != nil {
			return err
		}
		info, err := c.Enqueue(cmd.Context(), op, opts...)
		if errors.Is(err, meetops.ErrQueueUnserved) {
			return fmt.Errorf("%w; nothing enqueued (--%s)", err, requireServedFlag)
		}
		if err != nil {
			return err
		}
		if info.Unserved {
			a.warnUnserved(cmd.Context(), c, info.Queue)
		}
		return a.printInfos([]meetops.Info{info})
	})
	return cmd
}

// printInfos prints enqueued tasks: a table, or one JSON object (-o json)
// per task.
func (a *app) printInfos(infos []meetops.Info) error {
	if a.json() {
		for _, info := range infos {
			if err := writeJSON(a.stdout, info); err != nil {
				return err
			}
		}
		return nil
	}
	t := newTable(a.stdout, "KEY", "QUEUE", "STATE", "DUPLICATE")
	for _, info := range infos {
		t.row(info.Key, info.Queue, info.State, info.Duplicate)
	}
	return t.flush()
}

// invalidError is a validation error reworded for the command line; it
// matches meetops.ErrInvalid.
type invalidError struct{ msg string }

func (e *invalidError) Error() string        { return e.msg }
func (e *invalidError) Is(target error) bool { return target == meetops.ErrInvalid }

// flagError rewords validation errors to name flags instead of payload
// fields: "app_id: must not be empty" becomes "--app-id: must not be empty".
func flagError(err error) error {
	var parts []string
	for _, e := range bulk.Leaves(err) {
		var fe *meetops.FieldError
		if errors.As(e, &fe) && fe.Field != "" {
			parts = append(parts, flagName(fe.Field)+": "+fe.Msg)
			continue
		}
		parts = append(parts, e.Error())
	}
	return &invalidError{msg: "invalid: " + strings.Join(parts, "; ")}
}

func flagName(field string) string {
	base, index, _ := strings.Cut(field, "[")
	if index != "" {
		index = "[" + index
	}
	switch base {
	case "process_in":
		return "--in"
	case "process_at":
		return "--at"
	}
	return "--" + strings.ReplaceAll(base, "_", "-") + index
}
