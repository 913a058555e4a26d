package cloudsim

import (
	"crypto/subtle"
	"net/http"
	"time"
)

// maxHangUp is the most participants one hang-up request may name.
const maxHangUp = 500

// controlTokenBody is the control token answer (the SDK's
// CreateConfTokenResponse; data is its TokenInfo).
type controlTokenBody struct {
	Data struct {
		Token               string `json:"token"`
		ExpireTime          int64  `json:"expireTime"`          // Unix milliseconds
		ConfTokenExpireTime int64  `json:"confTokenExpireTime"` // lifetime in seconds
		Role                int    `json:"role"`                // 1: host (the chair password logged in)
	} `json:"data"`
}

// handleControlToken: GET /v1/mmc/control/conferences/token?conferenceID=…
// with X-Password (the chair password) and X-Login-Type: 1; only for a
// meeting in progress. A valid control token of the meeting in
// X-Conference-Authorization renews it without the password (the SDK's
// CreateConfTokenRequest: the keep-alive case, where the host password is
// not checked); an invalid or expired one falls back to the password.
func (s *Sim) handleControlToken(r *http.Request, _ []string) reply {
	confID := r.URL.Query().Get("conferenceID")
	if confID == "" {
		return paramError(OpControlToken, "conferenceID is required")
	}
	if r.Header.Get("X-Login-Type") != "1" {
		return paramError(OpControlToken, "X-Login-Type must be 1")
	}
	password, keepAlive := r.Header.Get("X-Password"), r.Header.Get("X-Conference-Authorization")
	if password == "" && keepAlive == "" {
		return paramError(OpControlToken, "X-Password is required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.world.confs[confID]
	renewal := ok && keepAlive != "" && s.validControlLocked(keepAlive, confID)
	switch {
	case renewal:
	case password == "":
		return apiError(http.StatusUnauthorized, codeMMCAuthFailed, "Conference authentication failed: the control token is invalid, expired or for another conference")
	case !ok || subtle.ConstantTimeCompare([]byte(password), []byte(c.ChairPassword)) != 1:
		return mmcError(codeMMCWrongPassword, "The conference does not exist or the password is wrong")
	}
	switch c.State {
	case ConfScheduled:
		return mmcError(codeMMCNotStarted, "The conference has not started")
	case ConfEnded, ConfCancelled:
		return mmcError(codeMMCEnded, "The conference has ended")
	}
	tok, exp := s.issueControlLocked(confID)
	s.stats.login(OpControlToken)
	var out controlTokenBody
	out.Data.Token = tok
	out.Data.ExpireTime = exp.UnixMilli()
	out.Data.ConfTokenExpireTime = int64(s.ttls.Control / time.Second)
	out.Data.Role = 1
	return jsonReply(http.StatusOK, out)
}

type hangUpRequest struct {
	BulkHangUpParticipants []string `json:"bulkHangUpParticipants"`
}

// handleHangup: POST /v1/mmc/control/conferences/participants/delete
// ?conferenceID=… with X-Conference-Authorization and body
// {"bulkHangUpParticipants": […]}. Participants who already left are no
// error.
func (s *Sim) handleHangup(r *http.Request, _ []string) reply {
	confID := r.URL.Query().Get("conferenceID")
	if confID == "" {
		return paramError(OpHangup, "conferenceID is required")
	}
	tok := r.Header.Get("X-Conference-Authorization")
	if tok == "" {
		return apiError(http.StatusUnauthorized, codeMMCTokenNull, "The request token is null")
	}
	s.mu.Lock()
	valid := s.validControlLocked(tok, confID)
	s.mu.Unlock()
	if !valid {
		return apiError(http.StatusUnauthorized, codeMMCAuthFailed, "Conference authentication failed: the control token is invalid, expired or for another conference")
	}

	b, err := readBody(r)
	if err != nil {
		return paramError(OpHangup, err.Error())
	}
	var req hangUpRequest
	if err := decodeStrict(b, &req); err != nil {
		return paramError(OpHangup, err.Error())
	}
	ids := req.BulkHangUpParticipants
	if len(ids) == 0 || len(ids) > maxHangUp {
		return paramError(OpHangup, "bulkHangUpParticipants must list 1 to 500 participants")
	}
	for _, id := range ids {
		if id == "" {
			return paramError(OpHangup, "a participant ID is empty")
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.world.confs[confID]
	switch {
	case !ok:
		return mmcError(codeMMCNoConference, "The conference does not exist")
	case c.State == ConfEnded || c.State == ConfCancelled:
		return mmcError(codeMMCEnded, "The conference has ended")
	}
	for _, id := range ids {
		if _, in := c.participants[id]; in {
			delete(c.participants, id)
			s.stats.effect("hangup:" + confID + "/" + id)
		}
	}
	return reply{status: http.StatusOK}
}
