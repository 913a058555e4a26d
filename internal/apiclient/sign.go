package apiclient

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// AK/SK signing constants (upstream signing.md).
const (
	// SignAlgorithm is the algorithm name in StringToSign and Authorization.
	SignAlgorithm = "SDK-HMAC-SHA256"
	// SignDateFormat is the layout of the X-Sdk-Date header (UTC).
	SignDateFormat = "20060102T150405Z"
	// MaxSignSkew is the largest X-Sdk-Date skew the gateway accepts.
	MaxSignSkew = 15 * time.Minute
)

// Signer signs and verifies requests with SDK-HMAC-SHA256 (the Huawei Cloud
// AK/SK scheme). The client uses it to sign; the simulator uses the same
// canonicalisation to verify.
type Signer struct {
	AK string // access key ID (not secret)
	SK string // secret access key
}

// String hides the secret key.
func (s Signer) String() string { return fmt.Sprintf("apiclient.Signer{AK:%q SK:***}", s.AK) }

// GoString hides the secret key.
func (s Signer) GoString() string { return s.String() }

// Sign sets X-Sdk-Date (t in UTC) and Authorization on r. body must be the
// exact bytes that will be sent. The signed headers are those
// [SignedHeaders] lists: the headers already on r that the official SDK
// would sign, plus host, which the SDK leaves out but the published example
// signs (so a signature cannot be replayed against another host). Set
// X-Project-Id before signing.
func (s Signer) Sign(r *http.Request, body []byte, t time.Time) error {
	if s.AK == "" || s.SK == "" {
		return errors.New("apiclient: signer needs AK and SK")
	}
	r.Header.Set("X-Sdk-Date", t.UTC().Format(SignDateFormat))
	r.Header.Set("Authorization", s.authorization(r, SignedHeaders(r), BodyHash(body)))
	return nil
}

// authorization computes the Authorization header value for r.
func (s Signer) authorization(r *http.Request, signedHeaders []string, bodyHash string) string {
	sts := StringToSign(CanonicalRequest(r, signedHeaders, bodyHash), r.Header.Get("X-Sdk-Date"))
	return fmt.Sprintf("%s Access=%s, SignedHeaders=%s, Signature=%s",
		SignAlgorithm, s.AK, strings.Join(signedHeaders, ";"), s.signature(sts))
}

// signature is hex(HMAC-SHA256(SK, stringToSign)).
func (s Signer) signature(stringToSign string) string {
	m := hmac.New(sha256.New, []byte(s.SK))
	m.Write([]byte(stringToSign))
	return hex.EncodeToString(m.Sum(nil))
}

// Verify checks r's Authorization against s as the API gateway does: the
// access key must be s.AK, x-sdk-date must be among the signed headers,
// X-Sdk-Date must be within MaxSignSkew of now, and the signature must match
// body (the exact bytes received). Any other choice of signed headers is
// the signer's: x-sdk-date is the only header the gateway requires to be
// signed, and the official Go SDK signs
// user-agent;x-project-id;x-sdk-date — no host — on RTC requests. A header
// that is not signed is not covered by the signature.
func (s Signer) Verify(r *http.Request, body []byte, now time.Time) error {
	ak, signed, sig, err := ParseAuthorization(r.Header.Get("Authorization"))
	if err != nil {
		return err
	}
	if ak != s.AK {
		return fmt.Errorf("apiclient: unknown access key %q", ak)
	}
	if !slices.Contains(signed, "x-sdk-date") {
		return errors.New("apiclient: x-sdk-date is not signed")
	}
	date, err := time.Parse(SignDateFormat, r.Header.Get("X-Sdk-Date"))
	if err != nil {
		return fmt.Errorf("apiclient: bad X-Sdk-Date: %w", err)
	}
	if skew := now.Sub(date).Abs(); skew > MaxSignSkew {
		return fmt.Errorf("apiclient: X-Sdk-Date is %s off", skew)
	}
	want := s.signature(StringToSign(CanonicalRequest(r, signed, BodyHash(body)), r.Header.Get("X-Sdk-Date")))
	if !hmac.Equal([]byte(want), []byte(sig)) {
		return errors.New("apiclient: signature mismatch")
	}
	return nil
}

