package bulk

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Format is an input format.
type Format string

// The input formats.
const (
	JSONL Format = "jsonl"
	CSV   Format = "csv"
)

// Stdin is the input name that means standard input.
const Stdin = "-"

// FormatFor returns the format of the input name: explicit when given
// ("jsonl" or "csv"), else by extension (.jsonl, .ndjson, .json → JSONL;
// .csv → CSV); standard input defaults to JSONL.
func FormatFor(name, explicit string) (Format, error) {
	switch Format(strings.ToLower(explicit)) {
	case JSONL:
		return JSONL, nil
	case CSV:
		return CSV, nil
	case "":
	default:
		return "", fmt.Errorf("unknown format %q (want jsonl or csv)", explicit)
	}
	if name == Stdin {
		return JSONL, nil
	}
	switch strings.ToLower(filepath.Ext(name)) {
	case ".jsonl", ".ndjson", ".json":
		return JSONL, nil
	case ".csv":
		return CSV, nil
	}
	return "", fmt.Errorf("cannot tell the format of %s from its extension: pass --format jsonl or --format csv", name)
}

// Input is a bulk input that can be read more than once (validation, then
// enqueueing). Standard input and other streams are spooled to a temporary
// file, so both passes run in bounded memory.
type Input struct {
	// Name is the name to report lines under ("-" for standard input).
	Name   string
	Format Format
	path   string
	spool  bool
}

// OpenInput prepares the input name ("-" for stdin) in format f.
func OpenInput(ctx context.Context, name string, f Format, stdin io.Reader) (*Input, error) {
	in := &Input{Name: name, Format: f, path: name}
	if name != Stdin {
		fi, err := os.Stat(name)
		if err != nil {
			return nil, err
		}
		if fi.Mode().IsRegular() {
			return in, nil
		}
		if fi.IsDir() {
			return nil, fmt.Errorf("%s is a directory", name)
		}
		src, err := os.Open(name) // a pipe or device: read it once, into the spool
		if err != nil {
			return nil, err
		}
		defer src.Close()
		stdin = src
	}
	path, err := spool(ctx, stdin)
	if err != nil {
		return nil, err
	}
	in.path, in.spool = path, true
	return in, nil
}

// Open returns a Reader over the whole input and the file to close after.
func (in *Input) Open() (Reader, io.Closer, error) {
	f, err := os.Open(in.path)
	if err != nil {
		return nil, nil, err
	}
	if in.Format == CSV {
		return NewCSV(f), f, nil
	}
	return NewJSONL(f), f, nil
}

// Close removes the spool file, if any.
func (in *Input) Close() error {
	if !in.spool {
		return nil
	}
	return os.Remove(in.path)
}

// spool copies r to a temporary file, stopping early when ctx is done.
func spool(ctx context.Context, r io.Reader) (string, error) {
	f, err := os.CreateTemp("", "enqueue-bulk-*.spool")
	if err != nil {
		return "", fmt.Errorf("spool standard input: %w", err)
	}
	_, err = io.Copy(f, ctxReader{ctx: ctx, r: r})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return "", fmt.Errorf("spool standard input: %w", err)
	}
	return f.Name(), nil
}

// ctxReader stops reading once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
