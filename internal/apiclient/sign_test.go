package apiclient

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The three public test vectors of Huawei Cloud's AK/SK signing (the
// documentation's own example and two recomputed ones).
func TestSignVectors(t *testing.T) {
	t.Parallel()

	t.Run("Vector1OfficialExample", func(t *testing.T) {
		t.Parallel()
		r := httptest.NewRequest(http.MethodGet, "https://service.region.example.com/v1/77b6a44cba5143ab91d13ab9a8ff44fd/vpcs?limit=2&marker=13551d6b-755d-4757-b956-536f674975c0", nil)
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("X-Sdk-Date", "20191115T033655Z")
		signed := []string{"content-type", "host", "x-sdk-date"}

		cr := CanonicalRequest(r, signed, BodyHash(nil))
		require.Equal(t, "GET\n"+
			"/v1/77b6a44cba5143ab91d13ab9a8ff44fd/vpcs/\n"+
			"limit=2&marker=13551d6b-755d-4757-b956-536f674975c0\n"+
			"content-type:application/json\n"+
			"host:service.region.example.com\n"+
			"x-sdk-date:20191115T033655Z\n"+
			"\n"+
			"content-type;host;x-sdk-date\n"+
			"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", cr)
		sum := sha256.Sum256([]byte(cr))
		require.Equal(t, "b25362e603ee30f4f25e7858e8a7160fd36e803bb2dfe206278659d71a9bcd7a", hex.EncodeToString(sum[:]))

		s := Signer{AK: "QTWAOYTTINDUT2QVKYUC", SK: "MFyfvK41ba2giqM7Uio6PznpdUKGpownRZlmVmHc"}
		require.Equal(t, "7be6668032f70418fcc22abc52071e57aff61b84a1d2381bb430d6870f4f6ebe",
			s.signature(StringToSign(cr, "20191115T033655Z")))
		require.Equal(t, "SDK-HMAC-SHA256 Access=QTWAOYTTINDUT2QVKYUC, SignedHeaders=content-type;host;x-sdk-date, "+
			"Signature=7be6668032f70418fcc22abc52071e57aff61b84a1d2381bb430d6870f4f6ebe",
			s.authorization(r, signed, BodyHash(nil)))
	})

	t.Run("Vector2GetWithQuery", func(t *testing.T) {
		t.Parallel()
		r := httptest.NewRequest(http.MethodGet, "http://example.com/path?limit=1", nil)
		r.Header.Set("X-Sdk-Date", "20060102T150405Z")
		cr := CanonicalRequest(r, []string{"x-sdk-date"}, BodyHash(nil))
		require.Equal(t, "5a2ce64c865e0e6046321c6f3d5a77ba8413eeaf355c3166c03d58d02ac79624",
			Signer{AK: "ak", SK: "SecretKey"}.signature(StringToSign(cr, "20060102T150405Z")))
	})

	t.Run("Vector3PostWithBody", func(t *testing.T) {
		t.Parallel()
		body := []byte("{\"Name\":\"test\",\"Id\":1}\n")
		r := httptest.NewRequest(http.MethodPost, "http://example.com/path?key=value", bytes.NewReader(body))
		r.Header.Set("X-Sdk-Date", "20060102T150405Z")
		cr := CanonicalRequest(r, []string{"x-sdk-date"}, BodyHash(body))
		require.Equal(t, "cecc2af119b18ab70b4d094c0750f3b42c02f254903179a0fc2cc72fc9db4f59",
			Signer{AK: "ak", SK: "SecretKey"}.signature(StringToSign(cr, "20060102T150405Z")))
	})
}

