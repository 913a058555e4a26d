package conformance

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/huaweicloud/huaweicloud-sdk-go-v3/core/auth/signer"
	"github.com/huaweicloud/huaweicloud-sdk-go-v3/core/request"
	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/apiclient"
)

// signerCases is how many random requests the two signers must agree on.
const signerCases = 2000

const (
	testAK = "CONFORMANCEAK0000000"
	testSK = "conformance-secret-key"
)

// genRequest is a random request, described once and built twice: as the
// SDK's DefaultHttpRequest and as the *http.Request apiclient signs.
type genRequest struct {
	method   string
	segments []string    // decoded path segments; never contain "/"
	query    [][2]string // key, value pairs in order; keys repeat
	headers  [][2]string // name, value; names distinct ignoring case
	body     []byte
	date     time.Time
}

func (g genRequest) path() string { return "/" + strings.Join(g.segments, "/") }

func (g genRequest) String() string {
	return fmt.Sprintf("%s %q query=%q headers=%q body=%q date=%s", g.method, g.path(), g.query, g.headers, g.body, g.date.Format(apiclient.SignDateFormat))
}

// Alphabets. Path segments and query keys and values are hostile: unicode,
// "%", spaces, "?", "#", sub-delimiters; keys include pairs that sort
// differently raw and escaped ("0" < ">" raw, "%3E" < "0" escaped). "/" is
// never in a segment: the SDK signs the decoded path it splits on "/", so
// it cannot express an escaped "/" inside a segment (apiclient can: it
// splits the escaped path).
var (
	segmentRunes = []rune("abcXYZ0129-_.~ %?#+=&;,:@!$'()*[]éü日本🙂\u00a0")
	queryKeys    = []string{"0", ">", "a", "A", "a b", "a+b", "_", "~", "é", "k&", "=", "%", "#x", "limit", "marker", "Z", "z"}
	valueRunes   = []rune("abc019 -_.~%?#+=&;,/:@é日🙂")
	headerValue  = []rune("abcXYZ019 -_.~%?#+=&;,/:@()\"'éü\t")
	contentTypes = []string{"application/json", "application/json;charset=UTF-8", "application/json; charset=utf-8"}
	methods      = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodHead, http.MethodOptions}
)

func randString(r *rand.Rand, alphabet []rune, minLen, maxLen int) string {
	n := minLen + r.IntN(maxLen-minLen+1)
	var b strings.Builder
	for range n {
		b.WriteRune(alphabet[r.IntN(len(alphabet))])
	}
	return b.String()
}

// randHeaderName is an RFC 9110 token, sometimes with "_" (which neither
// signer signs).
func randHeaderName(r *rand.Rand) string {
	const tokenChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-"
	var b strings.Builder
	b.WriteString("X-")
	for range 1 + r.IntN(10) {
		b.WriteByte(tokenChars[r.IntN(len(tokenChars))])
	}
	if r.IntN(8) == 0 {
		b.WriteString("_u")
	}
	return b.String()
}

// padded surrounds v with the spaces and tabs a header value may carry.
func padded(r *rand.Rand, v string) string {
	pads := []string{"", "", " ", "  ", "\t", " \t "}
	return pads[r.IntN(len(pads))] + v + pads[r.IntN(len(pads))]
}

