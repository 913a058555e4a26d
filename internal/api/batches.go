package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"sync"
	"unicode"

	"github.com/meetops/meetops"
	"github.com/meetops/meetops/internal/bulk"
)

// BatchCreated is the answer of POST /v1/batches: Total counts the
// operations received; the batch's members are the valid ones, each
// enqueued, a duplicate of a task that holds its key already, or refused
// because another operation holds it (KeyReused).
type BatchCreated struct {
	BatchID    string `json:"batch_id"`
	Total      int    `json:"total"`
	Enqueued   int    `json:"enqueued"`
	Duplicates int    `json:"duplicates"`
	Invalid    int    `json:"invalid"`
	KeyReused  int    `json:"key_reused"`
}

// batchSpec is what a batch request asks for besides its operations.
type batchSpec struct {
	Label       string
	SkipInvalid bool
	CallbackURL string
}

// Batch enqueueing: the valid operations go to EnqueueBatch in chunks of
// batchChunk, batchWorkers chunks at a time.
const (
	batchChunk   = 1024
	batchWorkers = 4
	// maxLabelBytes bounds a batch's label.
	maxLabelBytes = 256
)

// createBatch is POST /v1/batches: a JSON object {"operations": [...],
// "label", "skip_invalid", "callback_url"} or NDJSON (one operation a
// line; the options as query parameters). Every operation is validated
// first: an invalid one without skip_invalid is a 422 listing every
// invalid operation, and nothing is enqueued. Otherwise a batch is
// created with the token's name as origin, the valid operations become
// its members at their 0-based position in the request, and it is sealed.
func (s *Server) createBatch(w http.ResponseWriter, r *http.Request, c *call) *Problem {
	mt, p := mediaType(r, mediaJSON, mediaNDJSON)
	if p != nil {
		return p
	}
	if len(r.Header.Values("Idempotency-Key")) > 0 {
		return newProblem(typeInvalidParameter, "Idempotency-Key is for POST /v1/operations: a batch's operations are idempotent by their own keys, and each request makes a new batch")
	}
	var spec batchSpec
	if mt == mediaNDJSON {
		if spec, p = batchQuery(r); p != nil {
			return p
		}
	} else if _, p := query(r); p != nil {
		return p
	}
	body, p := readBody(w, r, MaxBatchBytes)
	if p != nil {
		return p
	}
	ctx, cancel := withTimeout(r, s.batchTimeout)
	defer cancel()
	var items []bulk.Item
	if mt == mediaNDJSON {
		var err error
		items, err = bulk.Collect(ctx, bulk.NewJSONL(bytes.NewReader(body)), MaxBatchOperations)
		switch {
		case errors.Is(err, bulk.ErrTooMany):
			return tooMany()
		case err != nil:
			return newProblem(typeMalformed, "reading the lines failed: "+err.Error())
		}
	} else {
		var raw []json.RawMessage
		if spec, raw, p = decodeEnvelope(body); p != nil {
			return p
		}
		items = parseObjects(raw)
	}
	if p := checkSpec(spec); p != nil {
		return p
	}
	if len(items) == 0 {
		p := newProblem(typeInvalid, "the batch has no operations")
		p.Errors = []FieldProblem{{Field: "operations", Message: "must hold at least one operation"}}
		return p
	}
	res := BatchCreated{Total: len(items)}
	var invalid []FieldProblem
	for i, it := range items {
		if it.Err != nil {
			res.Invalid++
			s.metrics.operations.WithLabelValues("unknown", outcomeInvalid).Inc()
			if !spec.SkipInvalid {
				invalid = append(invalid, fieldProblems(it.Err, &i)...)
			}
		}
	}
	c.log(slog.Int("total", res.Total), slog.Int("invalid", res.Invalid))
	if len(invalid) > 0 {
		p := newProblem(typeInvalid, fmt.Sprintf("%d of %d operations are invalid; nothing was enqueued (skip_invalid enqueues the others)", res.Invalid, res.Total))
		p.Errors = invalid
		return p
	}

	id, err := s.producer.CreateBatch(ctx, meetops.BatchSpec{Label: spec.Label, Origin: c.token.Name, CallbackURL: spec.CallbackURL})
	switch {
	case errors.Is(err, meetops.ErrInvalid):
		return itemProblem(err)
	case err != nil:
		c.log(slogError(err))
		return storeProblem(err)
	}
	res.BatchID = id
	c.log(slog.String("batch_id", id))
	failed := s.fill(ctx, id, items, c.token.Name, &res)
	if failed != nil {
		c.log(slogError(failed))
		p := storeProblem(failed)
		p.Detail = fmt.Sprintf("batch %s could not be filled: %s (it stays open and expires; the operations already enqueued come back as duplicates when the request is sent again)", id, p.Detail)
		return p
	}
	if _, err := s.producer.SealBatch(ctx, id); err != nil {
		c.log(slogError(err))
		return storeProblem(err)
	}
	c.log(slog.Int("enqueued", res.Enqueued), slog.Int("duplicates", res.Duplicates), slog.Int("key_reused", res.KeyReused))
	w.Header().Set("Location", "/v1/batches/"+url.PathEscape(id))
	writeJSON(w, http.StatusCreated, res)
	return nil
}

