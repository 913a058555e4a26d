package api

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/meetops/meetops"
)

// Dead-letter pages.
const (
	defaultDeadLetterPage = 100
	maxDeadLetterPage     = meetops.MaxDeadLetterPage
)

// DeadLetterList is the answer of GET /v1/dead-letters: a page of dead
// letters, oldest first, as `enqueue dead list -o json` prints them, and
// the cursor of the next page (null on the last).
type DeadLetterList struct {
	Items      []meetops.DeadLetter `json:"items"`
	NextCursor *string              `json:"next_cursor"`
}

// listDeadLetters is GET /v1/dead-letters?op=&reason=&limit=&cursor=.
func (s *Server) listDeadLetters(w http.ResponseWriter, r *http.Request, c *call) *Problem {
	q, p := query(r, "op", "reason", "limit", "cursor")
	if p != nil {
		return p
	}
	limit := defaultDeadLetterPage
	if v, ok := q["limit"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxDeadLetterPage {
			p := newProblem(typeInvalidParameter, fmt.Sprintf("limit: want 1 to %d", maxDeadLetterPage))
			p.Errors = []FieldProblem{{Field: "limit", Message: fmt.Sprintf("want an integer from 1 to %d, got %q", maxDeadLetterPage, v)}}
			return p
		}
		limit = n
	}
	ctx, cancel := withTimeout(r, s.opTimeout)
	defer cancel()
	page, err := s.producer.DeadLetterPage(ctx, meetops.DeadLetterFilter{Op: q["op"], Reason: q["reason"]}, q["cursor"], limit)
	switch {
	case errors.Is(err, meetops.ErrInvalid):
		p := newProblem(typeInvalidParameter, "invalid query parameters")
		p.Errors = fieldProblems(err, nil)
		return p
	case err != nil:
		c.log(slogError(err))
		return storeProblem(err)
	}
	out := DeadLetterList{Items: page.Items}
	if out.Items == nil {
		out.Items = []meetops.DeadLetter{}
	}
	if page.Next != "" {
		out.NextCursor = &page.Next
	}
	c.log(slog.Int("items", len(out.Items)))
	writeJSON(w, http.StatusOK, out)
	return nil
}

// requeueDeadLetter is POST /v1/dead-letters/{key}/requeue: the dead
// letter goes back to its queue with a fresh retry budget; 200 with the
// task, 404 for no such dead letter, 409 when it cannot be requeued now
// (it is running, or its stored payload is invalid).
func (s *Server) requeueDeadLetter(w http.ResponseWriter, r *http.Request, c *call) *Problem {
	if _, p := query(r); p != nil {
		return p
	}
	if p := noBody(r); p != nil {
		return p
	}
	key := r.PathValue("key")
	c.log(slog.String("key", key))
	ctx, cancel := withTimeout(r, s.opTimeout)
	defer cancel()
	res := s.producer.Requeue(ctx, key)[0]
	if p := s.keyProblem(c, res.Err); p != nil {
		return p
	}
	writeJSON(w, http.StatusOK, res.Info)
	return nil
}

// purgeDeadLetter is DELETE /v1/dead-letters/{key}: 204, or 404.
func (s *Server) purgeDeadLetter(w http.ResponseWriter, r *http.Request, c *call) *Problem {
	if _, p := query(r); p != nil {
		return p
	}
	if p := noBody(r); p != nil {
		return p
	}
	key := r.PathValue("key")
	c.log(slog.String("key", key))
	ctx, cancel := withTimeout(r, s.opTimeout)
	defer cancel()
	if p := s.keyProblem(c, s.producer.Purge(ctx, key)[0].Err); p != nil {
		return p
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// keyProblem answers a failed requeue or purge (nil for none).
func (s *Server) keyProblem(c *call, err error) *Problem {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, meetops.ErrNotFound):
		return newProblem(typeNotFound, "no dead letter with this key")
	case unavailable(err):
		c.log(slogError(err))
		return storeProblem(err)
	}
	c.log(slogError(err))
	return newProblem(typeConflict, err.Error())
}
