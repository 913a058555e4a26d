// Package bulk reads operations from JSONL and CSV files and enqueues them
// concurrently while streaming, in bounded memory whatever the file size.
//
// A JSONL line is one flat object: "op", the operation's payload fields
// (as in the task payload) and optionally "key", "queue", "process_at"
// (RFC 3339) and "max_retry". A CSV file has a header row with the same
// names; list fields are ';'-separated and an empty cell is an absent
// field. Every line is validated exactly as the worker validates payloads;
// unknown fields are rejected by name.
//
// Reading (a [Reader]) is separate from enqueueing (an [Enqueuer]) so that
// the engine in [Run] can be driven by benchmarks and a pipelined enqueuer
// can replace the one-call-per-line client.
package bulk

import (
	"errors"
	"strings"
	"time"

	"github.com/meetops/meetops"
)

// Item is one input line, parsed and validated.
type Item struct {
	// Line is the 1-based line number in the input (for CSV the line the
	// record starts on).
	Line int
	// Index is the item's 0-based position among the input's operations
	// (blank lines and a CSV header not counted): its index in a batch.
	Index int
	// Op is the operation; nil when the line is invalid.
	Op meetops.Op
	// Key is the idempotency key: the line's own, or the derived one.
	Key string
	// Queue is the line's queue; "" means the default.
	Queue string
	// ProcessAt is the line's schedule; zero means now.
	ProcessAt time.Time
	// MaxRetry is the line's retry budget; nil means the default.
	MaxRetry *int
	// Err says why the line is invalid (it matches meetops.ErrInvalid);
	// nil for a valid line.
	Err error
}

// Options returns the enqueue options the line asks for (nil for none).
func (it Item) Options() []meetops.Option {
	var opts []meetops.Option
	if it.Key != "" {
		opts = append(opts, meetops.WithKey(it.Key))
	}
	if it.Queue != "" {
		opts = append(opts, meetops.WithQueue(it.Queue))
	}
	if !it.ProcessAt.IsZero() {
		opts = append(opts, meetops.ProcessAt(it.ProcessAt))
	}
	if it.MaxRetry != nil {
		opts = append(opts, meetops.WithMaxRetry(*it.MaxRetry))
	}
	return opts
}

// Reason is Err as one line: joined errors are separated by "; ".
func (it Item) Reason() string { return OneLine(it.Err) }

// OneLine flattens err, which may join several, into one line.
func OneLine(err error) string {
	var parts []string
	for _, e := range Leaves(err) {
		parts = append(parts, strings.ReplaceAll(e.Error(), "\n", "; "))
	}
	return strings.Join(parts, "; ")
}

// Leaves returns the errors err joins (errors.Join, recursively), or err
// itself when it joins none; nil for nil.
func Leaves(err error) []error {
	if err == nil {
		return nil
	}
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return []error{err}
	}
	var out []error
	for _, e := range j.Unwrap() {
		out = append(out, Leaves(e)...)
	}
	return out
}

// Reader yields the items of an input, one per non-blank line. Next
// returns io.EOF at the end; any other error is fatal for the whole input
// (an I/O error, a bad CSV header). An invalid line is not an error: its
// Item carries Err.
type Reader interface {
	Next() (Item, error)
}

// errorf returns an ErrInvalid-matching error without a field.
func errorf(msg string) error { return &meetops.FieldError{Msg: msg} }

// fieldErr returns an ErrInvalid-matching error naming field.
func fieldErr(field, msg string) error { return &meetops.FieldError{Field: field, Msg: msg} }

// Classes of invalid lines, besides ErrInvalid, which every one matches:
// a line's error (or one of the errors it joins) matches ErrMalformed or
// ErrUnknownField when the line is not an object at all or names a field
// its operation does not take. Any other invalid line is well formed with
// a field that fails validation. The HTTP API answers the first two 400
// and the third 422.
var (
	// ErrMalformed: the line is not one JSON object (malformed JSON,
	// another JSON value, trailing data, over MaxLineBytes).
	ErrMalformed = errors.New("not a JSON object")
	// ErrUnknownField: the object has a field that no operation takes, or
	// that its operation does not take.
	ErrUnknownField = errors.New("unknown field")
)

// classError is a *meetops.FieldError that also matches its class
// (ErrMalformed, ErrUnknownField); errors.As still finds the FieldError.
type classError struct {
	*meetops.FieldError
	class error
}

// Is makes errors.Is(err, class) true.
func (e *classError) Is(target error) bool { return target == e.class }

// Unwrap returns the FieldError (which matches meetops.ErrInvalid).
func (e *classError) Unwrap() error { return e.FieldError }

// malformed returns an ErrMalformed error without a field.
func malformed(msg string) error {
	return &classError{FieldError: &meetops.FieldError{Msg: msg}, class: ErrMalformed}
}

// unknownField returns an ErrUnknownField error naming field.
func unknownField(field, msg string) error {
	return &classError{FieldError: &meetops.FieldError{Field: field, Msg: msg}, class: ErrUnknownField}
}
