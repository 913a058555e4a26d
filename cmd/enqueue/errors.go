package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/meetops/meetops"
	"github.com/meetops/meetops/internal/bulk"
	"github.com/meetops/meetops/internal/termtext"
)

// Exit codes, as the command documents them (enqueue --help).
const (
	exitOK        = 0
	exitFailure   = 1
	exitUsage     = 2
	exitKeyReused = 3
	// exitUnserved: --require-served-queue, and no running worker serves
	// the queue; nothing was enqueued.
	exitUnserved = 5
)

// usageError is a wrong command line: exit 2, with a pointer to --help.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// exitError ends the command with code; err, when not nil, is printed.
// A nil err means the command already said what went wrong.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// ranError marks an error returned by one of our commands, as opposed to
// cobra's own command-line parsing errors, which are all usage errors.
type ranError struct{ err error }

func (e *ranError) Error() string { return e.err.Error() }

// runE wraps a command's RunE so report can tell its errors from cobra's.
func runE(fn func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if err := fn(cmd, args); err != nil {
			return &ranError{err: err}
		}
		return nil
	}
}

// report prints err (one line) and returns the exit code.
func (a *app) report(cmd *cobra.Command, err error) int {
	if err == nil {
		return exitOK
	}
	var ran *ranError
	if !errors.As(err, &ran) {
		a.usage(cmd, err.Error())
		return exitUsage
	}
	err = ran.err
	var ee *exitError
	var ue *usageError
	switch {
	case errors.As(err, &ee):
		if ee.err != nil {
			a.printErr(ee.err)
		}
		return ee.code
	case errors.As(err, &ue):
		a.usage(cmd, ue.msg)
		return exitUsage
	case errors.Is(err, meetops.ErrKeyReused):
		a.printErr(err)
		return exitKeyReused
	case errors.Is(err, meetops.ErrQueueUnserved):
		a.printErr(err)
		return exitUnserved
	case errors.Is(err, meetops.ErrInvalid):
		a.printErr(err)
		return exitUsage
	}
	a.printErr(err)
	return exitFailure
}

// printErr prints err as one line, control characters escaped: an error
// can quote an upstream message or a key.
func (a *app) printErr(err error) {
	fmt.Fprintf(a.stderr, "enqueue: %s\n", termtext.Escape(bulk.OneLine(err)))
}

func (a *app) usage(cmd *cobra.Command, msg string) {
	fmt.Fprintf(a.stderr, "enqueue: %s\n", termtext.Escape(msg))
	if cmd != nil {
		fmt.Fprintf(a.stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
}