// TestVerifyAcceptsTheSDKsSignature verifies a request signed by the
// official Go SDK (huaweicloud-sdk-go-v3 core/auth/signer, v0.1.207): it
// signs user-agent;x-project-id;x-sdk-date and never host, and the gateway
// accepts that. The Authorization value below is the SDK signer's output for
// exactly this request (the conformance module checks the two signers on
// thousands more).
func TestVerifyAcceptsTheSDKsSignature(t *testing.T) {
	t.Parallel()
	const sdkAuthorization = "SDK-HMAC-SHA256 Access=" + testAK + ", SignedHeaders=user-agent;x-project-id;x-sdk-date, " +
		"Signature=0d748ff97b1decc21916425931b04d75d8909cb15a46f9f76b0985588da36fdd"
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	sdkRequest := func() *http.Request {
		r := httptest.NewRequest(http.MethodPost, "https://rtc-api.myhuaweicloud.com/v2/apps/demo-app/rooms/room%20001/dismiss", nil)
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("User-Agent", "huaweicloud-usdk-go/3.0")
		r.Header.Set("X-Project-Id", testProjectID)
		r.Header.Set("X-Sdk-Date", "20260102T030405Z")
		r.Header.Set("Authorization", sdkAuthorization)
		return r
	}
	signer := Signer{AK: testAK, SK: testSK}

	require.NoError(t, signer.Verify(sdkRequest(), nil, at))

	// host is not signed, so it is not covered: another Host still verifies.
	r := sdkRequest()
	r.Host = "elsewhere.example"
	require.NoError(t, signer.Verify(r, nil, at))

	// What is signed still is.
	for name, mutate := range map[string]func(r *http.Request){
		"Project":   func(r *http.Request) { r.Header.Set("X-Project-Id", "other") },
		"UserAgent": func(r *http.Request) { r.Header.Set("User-Agent", "other") },
		"Path":      func(r *http.Request) { r.URL.Path, r.URL.RawPath = "/v2/apps/demo-app/rooms/room%20002/dismiss", "" },
		"Signature": func(r *http.Request) { replaceAuth(r, "Signature=0d", "Signature=1d") },
	} {
		r := sdkRequest()
		mutate(r)
		require.ErrorContains(t, signer.Verify(r, nil, at), "signature mismatch", name)
	}
	require.ErrorContains(t, signer.Verify(sdkRequest(), nil, at.Add(MaxSignSkew+time.Second)), "off")
	require.ErrorContains(t, Signer{AK: "OTHERAK", SK: testSK}.Verify(sdkRequest(), nil, at), "unknown access key")
}

// TestVerifyNeedsOnlyTheDateSigned: x-sdk-date is the one header the
// gateway requires to be signed; a signature over it alone is accepted, and
// one that leaves it out is refused however valid it is.
func TestVerifyNeedsOnlyTheDateSigned(t *testing.T) {
	t.Parallel()
	signer := Signer{AK: testAK, SK: testSK}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for name, tc := range map[string]struct {
		signed []string
		errMsg string
	}{
		"DateOnly":          {[]string{"x-sdk-date"}, ""},
		"DateAndProject":    {[]string{"x-project-id", "x-sdk-date"}, ""},
		"HostAndDate":       {[]string{"host", "x-sdk-date"}, ""},
		"ProjectNoDate":     {[]string{"x-project-id"}, "x-sdk-date is not signed"},
		"HostAndProjectNoD": {[]string{"host", "x-project-id"}, "x-sdk-date is not signed"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(http.MethodPost, "https://rtc.example/v2/apps/a/disable", nil)
			r.Header.Set("X-Project-Id", testProjectID)
			r.Header.Set("X-Sdk-Date", at.Format(SignDateFormat))
			r.Header.Set("Authorization", signer.authorization(r, tc.signed, BodyHash(nil)))
			err := signer.Verify(r, nil, at)
			if tc.errMsg == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.errMsg)
		})
	}
}

func TestCanonicalisation(t *testing.T) {
	t.Parallel()

	t.Run("URIKeepsEscapedSlashInsideSegment", func(t *testing.T) {
		t.Parallel()
		u := endpointURL(&url.URL{Scheme: "https", Host: "h"}, nil, "v2", "apps", "a/b c", "x~y", "ü")
		require.Equal(t, "/v2/apps/a%2Fb%20c/x~y/%C3%BC/", canonicalURI(u))
		require.Equal(t, "/", canonicalURI(&url.URL{}))
	})

	t.Run("QuerySortedAndStrictlyEncoded", func(t *testing.T) {
		t.Parallel()
		u, err := url.Parse("http://h/p?b=2&a=z&a=y&sp=a+b&star=*&tilde=~")
		require.NoError(t, err)
		require.Equal(t, "a=y&a=z&b=2&sp=a%20b&star=%2A&tilde=~", canonicalQuery(u))
	})

	t.Run("HeadersSortedValuesTrimmed", func(t *testing.T) {
		t.Parallel()
		r := httptest.NewRequest(http.MethodGet, "http://h.example:8080/", nil)
		r.Header.Add("X-Multi", "b ")
		r.Header.Add("X-Multi", " a")
		require.Equal(t, "host:h.example:8080\nx-multi:a\nx-multi:b\n", canonicalHeaders(r, []string{"host", "x-multi"}))
		r.Host = ""
		require.Equal(t, "host:h.example:8080\n", canonicalHeaders(r, []string{"host"}))
	})
}

