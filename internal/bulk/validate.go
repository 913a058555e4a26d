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

// ErrTooMany is Collect's error for an input with more items than its
// limit.
var ErrTooMany = errors.New("too many lines")

// Collect reads the whole input and returns its items in input order,
// parsed on every CPU, without deriving keys (Key is a line's own key, ""
// when it has none). It stops with ErrTooMany, and no items, once the
// input has more than limit items (limit < 1: no limit). The error is
// otherwise a fatal input error (see Reader), or ctx's.
func Collect(ctx context.Context, r Reader, limit int) ([]Item, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the reading when returning early
	var items []Item
	for c := range parseAhead(ctx, r, chunkLines, false) {
		<-c.parsed
		if ctx.Err() != nil {
			break
		}
		items = append(items, c.items...)
		err := c.err
		c.release()
		switch {
		case limit > 0 && len(items) > limit:
			return nil, ErrTooMany
		case errors.Is(err, io.EOF):
			return items, nil
		case err != nil:
			return nil, err
		}
	}
	return nil, ctx.Err()
}
