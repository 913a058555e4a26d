package cloudsim

import (
	"net/http"
	"time"

	"github.com/meetops/meetops/internal/apiclient"
)

// AK lock-out, as the API gateway does it: five consecutive signature
// failures lock the access key for five minutes.
const (
	akMaxFailures = 5
	akLockFor     = 5 * time.Minute
)

type akLock struct {
	failures int
	until    time.Time
}

// authRTC authenticates an RTC request by AK/SK signature (when it carries
// an Authorization header) or IAM token. nil means authenticated.
func (s *Sim) authRTC(r *http.Request, body []byte) *reply {
	if authz := r.Header.Get("Authorization"); authz != "" {
		return s.checkSignature(r, authz, body)
	}
	if tok := r.Header.Get("X-Auth-Token"); tok != "" {
		if !s.validIAM(tok) {
			rep := apiError(http.StatusUnauthorized, codeTokenExpired, "The token must be updated.")
			return &rep
		}
		return nil
	}
	rep := apiError(http.StatusUnauthorized, codeBadSignature, "Incorrect IAM authentication information: Authorization or X-Auth-Token is missing")
	return &rep
}

// checkSignature verifies an SDK-HMAC-SHA256 signature with the
// canonicalisation of package apiclient, and the project the request names.
func (s *Sim) checkSignature(r *http.Request, authz string, body []byte) *reply {
	fail := func(msg string) *reply {
		rep := apiError(http.StatusUnauthorized, codeBadSignature, "Incorrect IAM authentication information: "+msg)
		return &rep
	}
	ak, _, _, err := apiclient.ParseAuthorization(authz)
	if err != nil {
		return fail("malformed Authorization header")
	}
	now := s.now()
	if s.akLocked(ak, now) {
		return fail("the access key is locked after repeated signature failures; try again in 5 minutes")
	}
	if err := (apiclient.Signer{AK: s.creds.AK, SK: s.creds.SK}).Verify(r, body, now); err != nil {
		s.akFailed(ak, now)
		msg := "verify aksk signature fail"
		if d, perr := time.Parse(apiclient.SignDateFormat, r.Header.Get("X-Sdk-Date")); perr == nil && now.Sub(d).Abs() > apiclient.MaxSignSkew {
			msg = "x-sdk-date expired (more than 15 minutes off)"
		}
		return fail(msg)
	}
	s.akSucceeded(ak)
	if r.Header.Get("X-Project-Id") != s.creds.ProjectID {
		rep := rtcError(http.StatusBadRequest, codeRTCUnauthorized, "OperationUnauthorized: X-Project-Id does not match the access key's project")
		return &rep
	}
	return nil
}

func (s *Sim) akLocked(ak string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.locks[ak]
	return l != nil && now.Before(l.until)
}

func (s *Sim) akFailed(ak string, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.locks[ak]
	if l == nil {
		l = &akLock{}
		s.locks[ak] = l
	}
	l.failures++
	if l.failures >= akMaxFailures {
		l.failures = 0
		l.until = now.Add(akLockFor)
	}
}

func (s *Sim) akSucceeded(ak string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.locks, ak)
}