// fill enqueues the valid items into batch id, in chunks, several at a
// time, each request numbered by its item's place in the request, and
// counts the outcomes into res. It returns the first failure (Redis),
// after every chunk has finished.
func (s *Server) fill(ctx context.Context, id string, items []bulk.Item, origin string, res *BatchCreated) error {
	type chunk struct{ reqs []meetops.Request }
	var chunks []chunk
	cur := chunk{}
	for i, it := range items {
		if it.Err != nil {
			continue
		}
		cur.reqs = append(cur.reqs, meetops.Request{Op: it.Op, Opts: append(it.Options(), meetops.WithOrigin(origin)), Index: i})
		if len(cur.reqs) == batchChunk {
			chunks = append(chunks, cur)
			cur = chunk{}
		}
	}
	if len(cur.reqs) > 0 {
		chunks = append(chunks, cur)
	}
	var (
		mu      sync.Mutex
		failure error
		byOp    = map[[2]string]int{}
		wg      sync.WaitGroup
		next    = make(chan chunk)
	)
	for range min(batchWorkers, len(chunks)) {
		wg.Go(func() {
			for ch := range next {
				out := s.producer.EnqueueBatch(ctx, ch.reqs, meetops.InBatch(id))
				mu.Lock()
				for j, r := range out {
					op := ch.reqs[j].Op.Name()
					switch {
					case r.Err == nil && r.Info.Duplicate:
						res.Duplicates++
						byOp[[2]string{op, outcomeDuplicate}]++
					case r.Err == nil:
						res.Enqueued++
						byOp[[2]string{op, outcomeEnqueued}]++
					case errors.Is(r.Err, meetops.ErrKeyReused):
						res.KeyReused++
						byOp[[2]string{op, outcomeKeyReused}]++
					case errors.Is(r.Err, meetops.ErrInvalid): // validated above: not expected
						res.Invalid++
						byOp[[2]string{op, outcomeInvalid}]++
					case failure == nil:
						failure = r.Err
					}
				}
				mu.Unlock()
			}
		})
	}
	for _, ch := range chunks {
		next <- ch
	}
	close(next)
	wg.Wait()
	for k, n := range byOp {
		s.metrics.operations.WithLabelValues(k[0], k[1]).Add(float64(n))
	}
	return failure
}

// parseObjects parses the batch's operation objects on every CPU.
func parseObjects(raw []json.RawMessage) []bulk.Item {
	items := make([]bulk.Item, len(raw))
	workers := min(runtime.GOMAXPROCS(0), max(1, len(raw)/256))
	var wg sync.WaitGroup
	for k := range workers {
		wg.Go(func() {
			for i := k; i < len(raw); i += workers {
				items[i] = bulk.ParseObject(raw[i])
			}
		})
	}
	wg.Wait()
	return items
}

func tooMany() *Problem {
	return newProblem(typeTooMany, fmt.Sprintf("a batch holds at most %d operations: split it", MaxBatchOperations))
}

// batchQuery reads an NDJSON batch's options from the query string.
func batchQuery(r *http.Request) (batchSpec, *Problem) {
	q, p := query(r, "label", "skip_invalid", "callback_url")
	if p != nil {
		return batchSpec{}, p
	}
	spec := batchSpec{Label: q["label"], CallbackURL: q["callback_url"]}
	if v, ok := q["skip_invalid"]; ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			p := newProblem(typeInvalidParameter, "skip_invalid: want true or false")
			p.Errors = []FieldProblem{{Field: "skip_invalid", Message: fmt.Sprintf("want true or false, got %q", v)}}
			return batchSpec{}, p
		}
		spec.SkipInvalid = b
	}
	return spec, nil
}

// checkSpec validates a batch's label (the callback URL is the producer's
// to check).
func checkSpec(spec batchSpec) *Problem {
	var msg string
	switch {
	case len(spec.Label) > maxLabelBytes:
		msg = fmt.Sprintf("must be at most %d bytes, got %d", maxLabelBytes, len(spec.Label))
	default:
		for _, r := range spec.Label {
			if unicode.IsControl(r) {
				msg = "must not contain control characters"
				break
			}
		}
	}
	if msg == "" {
		return nil
	}
	p := newProblem(typeInvalid, "label: "+msg)
	p.Errors = []FieldProblem{{Field: "label", Message: msg}}
	return p
}

