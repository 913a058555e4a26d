package bulk

import (
	"bytes"
	"context"
	"runtime"
	"sync"
)

// Chunk bounds: a chunk holds at most chunkLines lines (unless told
// otherwise), and stops taking lines once it holds chunkBytes of them, so
// that the chunks in flight stay small whatever the line lengths (a line
// is at most MaxLineBytes).
const (
	chunkLines = 512
	chunkBytes = 256 << 10
)

// chunk is a run of consecutive input lines, read in order and parsed
// apart from the other chunks.
type chunk struct {
	// items are the lines' items; before parsing, only Line (and Err for a
	// line that could not even be read, like one too long) are set.
	items []Item
	// raw holds the unparsed lines back to back; ends[i] is where item
	// i's line ends (and item i+1's begins).
	raw  []byte
	ends []int
	// err, when not nil, follows the items: io.EOF at the end of the
	// input, else a fatal input error (see Reader).
	err error
	// parsed is closed once items are parsed.
	parsed chan struct{}
	// base is the input position of the chunk's first item: items are
	// numbered 0, 1, … across the input (blank lines not counted).
	base int
}

// number sets the items' Index from the chunk's base; call it once the
// chunk is parsed.
func (c *chunk) number() {
	for i := range c.items {
		c.items[i].Index = c.base + i
	}
}

// chunks recycles chunks and their buffers.
var chunks = sync.Pool{New: func() any { return new(chunk) }}

// newChunk returns an empty chunk, not parsed.
func newChunk() *chunk {
	c := chunks.Get().(*chunk)
	c.parsed = make(chan struct{})
	return c
}

// release returns c for reuse; its items must not be used after.
func (c *chunk) release() {
	clear(c.items) // drop the references to the operations
	c.items, c.raw, c.ends, c.err, c.base = c.items[:0], c.raw[:0], c.ends[:0], nil, 0
	chunks.Put(c)
}

// splitter is a Reader whose lines can be read raw, in order, and parsed
// apart, in parallel.
type splitter interface {
	Reader
	// readRaw reads the next lines into c, up to lines of them and the
	// byte bound; it returns io.EOF after the last line.
	readRaw(c *chunk, lines int) error
	// parse parses c's raw lines, deriving keys when derive is set.
	parse(c *chunk, derive bool)
}

// readRaw implements splitter.
func (r *jsonlReader) readRaw(c *chunk, lines int) error {
	for len(c.items) < lines && len(c.raw) < chunkBytes {
		b, tooLong, err := r.lines.next()
		if err != nil {
			return err
		}
		if tooLong {
			c.items = append(c.items, tooLongItem(r.lines.line))
			c.ends = append(c.ends, len(c.raw))
			continue
		}
		if b = bytes.TrimSpace(b); len(b) == 0 {
			continue
		}
		c.raw = append(c.raw, b...)
		c.items = append(c.items, Item{Line: r.lines.line})
		c.ends = append(c.ends, len(c.raw))
	}
	return nil
}

// parse implements splitter.
func (r *jsonlReader) parse(c *chunk, derive bool) {
	start := 0
	for i, end := range c.ends {
		if c.items[i].Err == nil {
			c.items[i] = parseJSONLine(c.items[i].Line, c.raw[start:end], derive)
		}
		start = end
	}
}

// readItems reads the next items, up to lines of them, of a Reader that
// is not a splitter into c.
func readItems(r Reader, c *chunk, lines int) error {
	for len(c.items) < lines {
		it, err := r.Next()
		if err != nil {
			return err
		}
		c.items = append(c.items, it)
	}
	return nil
}

// parseAhead reads r on its own goroutine and returns its chunks of up to
// lines lines in input order: each is ready once its parsed channel is closed, and the last one
// carries the error that ended the input (io.EOF at its end); the caller
// releases each chunk once done with its items. A splitter's
// chunks are parsed on one goroutine per CPU, ahead of the caller by a few
// chunks; a plain Reader's items come as its Next returns them, keys
// derived. The channel is closed after the last chunk, or early once ctx
// is done: a caller that stops receiving must cancel ctx.
func parseAhead(ctx context.Context, r Reader, lines int, derive bool) <-chan *chunk {
	workers := runtime.GOMAXPROCS(0)
	out := make(chan *chunk, workers+1)
	s, split := r.(splitter)
	var work chan *chunk
	if split {
		work = make(chan *chunk, workers)
		for range workers {
			go func() {
				for c := range work {
					s.parse(c, derive)
					c.number()
					close(c.parsed)
				}
			}()
		}
	}
	go func() {
		defer close(out)
		if split {
			defer close(work)
		}
		next := 0 // the position of the next item
		for ctx.Err() == nil {
			c := newChunk()
			c.base = next
			var err error // c is the consumer's once sent
			if split {
				err = s.readRaw(c, lines)
				next += len(c.items)
				c.err = err
				select {
				case work <- c:
				case <-ctx.Done():
					return
				}
			} else {
				err = readItems(r, c, lines)
				next += len(c.items)
				c.err = err
				c.number()
				close(c.parsed)
			}
			select {
			case out <- c:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return out
}
