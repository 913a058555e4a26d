package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
)

// Content-Type values: each is what the official Go SDK sends for the call,
// and what the API pages show where they show one.
const (
	// contentTypeJSON is sent on every RTC and Meeting API call, body or
	// not: the SDK's request definitions all declare application/json and
	// it sends it on bodiless calls too, the RTC pages mark Content-Type
	// mandatory, and the Meeting pages' examples send application/json.
	contentTypeJSON = "application/json"
	// contentTypeMeetingAuth is sent on Meeting App ID and account
	// authentication (the App ID authentication page; the SDK's account
	// login).
	contentTypeMeetingAuth = "application/json; charset=UTF-8"
	// contentTypeIAM is sent on IAM token requests (the SDK's IAM client).
	contentTypeIAM = "application/json;charset=UTF-8"
)

// maxBody bounds how much of an answer is read.
const maxBody = 1 << 20

// headers whose values are secrets; they are redacted from error bodies.
var secretHeaders = []string{"Authorization", "X-Auth-Token", "X-Access-Token", "X-Conference-Authorization", "X-Password"}

// Client calls the RTC and Meeting APIs. It is safe for concurrent use and
// caches tokens, so a process should create one and share it.
type Client struct {
	cfg         Config
	hc          *http.Client
	rtcBase     *url.URL
	iamBase     *url.URL
	meetingBase *url.URL
	signer      Signer
	userAgent   string
	tokens      *tokenCache
	logins      *logins

	// secrets holds the login secrets in use by Config field name
	// (IAMPassword, MeetingAppKey, MeetingPassword): ReloadSecret may
	// replace them.
	secretsMu sync.Mutex
	secrets   map[string]string
}

// Response describes a successful (2xx) exchange.
type Response struct {
	// Status is the HTTP status.
	Status int
	// RequestID is the response header X-Request-Id (X-request-Id), else
	// request_id from the body, else the X-Request-Id the client sent.
	RequestID string
}

// New validates cfg and returns a Client. A half-set mode (an AK without
// SK, an App ID without key, an IAM user without password…) is an error
// naming the fields, one error per problem. RTC and Meeting may each be
// left unconfigured; their calls then fail with ErrNotConfigured.
func New(cfg Config) (*Client, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	c := &Client{
		cfg:       cfg,
		signer:    Signer{AK: cfg.RTCAK, SK: cfg.RTCSK},
		userAgent: "meetops/" + cfg.Version,
		logins:    newLogins(cfg.Login, cfg.Now, cfg.OnLoginState),
		secrets:   map[string]string{"IAMPassword": cfg.IAMPassword, "MeetingAppKey": cfg.MeetingAppKey, "MeetingPassword": cfg.MeetingPassword},
	}
	c.tokens = newTokenCache(cfg.Now, c.logins)
	c.rtcBase, _ = parseEndpoint(cfg.RTCEndpoint) // validated above
	c.meetingBase, _ = parseEndpoint(cfg.MeetingEndpoint)
	if cfg.IAMEndpoint != "" {
		c.iamBase, _ = parseEndpoint(cfg.IAMEndpoint)
	}
	if cfg.HTTPClient != nil {
		hc := *cfg.HTTPClient
		c.hc = &hc
	} else {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConns = 512
		tr.MaxIdleConnsPerHost = 256
		c.hc = &http.Client{Transport: tr}
	}
	c.hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c, nil
}

// secret returns the login secret field (a Config field name) for
// credential. After a refused login of credential it asks
// Config.ReloadSecret first, so that a rotated secret is the one sent.
func (c *Client) secret(credential, field string) string {
	var fresh string
	if c.cfg.ReloadSecret != nil && c.logins.refusedBefore(credential) {
		fresh = c.cfg.ReloadSecret(field)
	}
	c.secretsMu.Lock()
	defer c.secretsMu.Unlock()
	if fresh != "" {
		c.secrets[field] = fresh
	}
	return c.secrets[field]
}

// Rejected lists the client's own credentials (CredentialIAM,
// CredentialMeeting) that are rejected (see LoginPolicy), sorted; empty
// when none is. A conference's refused control token is not listed.
func (c *Client) Rejected() []LoginState {
	var out []LoginState
	for _, st := range c.logins.rejected() {
		if st.Credential == CredentialIAM || st.Credential == CredentialMeeting {
			out = append(out, st)
		}
	}
	return out
}

// Relogin logs in again with each of the client's own rejected
// credentials whose retry is due (LoginPolicy.RetryInterval after the last
// refusal), re-reading its secret through Config.ReloadSecret; a success
// ends the rejection. Run it periodically: without it a rejected credential
// is tried again only by a call that needs it.
func (c *Client) Relogin(ctx context.Context) {
	for _, st := range c.Rejected() {
		switch st.Credential {
		case CredentialIAM:
			_, _ = c.tokens.get(ctx, iamKey, "iam_token", c.fetchIAMToken)
		case CredentialMeeting:
			_, _ = c.tokens.get(ctx, meetingKey, "meeting_auth", c.fetchAccessToken)
		}
	}
}

// String describes the client without its secrets.
func (c *Client) String() string { return "apiclient.Client{" + c.cfg.String() + "}" }

// request is one upstream HTTP exchange.
type request struct {
	op     string
	method string
	url    *url.URL
	header http.Header // extra headers, secrets included
	body   []byte      // nil: no body
	// contentType is the Content-Type; default contentTypeJSON. Every
	// request carries one, bodiless ones included, as the SDK's do.
	contentType string
	// sign, when set, signs the finished request (AK/SK).
	sign func(r *http.Request, body []byte) error
}

