package cloudsim

import (
	"net/http"
	"net/url"
	"strings"
)

// Operation names, used for faults and statistics.
const (
	OpDismiss      = "dismiss"
	OpDisable      = "disable"
	OpCancel       = "cancel"
	OpHangup       = "hangup"
	OpReclaim      = "reclaim"
	OpIAMToken     = "iam_token"
	OpAppAuth      = "appauth"
	OpAccountAuth  = "account_auth"
	OpConfDetail   = "conf_detail"
	OpControlToken = "control_token"

	// opUnknown counts requests that match no API.
	opUnknown = "unknown"
)

// Ops returns every operation name the simulator serves.
func Ops() []string {
	return []string{OpDismiss, OpDisable, OpCancel, OpHangup, OpReclaim,
		OpIAMToken, OpAppAuth, OpAccountAuth, OpConfDetail, OpControlToken}
}

func isOp(op string) bool {
	for _, o := range Ops() {
		if o == op {
			return true
		}
	}
	return false
}

// family selects the error vocabulary of an answer.
type family int

const (
	familyGateway family = iota
	familyRTC
	familyIAM
	familyMeeting
)

// route is one simulated API: method, path pattern ("*" matches one
// non-empty segment, passed unescaped to handle) and handler.
type route struct {
	op      string
	family  family
	method  string
	pattern []string
	handle  func(s *Sim, r *http.Request, params []string) reply
}

var routes = []route{
	{OpDismiss, familyRTC, http.MethodPost, split("/v2/apps/*/rooms/*/dismiss"), (*Sim).handleDismiss},
	{OpDisable, familyRTC, http.MethodPost, split("/v2/apps/*/disable"), (*Sim).handleDisable},
	{OpIAMToken, familyIAM, http.MethodPost, split("/v3/auth/tokens"), (*Sim).handleIAMToken},
	{OpAppAuth, familyMeeting, http.MethodPost, split("/v2/usg/acs/auth/appauth"), (*Sim).handleAppAuth},
	{OpAccountAuth, familyMeeting, http.MethodPost, split("/v1/usg/acs/auth/account"), (*Sim).handleAccountAuth},
	{OpCancel, familyMeeting, http.MethodDelete, split("/v1/mmc/management/conferences"), (*Sim).handleCancel},
	{OpConfDetail, familyMeeting, http.MethodGet, split("/v1/mmc/management/conferences/confDetail"), (*Sim).handleConfDetail},
	{OpControlToken, familyMeeting, http.MethodGet, split("/v1/mmc/control/conferences/token"), (*Sim).handleControlToken},
	{OpHangup, familyMeeting, http.MethodPost, split("/v1/mmc/control/conferences/participants/delete"), (*Sim).handleHangup},
	{OpReclaim, familyMeeting, http.MethodPost, split("/v1/usg/dcs/corp/vmr/recycle-from-member/*"), (*Sim).handleReclaim},
}

func split(p string) []string { return strings.Split(strings.TrimPrefix(p, "/"), "/") }

// matchRoute finds the route for r. It splits the escaped path, so an ID
// whose "/" or "?" the client escaped stays one segment, and unescapes each
// parameter on its own.
func matchRoute(r *http.Request) (*route, []string) {
	segs := split(r.URL.EscapedPath())
	for i := range routes {
		rt := &routes[i]
		if rt.method != r.Method || len(rt.pattern) != len(segs) {
			continue
		}
		params, ok := matchSegments(rt.pattern, segs)
		if ok {
			return rt, params
		}
	}
	return nil, nil
}

func matchSegments(pattern, segs []string) ([]string, bool) {
	var params []string
	for i, p := range pattern {
		if p != "*" {
			if p != segs[i] {
				return nil, false
			}
			continue
		}
		v, err := url.PathUnescape(segs[i])
		if err != nil || v == "" {
			return nil, false
		}
		params = append(params, v)
	}
	return params, true
}
