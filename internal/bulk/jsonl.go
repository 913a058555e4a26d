package bulk

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// MaxLineBytes bounds one input line. The largest valid payload (500
// participant IDs of 128 bytes) is about 66 KB; longer lines are invalid,
// and reading never buffers more than this.
const MaxLineBytes = 1 << 20

var utf8BOM = []byte("\xef\xbb\xbf")

// lineReader reads lines in bounded memory, reporting over-long ones
// instead of buffering them.
type lineReader struct {
	br   *bufio.Reader
	line int
}

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, MaxLineBytes)}
}

// next returns the next line without its end of line, valid until the
// following call; tooLong reports a line over MaxLineBytes (whose content
// is skipped). It returns io.EOF after the last line.
func (r *lineReader) next() (b []byte, tooLong bool, err error) {
	b, err = r.br.ReadSlice('\n')
	for errors.Is(err, bufio.ErrBufferFull) {
		tooLong = true
		_, err = r.br.ReadSlice('\n')
	}
	if errors.Is(err, io.EOF) && len(b) > 0 {
		err = nil
	}
	if err != nil {
		return nil, false, err
	}
	r.line++
	b = bytes.TrimRight(b, "\r\n")
	if r.line == 1 {
		b = bytes.TrimPrefix(b, utf8BOM)
	}
	return b, tooLong, nil
}

// jsonlReader reads JSON Lines.
type jsonlReader struct {
	lines *lineReader
}

// NewJSONL returns a Reader of JSON Lines: one flat object per line, blank
// lines skipped.
func NewJSONL(r io.Reader) Reader {
	return &jsonlReader{lines: newLineReader(r)}
}

// Next implements Reader.
func (r *jsonlReader) Next() (Item, error) {
	for {
		b, tooLong, err := r.lines.next()
		if err != nil {
			return Item{}, err
		}
		line := r.lines.line
		if tooLong {
			return tooLongItem(line), nil
		}
		b = bytes.TrimSpace(b)
		if len(b) == 0 {
			continue
		}
		return parseJSONLine(line, b, true), nil
	}
}

// tooLongItem is the item of a line over MaxLineBytes.
func tooLongItem(line int) Item {
	return Item{Line: line, Err: malformed(fmt.Sprintf("line longer than %d bytes", MaxLineBytes))}
}

// parseJSONLine parses the trimmed, non-blank line b, deriving the key of
// a valid line without one when derive is set: by the fast path when it
// takes the line, else by the general one.
func parseJSONLine(line int, b []byte, derive bool) Item {
	if b[0] != '{' {
		return Item{Line: line, Err: malformed("not a JSON object")}
	}
	if it, ok := parseFast(line, b, derive); ok {
		return it
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return Item{Line: line, Err: malformed("malformed JSON: " + jsonErr(err))}
	}
	return build(line, m, nil, derive)
}

// ParseObject parses one operation object — the object a JSONL line
// holds, which may span lines here — exactly as a line of a bulk file is
// parsed: the same fields, the same validation, the same errors (see
// ErrMalformed and ErrUnknownField for telling them apart). Line is 0, and
// Key is the object's own "key" ("" when it has none: nothing is derived).
// An object longer than MaxLineBytes is malformed, as such a line is.
func ParseObject(b []byte) Item {
	if len(b) > MaxLineBytes {
		return tooLongItem(0)
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return Item{Err: malformed("empty: want one JSON object")}
	}
	return parseJSONLine(0, b, false)
}

func jsonErr(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%v at byte %d", err, se.Offset)
	}
	return err.Error()
}
