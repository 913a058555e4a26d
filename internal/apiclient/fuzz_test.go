package apiclient_test

import (
	"bufio"
	"bytes"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/meetops/meetops/internal/apiclient"
)

// FuzzSignVerify signs requests with arbitrary methods, paths, queries,
// one extra header and bodies, sends them through HTTP/1.1 serialisation
// (http.Request.Write, then http.ReadRequest, as client and server would)
// and verifies the received request (seeds in testdata/fuzz/FuzzSignVerify;
// `make fuzz` explores further). Nothing panics; whatever the client can
// send, the receiver's canonical request equals the sender's and Verify
// accepts the signature; a changed body is refused.
func FuzzSignVerify(f *testing.F) {
	f.Add("POST", "/v2/apps/demo-app/rooms/room-001/dismiss", "", "X-Project-Id", "p1", []byte(""))
	f.Add("GET", "/v1/77b6a44cba5143ab91d13ab9a8ff44fd/vpcs", "limit=2&marker=13551d6b", "Content-Type", "application/json", []byte(""))
	f.Add("POST", "/v2/apps/a%2Fb/rooms/%E6%97%A5/dismiss", "b=2&a=1&a=0&sp=x%20y", "X-Request-Id", " padded ", []byte("{\"Name\":\"test\",\"Id\":1}\n"))
	const (
		ak = "FUZZAK0000000000"
		sk = "fuzz-secret-key"
	)
	signer := apiclient.Signer{AK: ak, SK: sk}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f.Fuzz(func(t *testing.T, method, path, rawQuery, headerName, headerValue string, body []byte) {
		if !validHeaderName(method) {
			return // net/http sends "" as GET and refuses non-token methods
		}
		target := path
		if rawQuery != "" {
			target += "?" + rawQuery
		}
		u, err := url.Parse("https://rtc.example.com" + ensureSlash(target))
		if err != nil || u.Host != "rtc.example.com" || u.Opaque != "" {
			return // not a request target a client could send
		}
		req := &http.Request{Method: method, URL: u, Host: u.Host, Header: http.Header{}, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
		req.Header.Set("X-Project-Id", "fuzz-project")
		if validHeaderName(headerName) && validHeaderValue(headerValue) {
			req.Header.Add(headerName, headerValue) // what http.Transport would let through
		}
		// Canonicalisation of anything must not panic.
		_ = apiclient.CanonicalRequest(req, apiclient.SignedHeaders(req), apiclient.BodyHash(body))
		if err := signer.Sign(req, body, now); err != nil {
			t.Fatalf("Sign: %v", err)
		}
		sent := apiclient.CanonicalRequest(req, apiclient.SignedHeaders(req), apiclient.BodyHash(body))

		req.Body = nopCloser{bytes.NewReader(body)}
		req.ContentLength = int64(len(body))
		var wire bytes.Buffer
		if err := req.Write(&wire); err != nil {
			return // net/http refuses to send it (bad method or header)
		}
		sentBytes := wire.String()
		got, err := http.ReadRequest(bufio.NewReader(&wire))
		if err != nil {
			return // a server would answer 400 before any signature check
		}
		if err := signer.Verify(got, body, now); err != nil {
			signed := strings.Split(strings.SplitN(strings.SplitN(req.Header.Get("Authorization"), "SignedHeaders=", 2)[1], ",", 2)[0], ";")
			t.Fatalf("signed request refused after the round trip: %v\nsent:\n%s\nreceived:\n%s\nwire:\n%q",
				err, sent, apiclient.CanonicalRequest(got, signed, apiclient.BodyHash(body)), sentBytes)
		}
		if err := signer.Verify(got, append(append([]byte{}, body...), 'x'), now); err == nil {
			t.Fatalf("a changed body was accepted")
		}
	})
}

// validHeaderName reports whether s is an RFC 9110 token, as net/http's
// Transport requires of header names and methods.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// validHeaderValue reports whether s has no control characters but tab,
// as net/http's Transport requires of header values.
func validHeaderValue(s string) bool {
	for _, c := range []byte(s) {
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

func ensureSlash(s string) string {
	if strings.HasPrefix(s, "/") {
		return s
	}
	return "/" + s
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }
