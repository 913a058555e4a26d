package api

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"

	"github.com/meetops/meetops"
	"github.com/meetops/meetops/internal/bulk"
	"github.com/meetops/meetops/internal/tasks"
)

// enqueue is POST /v1/operations: one operation object, the same object
// as a bulk line, with an optional Idempotency-Key header that is its key.
// 201 with the task when it is new, 200 with duplicate true when the same
// operation already holds the key, 409 when another does.
func (s *Server) enqueue(w http.ResponseWriter, r *http.Request, c *call) *Problem {
	if _, p := query(r); p != nil {
		return p
	}
	if _, p := mediaType(r, mediaJSON); p != nil {
		return p
	}
	body, p := readBody(w, r, MaxOperationBytes)
	if p != nil {
		return p
	}
	it := bulk.ParseObject(body)
	if hdr := r.Header.Values("Idempotency-Key"); len(hdr) > 0 {
		switch {
		case len(hdr) > 1:
			return newProblem(typeKeyMismatch, "more than one Idempotency-Key header")
		case it.Err == nil && it.Key != "" && it.Key != hdr[0]:
			return newProblem(typeKeyMismatch, "the Idempotency-Key header and the body's key differ: send one, or both the same")
		}
		if err := tasks.CheckKey(hdr[0]); err != nil {
			it.Err = errors.Join(it.Err, &meetops.FieldError{Field: "Idempotency-Key", Msg: fieldMsg(err)})
			it.Op = nil
		} else if it.Key == "" {
			it.Key = hdr[0]
		}
	}
	if it.Err != nil {
		s.metrics.operations.WithLabelValues(opLabel(opName(body)), outcomeInvalid).Inc()
		return itemProblem(it.Err)
	}
	op := it.Op.Name()
	c.log(slog.String("op", op))
	ctx, cancel := withTimeout(r, s.opTimeout)
	defer cancel()
	info, err := s.single.enqueue(ctx, it.Op, append(it.Options(), meetops.WithOrigin(c.token.Name)))
	if err != nil {
		return s.enqueueProblem(c, op, err)
	}
	c.log(slog.String("key", info.Key), slog.Bool("duplicate", info.Duplicate))
	status, outcome := http.StatusCreated, outcomeEnqueued
	if info.Duplicate {
		status, outcome = http.StatusOK, outcomeDuplicate
	}
	s.metrics.operations.WithLabelValues(op, outcome).Inc()
	w.Header().Set("Location", "/v1/operations/"+url.PathEscape(info.Key))
	writeJSON(w, status, info)
	return nil
}

// enqueueProblem answers a failed Enqueue.
func (s *Server) enqueueProblem(c *call, op string, err error) *Problem {
	switch {
	case errors.Is(err, meetops.ErrKeyReused):
		s.metrics.operations.WithLabelValues(op, outcomeKeyReused).Inc()
		return newProblem(typeKeyReused, err.Error())
	case errors.Is(err, meetops.ErrInvalid):
		s.metrics.operations.WithLabelValues(op, outcomeInvalid).Inc()
		return itemProblem(err)
	}
	c.log(slogError(err))
	return storeProblem(err)
}

// status is GET /v1/operations/{key}: the task's status, as
// `enqueue status -o json` prints it.
func (s *Server) status(w http.ResponseWriter, r *http.Request, c *call) *Problem {
	if _, p := query(r); p != nil {
		return p
	}
	key := r.PathValue("key")
	c.log(slog.String("key", key))
	ctx, cancel := withTimeout(r, s.opTimeout)
	defer cancel()
	st, err := s.producer.Status(ctx, key)
	switch {
	case errors.Is(err, meetops.ErrNotFound):
		return newProblem(typeNotFound, "no task with this key (unknown, or past the dedup window)")
	case err != nil:
		c.log(slogError(err))
		return storeProblem(err)
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

// fieldMsg is a FieldError's message without its field.
func fieldMsg(err error) string {
	var fe *meetops.FieldError
	if errors.As(err, &fe) {
		return fe.Msg
	}
	return err.Error()
}

// opName is the "op" of an operation object that failed to parse, for
// the metric's label ("" when there is none to read).
func opName(body []byte) string {
	var v struct {
		Op string `json:"op"`
	}
	_ = json.Unmarshal(body, &v)
	return v.Op
}
