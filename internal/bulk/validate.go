package bulk

import (
	"context"
	"errors"
	"io"
)

// Validate reads the whole input and counts its lines, calling onInvalid
// (when not nil) for each invalid one, in input order, from the calling
// goroutine. Nothing is enqueued. The lines are parsed on every CPU, a
// bounded number of chunks ahead. The error is a fatal input error (see
// Reader), or ctx's when it is done first.
func Validate(ctx context.Context, r Reader, onInvalid func(Item)) (Summary, error) {
	return validate(ctx, r, onInvalid, nil)
}

// validate is Validate, also calling onValid (when not nil) for each
// valid line, in input order.
func validate(ctx context.Context, r Reader, onInvalid, onValid func(Item)) (Summary, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the reading when returning early
	var s Summary
	for c := range parseAhead(ctx, r, chunkLines, false) {
		<-c.parsed
		if ctx.Err() != nil {
			break
		}
		for _, it := range c.items {
			s.Lines++
			switch {
			case it.Err != nil:
				s.Invalid++
				if onInvalid != nil {
					onInvalid(it)
				}
			case onValid != nil:
				onValid(it)
			}
		}
		err := c.err
		c.release()
		switch {
		case errors.Is(err, io.EOF):
			s.Complete = true
			return s, nil
		case err != nil:
			return s, err
		}
	}
	return s, ctx.Err()
}
