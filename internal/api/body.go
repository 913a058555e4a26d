package api

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"
)

// Request size limits.
const (
	// MaxOperationBytes bounds the body of POST /v1/operations.
	MaxOperationBytes = 64 << 10
	// MaxBatchBytes bounds the body of POST /v1/batches.
	MaxBatchBytes = 64 << 20
	// MaxBatchOperations bounds the operations of one batch.
	MaxBatchOperations = 100_000
)

// Media types the API reads.
const (
	mediaJSON   = "application/json"
	mediaNDJSON = "application/x-ndjson"
)

// mediaType returns the request's media type when it is one of accepted,
// in UTF-8 (a charset parameter, if any, must be utf-8), else a 415
// problem naming what is accepted.
func mediaType(r *http.Request, accepted ...string) (string, *Problem) {
	ct := r.Header.Get("Content-Type")
	for _, a := range accepted {
		if ct == a { // the usual case, without parsing
			return a, nil
		}
	}
	want := strings.Join(accepted, " or ")
	if ct == "" {
		return "", newProblem(typeMediaType, "no Content-Type: send "+want)
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return "", newProblem(typeMediaType, fmt.Sprintf("Content-Type %q does not parse: send %s", ct, want))
	}
	for _, a := range accepted {
		if mt != a {
			continue
		}
		if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
			return "", newProblem(typeMediaType, fmt.Sprintf("charset %q: the API reads UTF-8 only", cs))
		}
		return mt, nil
	}
	return "", newProblem(typeMediaType, fmt.Sprintf("Content-Type %s: send %s", mt, want))
}

// readBody reads the whole body, at most limit bytes: a body declared or
// found longer is a 413 problem (the connection is closed after it), an
// empty one a 400, one that is not UTF-8 a 400.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, *Problem) {
	tooLarge := func() *Problem {
		w.Header().Set("Connection", "close") // do not read the rest of it
		return newProblem(typeTooLarge, fmt.Sprintf("the body is over %s (the limit of %s %s)", size(limit), r.Method, r.URL.Path))
	}
	if r.ContentLength > limit {
		return nil, tooLarge()
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	switch {
	case err != nil:
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooLarge()
		}
		return nil, newProblem(typeMalformed, "reading the body failed: "+err.Error())
	case int64(len(b)) > limit:
		return nil, tooLarge()
	case len(b) == 0:
		return nil, newProblem(typeMalformed, "the body is empty")
	case !utf8.Valid(b):
		return nil, newProblem(typeMalformed, "the body is not valid UTF-8")
	}
	return b, nil
}

// size formats a byte count as KiB or MiB.
func size(n int64) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d KiB", n>>10)
}

// query returns the request's query parameters when each is one of
// allowed and given once, else a 400 problem naming the others: an
// unknown parameter is refused, as an unknown field is.
func query(r *http.Request, allowed ...string) (map[string]string, *Problem) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, newProblem(typeInvalidParameter, "the query string does not parse: "+err.Error())
	}
	out := make(map[string]string, len(q))
	var errs []FieldProblem
	for name, vs := range q {
		switch {
		case !slices.Contains(allowed, name):
			errs = append(errs, FieldProblem{Field: name, Message: "unknown parameter (this path takes " + orNone(allowed) + ")"})
		case len(vs) > 1:
			errs = append(errs, FieldProblem{Field: name, Message: "given more than once"})
		default:
			out[name] = vs[0]
		}
	}
	if len(errs) > 0 {
		slices.SortFunc(errs, func(a, b FieldProblem) int { return strings.Compare(a.Field, b.Field) })
		p := newProblem(typeInvalidParameter, "unknown or repeated query parameters")
		p.Errors = errs
		return nil, p
	}
	return out, nil
}

func orNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// noBody refuses a request body where the API takes none (a requeue, a
// purge), as the document says: 400.
func noBody(r *http.Request) *Problem {
	if r.ContentLength == 0 {
		return nil
	}
	var b [1]byte
	if n, _ := io.ReadFull(r.Body, b[:]); n == 0 && r.ContentLength < 0 {
		return nil
	}
	return newProblem(typeMalformed, r.Method+" "+r.URL.Path+" takes no body")
}
