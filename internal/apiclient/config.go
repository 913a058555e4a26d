package apiclient

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Defaults applied by [New] to zero-valued [Config] fields.
const (
	DefaultRTCEndpoint     = "https://rtc-api.myhuaweicloud.com"
	DefaultMeetingEndpoint = "https://api.meeting.huaweicloud.com"
	DefaultTimeout         = 15 * time.Second
	DefaultVersion         = "dev"
)

// Config configures a [Client]. Zero values mean defaults.
//
// The RTC mode is chosen by credentials: AK/SK when RTCAK is set, else an IAM
// user token when IAMUser is set, else RTC is not configured. The Meeting
// mode likewise: App ID authentication when MeetingAppID is set, else
// account authentication when MeetingAccount is set, else Meeting is not
// configured. Endpoints never choose a mode. Each mode is all or nothing:
// [New] rejects a mode whose selector lacks the other fields, or whose
// fields are set without the selector.
type Config struct {
	// RTCEndpoint is the RTC API base URL; default DefaultRTCEndpoint.
	RTCEndpoint string
	// RTCAK and RTCSK are the access key pair for AK/SK signing; setting
	// RTCAK selects AK/SK mode, which then needs RTCSK and RTCProjectID.
	RTCAK, RTCSK string
	// RTCProjectID is sent (and signed) as X-Project-Id in AK/SK mode.
	RTCProjectID string

	// IAMEndpoint is the IAM base URL, e.g. https://iam.cn-north-4.myhuaweicloud.com;
	// no default (it is regional). Used in IAM token mode only.
	IAMEndpoint string
	// IAMUser selects IAM token mode when RTCAK is empty; it then needs
	// IAMPassword, IAMDomain (the account name), IAMProjectID and IAMEndpoint.
	IAMUser, IAMPassword, IAMDomain, IAMProjectID string

	// MeetingEndpoint is the Meeting API base URL; default DefaultMeetingEndpoint.
	MeetingEndpoint string
	// MeetingAppID selects App ID authentication, which needs MeetingAppKey.
	// MeetingUserID (optional) is the third-party user the token acts for;
	// without it the token acts as the enterprise owner. MeetingCorpID
	// (optional) selects SP mode.
	MeetingAppID, MeetingAppKey, MeetingUserID, MeetingCorpID string
	// MeetingAccount selects account authentication when MeetingAppID is
	// empty; it needs MeetingPassword.
	MeetingAccount, MeetingPassword string

	// Timeout bounds each HTTP exchange (including reading the answer);
	// default DefaultTimeout. Token requests count as their own exchanges.
	Timeout time.Duration
	// HTTPClient sends the requests; default a client with keep-alives and
	// up to 256 idle connections per host. Redirects are never followed
	// (a redirect would carry tokens to another host): a 3xx is an *Error.
	HTTPClient *http.Client
	// Version is sent as User-Agent "meetops/<Version>"; default "dev".
	Version string
	// Now is the clock for token lifetimes, X-Sdk-Date, the App ID
	// authentication expireTime and HTTP-date Retry-After values; default
	// time.Now. It must be safe for concurrent use.
	Now func() time.Time
	// Observe, when set, is called after every upstream HTTP exchange
	// (token requests included) with the operation name (see Error.Op), the
	// HTTP status (0 on a transport error) and the duration. It must be safe
	// for concurrent use.
	Observe func(op string, status int, d time.Duration)

	// Login says when refused logins reject a credential and how often a
	// rejected one is tried again; zero fields are LoginPolicy's defaults.
	Login LoginPolicy
	// ReloadSecret, when set, is called before a login that follows a
	// refused one with the Config field name of the secret the login sends
	// ("IAMPassword", "MeetingAppKey" or "MeetingPassword"); a non-empty
	// answer replaces the secret from then on (a rotated secret file), an
	// empty one keeps it. It must be safe for concurrent use and report its
	// own failures.
	ReloadSecret func(field string) string
	// OnLoginState, when set, is called on every change of a credential's
	// login state (see LoginPolicy), outside the client's locks. It must be
	// safe for concurrent use.
	OnLoginState func(LoginState)
}

type rtcMode int

const (
	rtcNone rtcMode = iota
	rtcAKSK
	rtcIAM
)

type meetingMode int

const (
	meetingNone meetingMode = iota
	meetingAppID
	meetingAccount
)

func (c Config) rtcMode() rtcMode {
	switch {
	case c.RTCAK != "":
		return rtcAKSK
	case c.IAMUser != "":
		return rtcIAM
	}
	return rtcNone
}

func (c Config) meetingMode() meetingMode {
	switch {
	case c.MeetingAppID != "":
		return meetingAppID
	case c.MeetingAccount != "":
		return meetingAccount
	}
	return meetingNone
}

// field is a Config field's name and value, for validation messages.
type field struct{ name, value string }

