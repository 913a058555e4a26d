package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"

	"github.com/redis/go-redis/v9"

	"github.com/meetops/meetops"
	"github.com/meetops/meetops/internal/bulk"
)

// Problem is an RFC 9457 problem details answer
// (application/problem+json). Type is a slug (see the type constants),
// Status the HTTP status; Errors, for validation, names each field that is
// wrong.
type Problem struct {
	Type   string         `json:"type"`
	Title  string         `json:"title"`
	Status int            `json:"status"`
	Detail string         `json:"detail"`
	Errors []FieldProblem `json:"errors,omitempty"`
}

// FieldProblem is one field that is wrong: in a batch, of the operation at
// Index (its 0-based position in the request). Field is "" for the
// operation (or the body) as a whole.
type FieldProblem struct {
	Index   *int   `json:"index,omitempty"`
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Problem types, with the status and title each is answered with.
const (
	typeMalformed        = "malformed"
	typeUnknownField     = "unknown-field"
	typeInvalidParameter = "invalid-parameter"
	typeKeyMismatch      = "idempotency-key-mismatch"
	typeUnauthorized     = "unauthorized"
	typeForbidden        = "forbidden"
	typeNotFound         = "not-found"
	typeMethod           = "method-not-allowed"
	typeKeyReused        = "key-reused"
	typeConflict         = "conflict"
	typeTooLarge         = "too-large"
	typeTooMany          = "too-many-operations"
	typeMediaType        = "unsupported-media-type"
	typeInvalid          = "invalid"
	typeRateLimited      = "rate-limited"
	typeInternal         = "internal"
	typeUnavailable      = "unavailable"
)

var problemKinds = map[string]struct {
	status int
	title  string
}{
	typeMalformed:        {http.StatusBadRequest, "Malformed request body"},
	typeUnknownField:     {http.StatusBadRequest, "Unknown field"},
	typeInvalidParameter: {http.StatusBadRequest, "Invalid parameter"},
	typeKeyMismatch:      {http.StatusBadRequest, "Idempotency-Key differs from the body's key"},
	typeUnauthorized:     {http.StatusUnauthorized, "Missing or unknown bearer token"},
	typeForbidden:        {http.StatusForbidden, "Token lacks the scope"},
	typeNotFound:         {http.StatusNotFound, "Not found"},
	typeMethod:           {http.StatusMethodNotAllowed, "Method not allowed"},
	typeKeyReused:        {http.StatusConflict, "Idempotency key reused for another operation"},
	typeConflict:         {http.StatusConflict, "Conflict"},
	typeTooLarge:         {http.StatusRequestEntityTooLarge, "Request body too large"},
	typeTooMany:          {http.StatusRequestEntityTooLarge, "Too many operations"},
	typeMediaType:        {http.StatusUnsupportedMediaType, "Unsupported media type"},
	typeInvalid:          {http.StatusUnprocessableEntity, "Validation failed"},
	typeRateLimited:      {http.StatusTooManyRequests, "Rate limit exceeded"},
	typeInternal:         {http.StatusInternalServerError, "Internal error"},
	typeUnavailable:      {http.StatusServiceUnavailable, "Redis unavailable"},
}

// newProblem returns the problem of type typ with detail.
func newProblem(typ, detail string) *Problem {
	k, ok := problemKinds[typ]
	if !ok {
		k = problemKinds[typeInternal]
		typ = typeInternal
	}
	return &Problem{Type: typ, Title: k.title, Status: k.status, Detail: detail}
}

// Error implements error, so that handlers can return problems.
func (p *Problem) Error() string { return p.Type + ": " + p.Detail }

// retryAfter is the Retry-After of a 503: Redis coming back (a restart, a
// failover) takes seconds.
const retryAfter = 2

// writeProblem answers p.
func writeProblem(w http.ResponseWriter, p *Problem) {
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	if p.Status == http.StatusServiceUnavailable && h.Get("Retry-After") == "" {
		h.Set("Retry-After", strconv.Itoa(retryAfter))
	}
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// writeJSON answers v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil { // the answers are plain structs: cannot happen
		writeProblem(w, newProblem(typeInternal, "encoding the answer failed"))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// fieldProblems lists the field errors err joins (an operation's, a
// filter's), each with index when not nil.
func fieldProblems(err error, index *int) []FieldProblem {
	var out []FieldProblem
	for _, e := range bulk.Leaves(err) {
		fp := FieldProblem{Index: index, Message: e.Error()}
		var fe *meetops.FieldError
		if errors.As(e, &fe) {
			fp.Field, fp.Message = fe.Field, fe.Msg
		}
		out = append(out, fp)
	}
	return out
}

// itemProblem is the problem of an invalid operation object: 400 when it
// is not an object or names an unknown field, 422 when a field fails
// validation. Every field error is listed either way.
func itemProblem(err error) *Problem {
	typ, detail := typeInvalid, "the operation is invalid: "+bulk.OneLine(err)
	switch {
	case errors.Is(err, bulk.ErrMalformed):
		typ, detail = typeMalformed, "want one JSON object: "+bulk.OneLine(err)
	case errors.Is(err, bulk.ErrUnknownField):
		typ, detail = typeUnknownField, bulk.OneLine(err)
	}
	p := newProblem(typ, detail)
	p.Errors = fieldProblems(err, nil)
	return p
}

// storeProblem turns a producer error that is not the caller's (the
// caller's are answered by each handler) into 503 when Redis is
// unreachable, slow or failing over, else 500. Its detail never carries
// the error's text, which can name internal addresses; the caller logs it.
func storeProblem(err error) *Problem {
	if unavailable(err) {
		return newProblem(typeUnavailable, "Redis did not answer; nothing was changed that a retry cannot repeat safely: send the same request again after Retry-After")
	}
	return newProblem(typeInternal, "the request failed on the server; it is logged")
}

// unavailable reports whether err says Redis is unreachable or cannot
// take writes for now (restarting, failing over, full, loading, not
// enough replicas), which a retry later may fix.
func unavailable(err error) bool {
	var netErr net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled),
		errors.As(err, &netErr),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, redis.ErrClosed), errors.Is(err, redis.ErrPoolTimeout),
		errors.Is(err, meetops.ErrNotReplicated):
		return true
	}
	msg := err.Error()
	for _, s := range []string{"LOADING", "READONLY", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "OOM ",
		"connection refused", "connection reset", "i/o timeout", "broken pipe", "no such host"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}
