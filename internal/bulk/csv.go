package bulk

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/meetops/meetops"
)

// HeaderError is a CSV header (line 1) that cannot be used, so no line
// of the file can. It matches meetops.ErrInvalid.
type HeaderError struct {
	Msg string
}

// Error implements error.
func (e *HeaderError) Error() string { return e.Msg }

// Is makes errors.Is(err, meetops.ErrInvalid) true.
func (e *HeaderError) Is(target error) bool { return target == meetops.ErrInvalid }

// newBOMSkipper drops a UTF-8 byte order mark at the start of r.
func newBOMSkipper(r io.Reader) io.Reader {
	br := bufio.NewReader(r)
	if b, err := br.Peek(len(utf8BOM)); err == nil && bytes.Equal(b, utf8BOM) {
		_, _ = br.Discard(len(utf8BOM))
	}
	return br
}

// RecordTooLongError is a CSV record over MaxLineBytes. Reading cannot go
// on past it (where the record ends is not known without reading it whole),
// so it fails the input; Line is where the record starts.
type RecordTooLongError struct {
	Line int
}

// Error implements error.
func (e *RecordTooLongError) Error() string {
	return fmt.Sprintf("line %d: CSV record longer than %d bytes", e.Line, MaxLineBytes)
}

// Is makes errors.Is(err, meetops.ErrInvalid) true.
func (e *RecordTooLongError) Is(target error) bool { return target == meetops.ErrInvalid }

// csvReader reads CSV with a header row.
type csvReader struct {
	cr     *csv.Reader
	src    *recordLimiter
	header []string
	// nextLine is the line the next record starts on, at the earliest.
	nextLine int
}

// NewCSV returns a Reader of CSV: a header row naming the fields, then one
// operation per record; list fields are ';'-separated, empty cells absent.
// A record (a line, or several with quoted newlines) longer than
// MaxLineBytes fails the input with a *RecordTooLongError, without reading
// more of it than that.
func NewCSV(r io.Reader) Reader {
	src := &recordLimiter{r: newBOMSkipper(r)}
	cr := csv.NewReader(src)
	cr.FieldsPerRecord = -1 // checked per record, to report rather than stop
	cr.ReuseRecord = true
	return &csvReader{cr: cr, src: src, nextLine: 1}
}

// recordLimiter feeds the CSV reader, failing once the record being read
// is over MaxLineBytes: it counts the bytes it handed over since the end of
// the last record (base, set by csvReader), which exceed the record by at
// most the CSV reader's read-ahead.
type recordLimiter struct {
	r         io.Reader
	delivered int64
	base      int64
	err       error
}

// csvReadAhead bounds how far encoding/csv reads past what it consumed
// (its bufio.Reader's default size).
const csvReadAhead = 4096

func (l *recordLimiter) Read(p []byte) (int, error) {
	if l.err != nil {
		return 0, l.err
	}
	if l.delivered-l.base > MaxLineBytes+csvReadAhead {
		l.err = errRecordTooLong
		return 0, l.err
	}
	n, err := l.r.Read(p)
	l.delivered += int64(n)
	return n, err
}

var errRecordTooLong = errors.New("record too long")

// done records that the CSV reader has consumed everything up to the end
// of the record it returned, and the line the next one starts on.
func (r *csvReader) done(rec []string) {
	r.src.base = r.cr.InputOffset()
	if len(rec) > 0 {
		last, _ := r.cr.FieldPos(len(rec) - 1)
		r.nextLine = last + strings.Count(rec[len(rec)-1], "\n") + 1
	}
}

// Next implements Reader.
func (r *csvReader) Next() (Item, error) {
	if r.header == nil {
		if err := r.readHeader(); err != nil {
			return Item{}, err
		}
	}
	rec, err := r.cr.Read()
	if errors.Is(err, io.EOF) {
		return Item{}, io.EOF
	}
	if errors.Is(err, errRecordTooLong) {
		return Item{}, &RecordTooLongError{Line: r.nextLine}
	}
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		r.done(nil)
		r.nextLine = pe.Line + 1
		return Item{Line: pe.StartLine, Err: errorf("malformed CSV: " + pe.Err.Error())}, nil
	}
	if err != nil {
		return Item{}, err
	}
	r.done(rec)
	line, _ := r.cr.FieldPos(0)
	if len(rec) != len(r.header) {
		return Item{Line: line, Err: errorf(fmt.Sprintf("has %d fields, the header has %d", len(rec), len(r.header)))}, nil
	}
	m := make(map[string]json.RawMessage, len(rec))
	var errs []error
	for i, cell := range rec {
		if cell == "" {
			continue
		}
		raw, err := cellJSON(r.header[i], cell)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		m[r.header[i]] = raw
	}
	return build(line, m, errs, true), nil
}

func (r *csvReader) readHeader() error {
	rec, err := r.cr.Read()
	if errors.Is(err, io.EOF) {
		return io.EOF
	}
	if errors.Is(err, errRecordTooLong) {
		return &HeaderError{Msg: fmt.Sprintf("header: longer than %d bytes", MaxLineBytes)}
	}
	if err != nil {
		return &HeaderError{Msg: fmt.Sprintf("header: %v", err)}
	}
	r.done(rec)
	header := slices.Clone(rec)
	var problems []string
	for i, name := range header {
		header[i] = strings.TrimSpace(name)
		if _, ok := kinds[header[i]]; !ok {
			problems = append(problems, fmt.Sprintf("unknown column %q", header[i]))
		} else if slices.Contains(header[:i], header[i]) {
			problems = append(problems, fmt.Sprintf("column %q twice", header[i]))
		}
	}
	if !slices.Contains(header, fieldOp) {
		problems = append(problems, `no "op" column`)
	}
	if len(problems) > 0 {
		return &HeaderError{Msg: "header: " + strings.Join(problems, "; ")}
	}
	r.header = header
	return nil
}

// cellJSON converts a CSV cell to the JSON value of field.
func cellJSON(field, cell string) (json.RawMessage, error) {
	var v any
	switch kinds[field] {
	case kindString:
		v = cell
	case kindList:
		v = strings.Split(cell, ";")
	case kindBool:
		b, err := strconv.ParseBool(cell)
		if err != nil {
			return nil, fieldErr(field, fmt.Sprintf("must be true or false, got %q", cell))
		}
		v = b
	case kindInt:
		n, err := strconv.Atoi(cell)
		if err != nil {
			return nil, fieldErr(field, fmt.Sprintf("must be an integer, got %q", cell))
		}
		v = n
	}
	return json.Marshal(v)
}
