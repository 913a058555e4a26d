// Package apitest checks HTTP traffic against the API's OpenAPI document
// (api/openapi.yaml) with kin-openapi's openapi3filter: a client transport
// and a reverse proxy that validate every request sent and every answer
// received, so that the document and the server cannot drift apart. Only
// tests import it.
package apitest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	apidoc "github.com/meetops/meetops/api"
)

// Spec is the loaded, validated OpenAPI document and its router.
type Spec struct {
	doc    *openapi3.T
	router routers.Router
}

var (
	loadOnce sync.Once
	loaded   *Spec
	loadErr  error
)

// Load returns the API's document, loaded and validated once per test
// binary; a document that does not load or validate fails tb.
func Load(tb testing.TB) *Spec {
	tb.Helper()
	loadOnce.Do(func() {
		openapi3filter.RegisterBodyDecoder("application/x-ndjson", ndjsonDecoder)
		loader := openapi3.NewLoader()
		doc, err := loader.LoadFromData(apidoc.OpenAPI)
		if err != nil {
			loadErr = fmt.Errorf("apitest: load api/openapi.yaml: %w", err)
			return
		}
		if err := doc.Validate(loader.Context); err != nil {
			loadErr = fmt.Errorf("apitest: api/openapi.yaml is not valid OpenAPI: %w", err)
			return
		}
		// Match the paths on any host: the tests' servers listen on
		// free ports.
		doc.Servers = nil
		router, err := gorillamux.NewRouter(doc)
		if err != nil {
			loadErr = fmt.Errorf("apitest: router: %w", err)
			return
		}
		loaded = &Spec{doc: doc, router: router}
	})
	if loadErr != nil {
		tb.Fatal(loadErr)
	}
	return loaded
}

// ndjsonDecoder reads an application/x-ndjson body as the array of its
// lines' JSON values (blank lines and a leading byte-order mark skipped), which is how the document
// describes it; a line that is not JSON is kept as a string, so the
// schema (an array of operation objects) rejects it.
func ndjsonDecoder(body io.Reader, _ http.Header, _ *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64<<10), 2<<20)
	out := []any{}
	for first := true; sc.Scan(); first = false {
		line := bytes.TrimSpace(sc.Bytes())
		if first {
			line = bytes.TrimPrefix(line, []byte("\ufeff"))
		}
		if len(line) == 0 {
			continue
		}
		var v any
		if err := json.Unmarshal(line, &v); err != nil {
			v = string(line)
		}
		out = append(out, v)
	}
	return out, sc.Err()
}

type expectKey struct{}

// expectation is what a test says of its request.
type expectation int

const (
	// valid: the document must accept the request (the default).
	valid expectation = iota
	// invalid: the document must reject it.
	invalid
	// beyond: the request is not judged: the document forbids it in
	// words that openapi3filter cannot check (trailing data after the
	// JSON value, a byte that is not UTF-8, a charset, an unknown query
	// parameter), or it is a body of 100,000 operations, which the
	// validator takes minutes to judge.
	beyond
)

// Invalid marks req as one the document forbids (a test of the server's
// refusals): the check then requires the document to reject it too,
// instead of accepting it. The answer is validated either way.
func Invalid(req *http.Request) *http.Request {
	return req.WithContext(context.WithValue(req.Context(), expectKey{}, invalid))
}

// Beyond marks req as one the document forbids in its descriptions but
// openapi3filter cannot tell (it decodes the first JSON value and ignores
// what follows, takes any bytes as text, ignores the charset parameter and
// unknown query parameters), or as a batch of 100,000 operations, which it
// would take minutes to judge: the request is not judged, the answer is.
func Beyond(req *http.Request) *http.Request {
	return req.WithContext(context.WithValue(req.Context(), expectKey{}, beyond))
}

func expectationOf(req *http.Request) expectation {
	v, _ := req.Context().Value(expectKey{}).(expectation)
	return v
}

// authenticate is the security check of the document: a bearer token is
// present. (Whether the server accepts it is the server's to say.)
func authenticate(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	h := in.RequestValidationInput.Request.Header.Get("Authorization")
	if scheme, tok, ok := strings.Cut(h, " "); !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return errors.New("no bearer token")
	}
	return nil
}

// Check validates one exchange: the request (with its body reqBody)
// against its operation (or, as the request is marked, that the document
// rejects it, or nothing); and the answer (status, headers, body) against
// the operation's responses, every status documented. A request for a
// path or method the document does not have must be marked Invalid, and
// its answer must be a Problem (404, 405).
func (s *Spec) Check(req *http.Request, reqBody []byte, resp *http.Response, respBody []byte) error {
	return s.check(req, reqBody, resp, respBody, expectationOf(req), nil)
}

// OperationIDs lists the document's operations.
func (s *Spec) OperationIDs() []string {
	var ids []string
	for _, item := range s.doc.Paths.Map() {
		for _, op := range item.Operations() {
			ids = append(ids, op.OperationID)
		}
	}
	slices.Sort(ids)
	return ids
}