// SignedHeaders lists the lower-case header names Sign signs for r, sorted:
// host plus every header on r except Authorization and, as the official SDK
// leaves them out, names that begin with "content-type" or contain "_".
func SignedHeaders(r *http.Request) []string {
	names := []string{"host"}
	for k := range r.Header {
		k = strings.ToLower(k)
		if k == "host" || k == "authorization" || strings.HasPrefix(k, "content-type") || strings.Contains(k, "_") {
			continue
		}
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

// BodyHash is hex(sha256(body)).
func BodyHash(body []byte) string {
	h := sha256.Sum256(body)
	return hex.EncodeToString(h[:])
}

// CanonicalRequest builds the canonical request of r:
//
//	Method \n CanonicalURI \n CanonicalQueryString \n CanonicalHeaders \n SignedHeaders \n bodyHash
//
// The canonical URI re-encodes each segment of r.URL.EscapedPath() (so an
// escaped "/" inside a segment stays one segment) and ends in "/". The host
// header is r.Host, else r.URL.Host. signedHeaders must be lower case.
func CanonicalRequest(r *http.Request, signedHeaders []string, bodyHash string) string {
	return strings.Join([]string{
		r.Method,
		canonicalURI(r.URL),
		canonicalQuery(r.URL),
		canonicalHeaders(r, signedHeaders),
		strings.Join(signedHeaders, ";"),
		bodyHash,
	}, "\n")
}

// StringToSign is SignAlgorithm \n sdkDate \n hex(sha256(canonicalRequest)).
func StringToSign(canonicalRequest, sdkDate string) string {
	h := sha256.Sum256([]byte(canonicalRequest))
	return SignAlgorithm + "\n" + sdkDate + "\n" + hex.EncodeToString(h[:])
}

// ParseAuthorization splits an SDK-HMAC-SHA256 Authorization header value
// ("SDK-HMAC-SHA256 Access=…, SignedHeaders=a;b, Signature=…").
func ParseAuthorization(h string) (ak string, signedHeaders []string, signature string, err error) {
	rest, ok := strings.CutPrefix(h, SignAlgorithm+" ")
	if !ok {
		return "", nil, "", errors.New("apiclient: Authorization is not " + SignAlgorithm)
	}
	var signed string
	for part := range strings.SplitSeq(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "Access":
			ak = v
		case "SignedHeaders":
			signed = v
		case "Signature":
			signature = v
		}
	}
	if ak == "" || signed == "" || signature == "" {
		return "", nil, "", errors.New("apiclient: Authorization lacks Access, SignedHeaders or Signature")
	}
	return ak, strings.Split(signed, ";"), signature, nil
}

func canonicalURI(u *url.URL) string {
	segs := strings.Split(u.EscapedPath(), "/")
	for i, s := range segs {
		if raw, err := url.PathUnescape(s); err == nil {
			s = raw
		}
		segs[i] = signEscape(s)
	}
	p := strings.Join(segs, "/")
	if !strings.HasSuffix(p, "/") {
		p += "/"
	}
	return p
}

func canonicalQuery(u *url.URL) string {
	q := u.Query()
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(q)) {
		vals := slices.Clone(q[k])
		slices.Sort(vals)
		for _, v := range vals {
			parts = append(parts, signEscape(k)+"="+signEscape(v))
		}
	}
	return strings.Join(parts, "&")
}

// canonicalHeaders is "name:trimmed-value\n" per signed header (and value).
func canonicalHeaders(r *http.Request, signedHeaders []string) string {
	var b strings.Builder
	for _, name := range signedHeaders {
		vals := r.Header.Values(name)
		if name == "host" {
			host := r.Host
			if host == "" {
				host = r.URL.Host
			}
			vals = []string{host}
		}
		vals = slices.Clone(vals)
		slices.Sort(vals)
		for _, v := range vals {
			b.WriteString(name + ":" + strings.TrimSpace(v) + "\n")
		}
	}
	return b.String()
}

// signEscape percent-encodes every byte but A-Z a-z 0-9 - _ . ~ (upper-case
// hex, space as %20).
func signEscape(s string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}