// Validate reports every problem with c, one error per problem (joined),
// the way New does. Each message names the fields it is about through
// name, which maps a Config field name ("RTCSK") to what the caller calls
// it (the worker passes its environment variables, "RTC_SK"); a nil name
// keeps the field names. The messages carry no "apiclient:" prefix.
//
// Each mode is all or nothing, whether or not it is the one chosen: its
// selector (RTCAK, IAMUser, MeetingAppID, MeetingAccount) needs the mode's
// other fields, and those fields (endpoints aside) are an error without it.
func (c Config) Validate(name func(field string) string) error {
	if name == nil {
		name = func(f string) string { return f }
	}
	var problems []error
	mode := func(selector field, desc string, required, optional []field) {
		if selector.value == "" {
			for _, f := range slices.Concat(required, optional) {
				if f.value != "" && !strings.HasSuffix(f.name, "Endpoint") {
					problems = append(problems, fmt.Errorf("%s is set but %s is not", name(f.name), name(selector.name)))
				}
			}
			return
		}
		var missing []string
		for _, f := range required {
			if f.value == "" {
				missing = append(missing, name(f.name))
			}
		}
		if len(missing) > 0 {
			problems = append(problems, fmt.Errorf("%s (%s set) also needs %s", desc, name(selector.name), strings.Join(missing, ", ")))
		}
	}
	mode(field{"RTCAK", c.RTCAK}, "RTC AK/SK mode",
		[]field{{"RTCSK", c.RTCSK}, {"RTCProjectID", c.RTCProjectID}}, nil)
	mode(field{"IAMUser", c.IAMUser}, "RTC IAM token mode",
		[]field{{"IAMPassword", c.IAMPassword}, {"IAMDomain", c.IAMDomain}, {"IAMProjectID", c.IAMProjectID}, {"IAMEndpoint", c.IAMEndpoint}}, nil)
	mode(field{"MeetingAppID", c.MeetingAppID}, "Meeting App ID mode",
		[]field{{"MeetingAppKey", c.MeetingAppKey}}, []field{{"MeetingUserID", c.MeetingUserID}, {"MeetingCorpID", c.MeetingCorpID}})
	mode(field{"MeetingAccount", c.MeetingAccount}, "Meeting account mode",
		[]field{{"MeetingPassword", c.MeetingPassword}}, nil)
	for _, f := range []field{{"RTCEndpoint", c.RTCEndpoint}, {"IAMEndpoint", c.IAMEndpoint}, {"MeetingEndpoint", c.MeetingEndpoint}} {
		if f.value == "" {
			continue
		}
		if _, err := parseEndpoint(f.value); err != nil {
			problems = append(problems, fmt.Errorf("%s: %w", name(f.name), err))
		}
	}
	if c.Timeout < 0 {
		problems = append(problems, fmt.Errorf("%s must not be negative, got %s", name("Timeout"), c.Timeout))
	}
	return errors.Join(problems...)
}

// validate is Validate as New reports it: Config field names, each line
// prefixed "apiclient: ".
func (c Config) validate() error {
	err := c.Validate(nil)
	if err == nil {
		return nil
	}
	lines := strings.Split(err.Error(), "\n")
	for i, l := range lines {
		lines[i] = "apiclient: " + l
	}
	return errors.New(strings.Join(lines, "\n"))
}

// withDefaults returns c with its zero values replaced by the defaults.
func (c Config) withDefaults() Config {
	if c.RTCEndpoint == "" {
		c.RTCEndpoint = DefaultRTCEndpoint
	}
	if c.MeetingEndpoint == "" {
		c.MeetingEndpoint = DefaultMeetingEndpoint
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Version == "" {
		c.Version = DefaultVersion
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// parseEndpoint parses an absolute http(s) base URL without query or
// fragment; a trailing slash is dropped.
func parseEndpoint(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("invalid URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%q is not an absolute http(s) URL", u.Redacted())
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%q must not have a query or fragment", u.Redacted())
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = strings.TrimSuffix(u.RawPath, "/")
	return u, nil
}

// secrets lists the configured secrets, which never appear in an error.
func (c Config) secrets() []string {
	var s []string
	for _, v := range []string{c.RTCSK, c.IAMPassword, c.MeetingAppKey, c.MeetingPassword} {
		if v != "" {
			s = append(s, v)
		}
	}
	return s
}

// String describes c with every secret replaced by "***", so that logging a
// Config never leaks one.
func (c Config) String() string {
	mask := func(s string) string {
		if s == "" {
			return ""
		}
		return "***"
	}
	return fmt.Sprintf("apiclient.Config{RTCEndpoint:%q RTCAK:%q RTCSK:%q RTCProjectID:%q "+
		"IAMEndpoint:%q IAMUser:%q IAMPassword:%q IAMDomain:%q IAMProjectID:%q "+
		"MeetingEndpoint:%q MeetingAppID:%q MeetingAppKey:%q MeetingUserID:%q MeetingCorpID:%q "+
		"MeetingAccount:%q MeetingPassword:%q Timeout:%s Version:%q}",
		c.RTCEndpoint, c.RTCAK, mask(c.RTCSK), c.RTCProjectID,
		c.IAMEndpoint, c.IAMUser, mask(c.IAMPassword), c.IAMDomain, c.IAMProjectID,
		c.MeetingEndpoint, c.MeetingAppID, mask(c.MeetingAppKey), c.MeetingUserID, c.MeetingCorpID,
		c.MeetingAccount, mask(c.MeetingPassword), c.Timeout, c.Version)
}

// GoString is String, so that %#v does not leak secrets either.
func (c Config) GoString() string { return c.String() }