func (s *Spec) check(req *http.Request, reqBody []byte, resp *http.Response, respBody []byte, want expectation, seen func(operationID string)) error {
	ctx := context.Background()
	vreq := req.Clone(ctx)
	vreq.Body = io.NopCloser(bytes.NewReader(reqBody))
	if vreq.URL.Host == "" {
		vreq.URL.Host = req.Host
	}
	route, params, err := s.router.FindRoute(vreq)
	if err != nil {
		if want != invalid {
			return fmt.Errorf("%s %s: not in the document: %w", req.Method, req.URL.Path, err)
		}
		return s.checkProblem(resp, respBody)
	}
	if seen != nil {
		seen(route.Operation.OperationID)
	}
	in := &openapi3filter.RequestValidationInput{
		Request: vreq, PathParams: params, Route: route,
		Options: &openapi3filter.Options{
			AuthenticationFunc:                authenticate,
			MultiError:                        true,
			RejectWhenRequestBodyNotSpecified: true,
		},
	}
	var rerr error
	if want != beyond {
		rerr = openapi3filter.ValidateRequest(ctx, in)
	}
	switch {
	case want == beyond:
	case rerr != nil && want == valid:
		return fmt.Errorf("%s %s: the request does not match the document: %w", req.Method, req.URL.Path, rerr)
	case rerr == nil && want == invalid:
		return fmt.Errorf("%s %s: the request was sent as one the document forbids, but the document accepts it", req.Method, req.URL.Path)
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Options: &openapi3filter.Options{
			IncludeResponseStatus: true,
			MultiError:            true,
		},
	}
	out.SetBodyBytes(respBody)
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		return fmt.Errorf("%s %s → %d: the answer does not match the document: %w\nbody: %.2000s", req.Method, req.URL.Path, resp.StatusCode, err, respBody)
	}
	return s.checkProblemHeaders(route, resp)
}

// checkProblem validates an answer to a request outside the document: a
// 404 or 405 Problem.
func (s *Spec) checkProblem(resp *http.Response, body []byte) error {
	if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusMethodNotAllowed {
		return fmt.Errorf("a request outside the document got %d, want 404 or 405", resp.StatusCode)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/problem+json" {
		return fmt.Errorf("a request outside the document got Content-Type %q, want application/problem+json", mt)
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return fmt.Errorf("problem body: %w", err)
	}
	if err := s.doc.Components.Schemas["Problem"].Value.VisitJSON(v, openapi3.EnableJSONSchema2020()); err != nil {
		return fmt.Errorf("problem body does not match Problem: %w", err)
	}
	return nil
}

// checkProblemHeaders checks what openapi3filter does not: the headers
// the document says an answer carries are there (Retry-After on 429 and
// 503, WWW-Authenticate on 401 and 403, Location on 201).
func (s *Spec) checkProblemHeaders(route *routers.Route, resp *http.Response) error {
	ref := route.Operation.Responses.Status(resp.StatusCode)
	if ref == nil || ref.Value == nil {
		return nil
	}
	for name := range ref.Value.Headers {
		if resp.Header.Get(name) == "" {
			return fmt.Errorf("%s %s → %d: header %s missing", route.Method, route.Path, resp.StatusCode, name)
		}
	}
	return nil
}

// Transport returns a RoundTripper that sends through base
// (http.DefaultTransport when nil) and checks every exchange with Check,
// failing tb on a mismatch. Mark requests the document forbids with
// Invalid.
func (s *Spec) Transport(tb testing.TB, base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{spec: s, tb: tb, base: base}
}

// Client returns an HTTP client with Transport(tb, nil).
func (s *Spec) Client(tb testing.TB) *http.Client {
	return &http.Client{Transport: s.Transport(tb, nil)}
}

type transport struct {
	spec *Spec
	tb   testing.TB
	base http.RoundTripper
	// expect, for a proxy, is the expectation of the requests passing
	// (set by the test around them); seen is told the operation of each.
	expect *atomic.Int32
	seen   func(operationID string)
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	want := expectationOf(req)
	if t.expect != nil {
		want = expectation(t.expect.Load())
	}
	var body []byte
	if req.Body != nil && req.Body != http.NoBody && want != beyond { // an unjudged body is not needed
		var err error
		if body, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
		req.Body.Close()
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	respBody, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(respBody))
	if err != nil {
		return nil, err
	}
	if err := t.spec.check(req, body, resp, respBody, want, t.seen); err != nil {
		t.tb.Errorf("apitest: %v", err)
	}
	return resp, nil
}

// Proxy is a reverse proxy to an API server that checks every exchange
// passing through it: point a client that is not Go (curl, Python) at its
// URL.
type Proxy struct {
	*httptest.Server
	expect atomic.Int32
	mu     sync.Mutex
	seen   map[string]bool
}

// NewProxy starts a Proxy to target (http://host:port), closed at the end
// of tb.
func (s *Spec) NewProxy(tb testing.TB, target string) *Proxy {
	u, err := url.Parse(target)
	if err != nil {
		tb.Fatal(err)
	}
	p := &Proxy{seen: map[string]bool{}}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.Transport = &transport{spec: s, tb: tb, base: http.DefaultTransport, expect: &p.expect, seen: func(id string) {
		p.mu.Lock()
		p.seen[id] = true
		p.mu.Unlock()
	}}
	p.Server = httptest.NewServer(rp)
	tb.Cleanup(p.Close)
	return p
}

// Seen lists the document's operations that requests through the proxy
// have reached.
func (p *Proxy) Seen() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var ids []string
	for id := range p.seen {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// ExpectInvalid says whether the requests passing from now on are ones
// the document forbids (see Invalid).
func (p *Proxy) ExpectInvalid(on bool) {
	if on {
		p.expect.Store(int32(invalid))
	} else {
		p.expect.Store(int32(valid))
	}
}