// decodeEnvelope reads a JSON batch request: one object with
// "operations" (an array of operation objects, returned raw) and the
// optional "label", "skip_invalid" and "callback_url". Malformed JSON,
// trailing data, a repeated or unknown field are 400; a field of the
// wrong type is 422; more than MaxBatchOperations operations is 413.
func decodeEnvelope(body []byte) (batchSpec, []json.RawMessage, *Problem) {
	var spec batchSpec
	dec := json.NewDecoder(bytes.NewReader(body))
	syntax := func(err error) *Problem {
		return newProblem(typeMalformed, "malformed JSON: "+jsonError(err, dec))
	}
	wrongType := func(field, want string) *Problem {
		p := newProblem(typeInvalid, field+": must be "+want)
		p.Errors = []FieldProblem{{Field: field, Message: "must be " + want}}
		return p
	}
	tok, err := dec.Token()
	if err != nil {
		return spec, nil, syntax(err)
	}
	if tok != json.Delim('{') {
		return spec, nil, newProblem(typeMalformed, `want one JSON object {"operations": [...]}`)
	}
	var raw []json.RawMessage
	seen := map[string]bool{}
	var unknown []FieldProblem
	haveOps := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return spec, nil, syntax(err)
		}
		name, _ := tok.(string)
		if seen[name] {
			return spec, nil, newProblem(typeMalformed, fmt.Sprintf("field %q given twice", name))
		}
		seen[name] = true
		switch name {
		case "operations":
			tok, err := dec.Token()
			if err != nil {
				return spec, nil, syntax(err)
			}
			if tok != json.Delim('[') {
				return spec, nil, wrongType("operations", "an array of operation objects")
			}
			haveOps = true
			for dec.More() {
				if len(raw) == MaxBatchOperations {
					return spec, nil, tooMany()
				}
				var m json.RawMessage
				if err := dec.Decode(&m); err != nil {
					return spec, nil, syntax(err)
				}
				raw = append(raw, m)
			}
			if _, err := dec.Token(); err != nil { // the closing ]
				return spec, nil, syntax(err)
			}
		case "label", "callback_url":
			var v *string
			if err := dec.Decode(&v); err != nil {
				var te *json.UnmarshalTypeError
				if errors.As(err, &te) {
					return spec, nil, wrongType(name, "a string")
				}
				return spec, nil, syntax(err)
			}
			if v != nil && name == "label" {
				spec.Label = *v
			} else if v != nil {
				spec.CallbackURL = *v
			}
		case "skip_invalid":
			var v *bool
			if err := dec.Decode(&v); err != nil {
				var te *json.UnmarshalTypeError
				if errors.As(err, &te) {
					return spec, nil, wrongType(name, "true or false")
				}
				return spec, nil, syntax(err)
			}
			spec.SkipInvalid = v != nil && *v
		default:
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return spec, nil, syntax(err)
			}
			unknown = append(unknown, FieldProblem{Field: name, Message: "unknown field (a batch takes operations, label, skip_invalid, callback_url)"})
		}
	}
	if _, err := dec.Token(); err != nil { // the closing }
		return spec, nil, syntax(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return spec, nil, newProblem(typeMalformed, "trailing data after the JSON object")
	}
	if len(unknown) > 0 {
		p := newProblem(typeUnknownField, "unknown fields in the batch object")
		p.Errors = unknown
		return spec, nil, p
	}
	if !haveOps {
		p := newProblem(typeInvalid, "operations: required")
		p.Errors = []FieldProblem{{Field: "operations", Message: "required: the array of operations"}}
		return spec, nil, p
	}
	return spec, raw, nil
}

// jsonError describes a decoding error with its byte offset.
func jsonError(err error, dec *json.Decoder) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%v at byte %d", err, se.Offset)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Sprintf("unexpected end of the body at byte %d", dec.InputOffset())
	}
	return err.Error()
}

// batchProgress is GET /v1/batches/{id}: the batch's exact progress.
func (s *Server) batchProgress(w http.ResponseWriter, r *http.Request, c *call) *Problem {
	if _, p := query(r); p != nil {
		return p
	}
	id := r.PathValue("id")
	c.log(slog.String("batch_id", id))
	ctx, cancel := withTimeout(r, s.opTimeout)
	defer cancel()
	prog, err := s.producer.Batch(ctx, id)
	switch {
	case errors.Is(err, meetops.ErrNotFound):
		return newProblem(typeNotFound, "no batch with this ID (unknown, or expired with the dedup window)")
	case err != nil:
		c.log(slogError(err))
		return storeProblem(err)
	}
	writeJSON(w, http.StatusOK, prog)
	return nil
}