// reply is a 2xx answer.
type reply struct {
	Response
	header http.Header
	body   []byte
}

// do performs rq within Config.Timeout and returns the 2xx answer, or an
// *Error for a non-2xx answer or a transport failure.
func (c *Client) do(ctx context.Context, rq request) (reply, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()

	var body io.Reader
	if rq.body != nil {
		body = bytes.NewReader(rq.body)
	}
	req, err := http.NewRequestWithContext(ctx, rq.method, rq.url.String(), body)
	if err != nil {
		return reply{}, fmt.Errorf("apiclient: %s: %w", rq.op, err)
	}
	for k, vs := range rq.header {
		req.Header[k] = vs
	}
	sentID := uuid.NewString()
	req.Header.Set("User-Agent", c.userAgent)
	req.Header.Set("X-Request-Id", sentID)
	ct := rq.contentType
	if ct == "" {
		ct = contentTypeJSON
	}
	req.Header.Set("Content-Type", ct)
	if rq.sign != nil {
		if err := rq.sign(req, rq.body); err != nil {
			return reply{}, fmt.Errorf("apiclient: %s: %w", rq.op, err)
		}
	}

	start := time.Now()
	status, h, b, err := c.exchange(req)
	if c.cfg.Observe != nil {
		c.cfg.Observe(rq.op, status, time.Since(start))
	}
	if err != nil {
		// Keep timeouts and cancellations recognisable whichever layer
		// reported them.
		if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
			err = fmt.Errorf("%w: %w", cerr, err)
		}
		return reply{}, &Error{Op: rq.op, RequestID: sentID, Err: err}
	}
	if status < 200 || status > 299 {
		return reply{}, httpError(rq.op, status, h, b, sentID, c.cfg.Now(), c.redactor(rq))
	}
	return reply{Response: Response{Status: status, RequestID: requestID(h, b, sentID)}, header: h, body: b}, nil
}

// exchange sends req and reads the answer (up to maxBody bytes); status is
// 0 when err is not nil.
func (c *Client) exchange(req *http.Request) (status int, h http.Header, body []byte, err error) {
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return 0, nil, nil, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody)) // let the connection be reused
	return resp.StatusCode, resp.Header, body, nil
}

// redactor returns a function replacing every secret of the Config and
// every secret header value sent with rq by "***", in every form an
// answer could echo it in: as sent, JSON-escaped (with and without HTML
// escaping, as an echoed JSON body would carry it) and URL-encoded.
func (c *Client) redactor(rq request) func(string) string {
	secrets := c.cfg.secrets()
	c.secretsMu.Lock()
	for _, v := range c.secrets {
		if v != "" {
			secrets = append(secrets, v)
		}
	}
	c.secretsMu.Unlock()
	for _, h := range secretHeaders {
		if v := rq.header.Get(h); v != "" {
			secrets = append(secrets, v)
			if scheme, cred, ok := strings.Cut(v, " "); ok && scheme != "" {
				secrets = append(secrets, cred) // "Basic <base64>" echoed without its scheme
			}
		}
	}
	var forms []string
	for _, secret := range secrets {
		forms = append(forms, secretForms(secret)...)
	}
	// Longest first, so a form that contains another is replaced whole.
	slices.SortFunc(forms, func(a, b string) int { return len(b) - len(a) })
	forms = slices.Compact(forms)
	return func(s string) string {
		for _, f := range forms {
			s = strings.ReplaceAll(s, f, "***")
		}
		return s
	}
}

// secretForms lists the ways secret can appear in text: itself, the inside
// of its JSON string with and without HTML escaping, and URL-encoded as a
// query value and as a path segment.
func secretForms(secret string) []string {
	forms := []string{secret, url.QueryEscape(secret), url.PathEscape(secret)}
	for _, html := range []bool{true, false} {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(html)
		_ = enc.Encode(secret) // a string always encodes
		forms = append(forms, strings.TrimSuffix(strings.TrimPrefix(strings.TrimSuffix(b.String(), "\n"), `"`), `"`))
	}
	return forms
}

// marshalJSON encodes v as the official SDK does — encoding/json without
// HTML escaping, so "<", ">" and "&" in an ID are sent as themselves — but
// without the encoder's trailing newline.
func marshalJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// endpointURL joins base, the path segments (each escaped with
// url.PathEscape, so an ID can never add or remove a segment) and query.
func endpointURL(base *url.URL, query url.Values, segments ...string) *url.URL {
	u := *base
	var raw, plain strings.Builder
	for _, s := range segments {
		plain.WriteString("/" + s)
		raw.WriteString("/" + url.PathEscape(s))
	}
	u.Path = base.Path + plain.String()
	u.RawPath = base.EscapedPath() + raw.String()
	u.RawQuery = query.Encode()
	return &u
}

// checkID rejects an ID that cannot be sent: empty, or a dot segment (which
// would change the path even when escaped).
func checkID(op, name, id string) error {
	switch id {
	case "":
		return fmt.Errorf("apiclient: %s: %w: %s is empty", op, ErrInvalidArgument, name)
	case ".", "..":
		return fmt.Errorf("apiclient: %s: %w: %s must not be %q", op, ErrInvalidArgument, name, id)
	}
	return nil
}