func generate(r *rand.Rand) genRequest {
	g := genRequest{method: methods[r.IntN(len(methods))]}
	for range 1 + r.IntN(5) {
		g.segments = append(g.segments, randString(r, segmentRunes, 1, 8))
	}
	if r.IntN(6) == 0 {
		g.segments = append(g.segments, "") // a trailing "/"
	}
	for range r.IntN(6) {
		k := queryKeys[r.IntN(len(queryKeys))]
		if r.IntN(3) == 0 {
			k = randString(r, valueRunes, 1, 5)
		}
		v := ""
		if r.IntN(4) != 0 { // a quarter are empty
			v = randString(r, valueRunes, 1, 10)
		}
		g.query = append(g.query, [2]string{k, v})
	}
	seen := map[string]bool{}
	addHeader := func(name, value string) {
		if !seen[strings.ToLower(name)] {
			seen[strings.ToLower(name)] = true
			g.headers = append(g.headers, [2]string{name, value})
		}
	}
	for range r.IntN(7) {
		switch r.IntN(8) {
		case 0:
			addHeader("Content-Type", padded(r, contentTypes[r.IntN(len(contentTypes))]))
		case 1:
			addHeader("User-Agent", padded(r, randString(r, headerValue, 1, 30)))
		case 2:
			addHeader("X-Project-Id", padded(r, randString(r, []rune("0123456789abcdef"), 32, 32)))
		case 3:
			addHeader("Content-Type-Extra", randString(r, headerValue, 0, 10)) // the SDK leaves out every content-type* name
		case 4:
			addHeader("X-Request-Id", randString(r, headerValue, 0, 40))
		default:
			v := randString(r, headerValue, 0, 20)
			if r.IntN(5) == 0 {
				v = strings.ReplaceAll(v, " ", "   ") // inner runs of spaces are kept
			}
			addHeader(randHeaderName(r), padded(r, v))
		}
	}
	if g.method != http.MethodHead && r.IntN(3) != 0 {
		body := make([]byte, r.IntN(200))
		for i := range body {
			body[i] = byte(r.UintN(256))
		}
		if r.IntN(2) == 0 {
			body = fmt.Appendf(nil, "{\"k\":%q,\"n\":%d}\n", randString(r, valueRunes, 0, 20), r.IntN(1000))
		}
		g.body = body
	}
	g.date = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(r.Int64N(int64(15 * 365 * 24 * time.Hour)))).Truncate(time.Second)
	return g
}

// sdkRequest builds g as the SDK would send it to endpoint; withHost adds
// a Host header parameter, which makes the SDK sign host (with that value)
// as apiclient does.
func (g genRequest) sdkRequest(endpoint string, withHost bool) *request.DefaultHttpRequest {
	b := request.NewHttpRequestBuilder().WithEndpoint(endpoint).WithPath(g.path()).WithMethod(g.method)
	grouped := map[string][]string{}
	for _, kv := range g.query {
		grouped[kv[0]] = append(grouped[kv[0]], kv[1])
	}
	for k, vs := range grouped {
		// The SDK's query parameters are reflect.Values: a slice for a
		// repeated key.
		if len(vs) == 1 {
			b.AddQueryParam(k, reflect.ValueOf(vs[0]))
		} else {
			b.AddQueryParam(k, reflect.ValueOf(vs))
		}
	}
	for _, h := range g.headers {
		b.AddHeaderParam(h[0], h[1])
	}
	if withHost {
		u, _ := url.Parse(endpoint)
		b.AddHeaderParam("Host", u.Host)
	}
	b.AddHeaderParam("X-Sdk-Date", g.date.Format(signer.BasicDateFormat))
	if g.body != nil {
		b.WithBody("", string(g.body))
	}
	return b.Build()
}

// sdkSign signs req as the SDK's BasicCredentials do and adds the headers
// the signer returns, as the SDK does before sending.
func sdkSign(t *testing.T, req *request.DefaultHttpRequest) string {
	t.Helper()
	h, err := signer.Signer{}.Sign(req, testAK, testSK)
	require.NoError(t, err)
	for k, v := range h {
		req.AddHeaderParam(k, v)
	}
	return h["Authorization"]
}

