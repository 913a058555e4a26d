package cloudsim

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// Error codes. Where the upstream documentation names none, the choice is
// the simulator's own and documented in README.md.
const (
	codeAPINotFound  = "APIG.0101" // no such API (gateway)
	codeBadSignature = "APIG.0301" // AK/SK signature, date or lock-out
	codeTokenExpired = "APIG.0307" // IAM token invalid or expired
	codeThrottled    = "APIG.0308" // throttling (429)
	codeBackendDown  = "APIG.0202" // 502 / 503 from the gateway

	codeRTCUnauthorized = "RTC.00001001"
	codeRTCInvalidValue = "RTC.00001003"
	codeRTCDeactivated  = "RTC.00001016"
	codeRTCInternal     = "RTC.00002001"

	codeIAMBadBody     = "IAM.0011"
	codeIAMBadPassword = "IAM.0004"
	codeIAMInternal    = "IAM.0001"

	codeUSGParam        = "USG.000000001"
	codeUSGTokenInvalid = "USG.000000004"
	codeUSGBadPassword  = "USG.000010006" // account authentication: wrong account or password
	codeUSGBadAppID     = "USG.206010025" // App ID authentication: HMAC, App ID or expiry wrong

	codeMMCParam         = "MMC.111070001"
	codeMMCAuthFailed    = "MMC.111070004"
	codeMMCNoConference  = "MMC.111070005"
	codeMMCNoVMR         = "MMC.111070006"
	codeMMCTokenNull     = "MMC.111070111"
	codeMMCNotStarted    = "MMC.111072005"
	codeMMCEnded         = "MMC.111072006"
	codeMMCInProgress    = "MMC.111072012" // cancel of a meeting in progress without type=1
	codeMMCWrongPassword = "MMC.111072065"
	codeMMCInternal      = "MMC.111000000"
	codeMMCNotPermitted  = "MMC.111070010" // userUUID is not the meeting's owner
)

// statusCanceled is the stats key for a request whose client went away
// during injected latency.
const statusCanceled = "canceled"

// maxBodyBytes bounds a request body.
const maxBodyBytes int64 = 1 << 20

// reply is a handler's answer, written by Sim.write (or discarded when a
// fault replaces it).
type reply struct {
	status int
	body   any // nil: no body
	header map[string]string
	code   string // error code, for the log
}

type errorBody struct {
	ErrorCode string `json:"error_code"`
	ErrorMsg  string `json:"error_msg"`
	RequestID string `json:"request_id,omitempty"`
}

func apiError(status int, code, msg string) reply {
	return reply{status: status, code: code, body: errorBody{ErrorCode: code, ErrorMsg: msg}}
}

func rtcError(status int, code, msg string) reply { return apiError(status, code, msg) }

func mmcError(code, msg string) reply { return apiError(http.StatusBadRequest, code, msg) }

func usgTokenInvalid() reply {
	return apiError(http.StatusUnauthorized, codeUSGTokenInvalid, "token invalid or expired")
}

func jsonReply(status int, body any) reply { return reply{status: status, body: body} }

// textBody is a reply body sent as text/plain, as it is.
type textBody []byte

// echoHeaders are the request headers an echo answer repeats: the ones
// that carry credentials.
var echoHeaders = []string{"Authorization", "X-Auth-Token", "X-Access-Token", "X-Password", "X-Conference-Authorization"}

// echoReply is the 400 of the echo outcomes: the request's query, its
// credential headers and its body (up to 64 KiB), in a JSON error_msg or,
// with asText, as a text/plain body.
func echoReply(r *http.Request, asText bool) reply {
	var b strings.Builder
	fmt.Fprintf(&b, "bad request %s?%s", r.URL.Path, r.URL.RawQuery)
	for _, h := range echoHeaders {
		if v := r.Header.Get(h); v != "" {
			fmt.Fprintf(&b, " %s: %s", h, v)
		}
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	fmt.Fprintf(&b, " body: %s", body)
	if asText {
		return reply{status: http.StatusBadRequest, code: "echo", body: textBody(b.String())}
	}
	return apiError(http.StatusBadRequest, "SIM.ECHO", b.String())
}

// paramError is the 400 for a malformed request to op, in the vocabulary of
// its service.
func paramError(op, msg string) reply {
	switch op {
	case OpDismiss, OpDisable:
		return rtcError(http.StatusBadRequest, "RTC.00001002", "MalformedRequestBody: "+msg)
	case OpIAMToken:
		return apiError(http.StatusBadRequest, codeIAMBadBody, "The request body is invalid: "+msg)
	case OpAppAuth, OpAccountAuth, OpReclaim:
		return apiError(http.StatusBadRequest, codeUSGParam, "Invalid parameter: "+msg)
	}
	return mmcError(codeMMCParam, "Invalid parameter: "+msg)
}

// faultReply is the answer an injected fault outcome gives in place of the
// real one.
func faultReply(rt *route, outcome string, retryAfter int) reply {
	switch outcome {
	case "429":
		rep := apiError(http.StatusTooManyRequests, codeThrottled, "The throttling threshold has been reached")
		if retryAfter > 0 {
			rep.header = map[string]string{"Retry-After": strconv.Itoa(retryAfter)}
		}
		return rep
	case "502":
		return apiError(http.StatusBadGateway, codeBackendDown, "Backend unavailable")
	case "503":
		return apiError(http.StatusServiceUnavailable, codeBackendDown, "Backend unavailable")
	case "401":
		switch {
		case rt.family == familyRTC:
			return apiError(http.StatusUnauthorized, codeTokenExpired, "The token must be updated.")
		case rt.family == familyIAM:
			return apiError(http.StatusUnauthorized, codeIAMBadPassword, "The username or password is wrong.")
		case rt.op == OpControlToken || rt.op == OpHangup:
			return apiError(http.StatusUnauthorized, codeMMCAuthFailed, "Conference authentication failed")
		}
		return usgTokenInvalid()
	}
	// "500"
	switch rt.family {
	case familyRTC:
		return apiError(http.StatusInternalServerError, codeRTCInternal, "InternalError")
	case familyIAM:
		return apiError(http.StatusInternalServerError, codeIAMInternal, "Internal server error")
	}
	return apiError(http.StatusInternalServerError, codeMMCInternal, "Server exception")
}
