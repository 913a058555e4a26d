package cloudsim

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Nonce bounds of App ID authentication.
const (
	minNonce = 32
	maxNonce = 64
)

type appAuthRequest struct {
	AppID      string `json:"appId"`
	ClientType *int   `json:"clientType"`
	UserID     string `json:"userId"`
	ExpireTime *int64 `json:"expireTime"`
	Nonce      string `json:"nonce"`
	CorpID     string `json:"corpId"`
}

type accountAuthRequest struct {
	Account    string `json:"account"`
	ClientType *int   `json:"clientType"`
}

type accessTokenBody struct {
	AccessToken  string `json:"accessToken"`
	ValidPeriod  int64  `json:"validPeriod"` // seconds
	ExpireTime   int64  `json:"expireTime"`  // Unix seconds
	RefreshToken string `json:"refreshToken"`
	TokenType    int    `json:"tokenType"`
	ClientType   int    `json:"clientType"`
}

// handleAppAuth: POST /v2/usg/acs/auth/appauth. Verifies
// "Authorization: HMAC-SHA256 signature=<hex>,access=<base64(appId)>" over
// appId:userId:expireTime:nonce (appId:corpId:userId:expireTime:nonce with a
// corpId) and answers an access token.
func (s *Sim) handleAppAuth(r *http.Request, _ []string) reply {
	b, err := readBody(r)
	if err != nil {
		return paramError(OpAppAuth, err.Error())
	}
	var req appAuthRequest
	if err := decodeLenient(b, &req); err != nil {
		return paramError(OpAppAuth, err.Error())
	}
	switch {
	case req.AppID == "" || req.ClientType == nil || req.ExpireTime == nil || req.Nonce == "":
		return paramError(OpAppAuth, "appId, clientType, expireTime and nonce are required")
	case len(req.Nonce) < minNonce || len(req.Nonce) > maxNonce:
		return paramError(OpAppAuth, "nonce must be 32 to 64 characters")
	}
	badAuth := func(msg string) reply {
		return apiError(http.StatusUnauthorized, codeUSGBadAppID, "App ID authentication failed: "+msg)
	}
	sig, access, ok := parseAppAuthHeader(r.Header.Get("Authorization"))
	if !ok {
		return badAuth("Authorization must be HMAC-SHA256 signature=<hex>,access=<base64 appId>")
	}
	c := s.creds
	if c.AppID == "" || req.AppID != c.AppID || access != base64.StdEncoding.EncodeToString([]byte(req.AppID)) {
		return badAuth("unknown appId or access does not match it")
	}
	if c.CorpID != "" && req.CorpID != "" && req.CorpID != c.CorpID {
		return badAuth("unknown corpId")
	}
	now := s.now()
	if *req.ExpireTime != 0 && *req.ExpireTime < now.Unix() {
		return badAuth("expireTime has passed")
	}
	data := appAuthData(req.AppID, req.CorpID, req.UserID, *req.ExpireTime, req.Nonce)
	if !hmacMatches(c.AppKey, data, sig) {
		return badAuth("signature mismatch")
	}
	return s.loginReply(OpAppAuth, "app:"+req.AppID+":"+req.CorpID+":"+req.UserID, *req.ClientType)
}

// handleAccountAuth: POST /v1/usg/acs/auth/account with Basic credentials.
func (s *Sim) handleAccountAuth(r *http.Request, _ []string) reply {
	b, err := readBody(r)
	if err != nil {
		return paramError(OpAccountAuth, err.Error())
	}
	var req accountAuthRequest
	if err := decodeLenient(b, &req); err != nil {
		return paramError(OpAccountAuth, err.Error())
	}
	if req.Account == "" || req.ClientType == nil {
		return paramError(OpAccountAuth, "account and clientType are required")
	}
	user, pass, ok := r.BasicAuth()
	c := s.creds
	if !ok || c.Account == "" || user != req.Account ||
		subtle.ConstantTimeCompare([]byte(user), []byte(c.Account)) != 1 ||
		subtle.ConstantTimeCompare([]byte(pass), []byte(c.Password)) != 1 {
		return apiError(http.StatusUnauthorized, codeUSGBadPassword, "The account or password is incorrect")
	}
	return s.loginReply(OpAccountAuth, "account:"+user, *req.ClientType)
}

// loginReply issues an access token for user and counts the login.
func (s *Sim) loginReply(op, user string, clientType int) reply {
	s.mu.Lock()
	tok, exp := s.issueAccessLocked(user)
	refresh := s.randHexLocked(18)
	ttl := s.ttls.Access
	s.stats.login(op)
	s.mu.Unlock()
	return jsonReply(http.StatusOK, accessTokenBody{
		AccessToken:  tok,
		ValidPeriod:  int64(ttl / time.Second),
		ExpireTime:   exp.Unix(),
		RefreshToken: "rfs" + refresh,
		ClientType:   clientType,
	})
}

// parseAppAuthHeader splits "HMAC-SHA256 signature=<hex>,access=<base64>".
// As upstream documents, there is no space after the comma.
func parseAppAuthHeader(h string) (sig, access string, ok bool) {
	rest, ok := strings.CutPrefix(h, "HMAC-SHA256 ")
	if !ok {
		return "", "", false
	}
	sigPart, accessPart, ok := strings.Cut(rest, ",")
	if !ok {
		return "", "", false
	}
	sig, ok1 := strings.CutPrefix(sigPart, "signature=")
	access, ok2 := strings.CutPrefix(accessPart, "access=")
	if !ok1 || !ok2 || sig == "" || access == "" {
		return "", "", false
	}
	return sig, access, true
}

// appAuthData is the signed string of App ID authentication.
func appAuthData(appID, corpID, userID string, expireTime int64, nonce string) string {
	exp := strconv.FormatInt(expireTime, 10)
	if corpID != "" {
		return appID + ":" + corpID + ":" + userID + ":" + exp + ":" + nonce
	}
	return appID + ":" + userID + ":" + exp + ":" + nonce
}

// hmacMatches reports whether sigHex is hex(HMAC-SHA256(key, data)).
func hmacMatches(key, data, sigHex string) bool {
	got, err := hex.DecodeString(sigHex)
	if err != nil {
		return false
	}
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(data))
	return hmac.Equal(m.Sum(nil), got)
}

// authAccess checks a Meeting API request's X-Access-Token. nil means
// authenticated.
func (s *Sim) authAccess(r *http.Request) *reply {
	tok := r.Header.Get("X-Access-Token")
	if tok == "" || !s.validAccess(tok) {
		rep := usgTokenInvalid()
		return &rep
	}
	return nil
}