func TestSignerSignAndVerify(t *testing.T) {
	t.Parallel()

	signer := Signer{AK: testAK, SK: testSK}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

	// signed builds a request signed by signer at time at.
	signed := func(t *testing.T) (*http.Request, []byte) {
		t.Helper()
		body := []byte(`{"k":"v"}`)
		r := httptest.NewRequest(http.MethodPost, "https://rtc.example/v2/apps/a%2Fb/disable?x=1", bytes.NewReader(body))
		r.Header.Set("Content-Type", contentTypeJSON)
		r.Header.Set("X-Project-Id", testProjectID)
		r.Header.Set("User-Agent", "meetops/test")
		r.Header["X_custom"] = []string{"skipped"}
		r.Header.Set("Content-Type-Options", "skipped too: the SDK leaves out every content-type* name")
		require.NoError(t, signer.Sign(r, body, at.In(time.FixedZone("X", 3600))))
		return r, body
	}

	t.Run("SignsHostAndWhatTheSDKWouldSign", func(t *testing.T) {
		t.Parallel()
		r, body := signed(t)
		require.Equal(t, "20260102T030405Z", r.Header.Get("X-Sdk-Date"))
		ak, names, sig, err := ParseAuthorization(r.Header.Get("Authorization"))
		require.NoError(t, err)
		require.Equal(t, testAK, ak)
		require.Equal(t, []string{"host", "user-agent", "x-project-id", "x-sdk-date"}, names)
		require.Len(t, sig, 64)
		require.NoError(t, signer.Verify(r, body, at.Add(MaxSignSkew)))
	})

	t.Run("RejectsTampering", func(t *testing.T) {
		t.Parallel()
		for name, tc := range map[string]struct {
			mutate func(r *http.Request) []byte
			now    time.Time
			errMsg string
		}{
			"Body": {func(*http.Request) []byte { return []byte(`{"k":"w"}`) }, at, "signature mismatch"},
			"Path": {func(r *http.Request) []byte {
				r.URL.RawPath = "/v2/apps/a/b/disable"
				r.URL.Path = "/v2/apps/a/b/disable"
				return nil
			}, at, "signature mismatch"},
			"Query":         {func(r *http.Request) []byte { r.URL.RawQuery = "x=2"; return nil }, at, "signature mismatch"},
			"SignedHeader":  {func(r *http.Request) []byte { r.Header.Set("X-Project-Id", "other"); return nil }, at, "signature mismatch"},
			"Host":          {func(r *http.Request) []byte { r.Host = "evil.example"; return nil }, at, "signature mismatch"},
			"Skew":          {func(*http.Request) []byte { return nil }, at.Add(MaxSignSkew + time.Second), "off"},
			"NoAuth":        {func(r *http.Request) []byte { r.Header.Del("Authorization"); return nil }, at, "not SDK-HMAC-SHA256"},
			"BadDate":       {func(r *http.Request) []byte { r.Header.Set("X-Sdk-Date", "yesterday"); return nil }, at, "bad X-Sdk-Date"},
			"OtherAK":       {func(r *http.Request) []byte { replaceAuth(r, "Access="+testAK, "Access=OTHER"); return nil }, at, "unknown access key"},
			"DateUnsigned":  {func(r *http.Request) []byte { replaceAuth(r, ";x-sdk-date", ""); return nil }, at, "x-sdk-date is not signed"},
			"MissingFields": {func(r *http.Request) []byte { r.Header.Set("Authorization", SignAlgorithm+" Access=x"); return nil }, at, "lacks"},
		} {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				r, body := signed(t)
				if b := tc.mutate(r); b != nil {
					body = b
				}
				err := signer.Verify(r, body, tc.now)
				require.Error(t, err)
				require.Contains(t, err.Error(), tc.errMsg)
				require.NotContains(t, err.Error(), testSK)
			})
		}
	})

	t.Run("NeedsKeys", func(t *testing.T) {
		t.Parallel()
		r := httptest.NewRequest(http.MethodGet, "http://h/", nil)
		require.Error(t, Signer{AK: "ak"}.Sign(r, nil, at))
	})

	t.Run("StringHidesSK", func(t *testing.T) {
		t.Parallel()
		for _, s := range []string{signer.String(), signer.GoString()} {
			require.NotContains(t, s, testSK)
			require.Contains(t, s, testAK)
		}
	})
}

func replaceAuth(r *http.Request, old, new string) {
	r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), old, new, 1))
}