// apiclientRequest builds g as apiclient builds its requests: each segment
// escaped on its own (url.PathEscape), the query from url.Values.
func (g genRequest) apiclientRequest(t *testing.T, endpoint string) *http.Request {
	t.Helper()
	base, err := url.Parse(endpoint)
	require.NoError(t, err)
	u := *base
	escaped := make([]string, len(g.segments))
	for i, s := range g.segments {
		escaped[i] = url.PathEscape(s)
	}
	u.Path = g.path()
	u.RawPath = "/" + strings.Join(escaped, "/")
	q := url.Values{}
	for _, kv := range g.query {
		q.Add(kv[0], kv[1])
	}
	u.RawQuery = q.Encode()
	var body io.Reader
	if g.body != nil {
		body = bytes.NewReader(g.body)
	}
	r, err := http.NewRequest(g.method, u.String(), body)
	require.NoError(t, err)
	for _, h := range g.headers {
		r.Header.Set(h[0], h[1])
	}
	return r
}

// TestSignersAgree generates signerCases random requests and checks, for
// each, that the SDK signer and apiclient's Signer agree:
//
//  1. Same request, same signed headers: when the SDK is made to sign host
//     too (a Host header parameter), its Authorization equals the one
//     apiclient's Sign produces — signed header list and signature.
//  2. As the SDK really signs (no host), the request the SDK itself builds
//     and sends over HTTP is accepted by apiclient's Verify on the server.
//
// Content-Type is always a JSON type when present: for any other the SDK
// signs "UNSIGNED-PAYLOAD" instead of the body hash (X-Sdk-Content-Sha256),
// which no meetops operation sends and apiclient does not implement. Query
// keys are never empty: the SDK sends an empty value as a bare key and
// trims a leading "=" off the whole query, so an empty key would not
// survive. Host is never among the random headers: the SDK would sign its
// value but net/http sends the URL's host.
func TestSignersAgree(t *testing.T) {
	t.Parallel()
	verifier := apiclient.Signer{AK: testAK, SK: testSK}
	type verdict struct {
		ok  bool
		err string
	}
	// One request is in flight at a time: the test sends the server the
	// request's date (the verifier's clock) and reads back its verdict.
	clock, verdicts := make(chan time.Time, 1), make(chan verdict, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := <-clock
		body, err := io.ReadAll(r.Body)
		if err == nil {
			err = verifier.Verify(r, body, now)
		}
		if err != nil {
			verdicts <- verdict{err: err.Error()}
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		verdicts <- verdict{ok: true}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	client := srv.Client()

	rng := rand.New(rand.NewPCG(13, 2026))
	sameAuthorization, verified := 0, 0
	for i := range signerCases {
		g := generate(rng)

		// 1. Same signed set: exact Authorization equality.
		withHost := g.sdkRequest(srv.URL, true)
		sdkAuth := sdkSign(t, withHost)
		ar := g.apiclientRequest(t, srv.URL)
		require.NoError(t, apiclient.Signer{AK: testAK, SK: testSK}.Sign(ar, g.body, g.date))
		require.Equal(t, sdkAuth, ar.Header.Get("Authorization"), "case %d: %s", i, g)
		sameAuthorization++

		// 2. The SDK's own request over HTTP, verified by apiclient.
		sdkReq := g.sdkRequest(srv.URL, false)
		sdkSign(t, sdkReq)
		_, signed, _, err := apiclient.ParseAuthorization(sdkReq.GetHeaderParams()["Authorization"])
		require.NoError(t, err)
		require.NotContains(t, signed, "host", "case %d", i)
		httpReq, err := sdkReq.ConvertRequest()
		require.NoError(t, err, "case %d: %s", i, g)
		clock <- g.date
		resp, err := client.Do(httpReq)
		require.NoError(t, err, "case %d: %s", i, g)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		v := <-verdicts
		require.True(t, v.ok, "case %d: apiclient's Verify refused the SDK's signature: %s\n%s", i, v.err, g)
		require.Equal(t, http.StatusNoContent, resp.StatusCode)
		verified++
	}
	require.Equal(t, signerCases, sameAuthorization)
	require.Equal(t, signerCases, verified)
	t.Logf("signers agree on %d of %d random requests (same Authorization with the same signed headers), "+
		"and apiclient's Verify accepted all %d requests the SDK signed and sent", sameAuthorization, signerCases, verified)
}
