package apiclient

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

const (
	// meetingClientType is clientType 72 (API caller) in auth requests.
	meetingClientType = 72
	// meetingKey is the token cache key of the access token, and the
	// credential its logins are tracked under.
	meetingKey = CredentialMeeting
	// accessTokenMaxAge: the official SDK re-authenticates after 10 h.
	accessTokenMaxAge = 10 * time.Hour
	// accessTokenLifetime is assumed when the answer states none (the
	// documented range is 12–24 h).
	accessTokenLifetime = 12 * time.Hour
	// appAuthValidity is how long an App ID authentication request stays
	// valid (its expireTime).
	appAuthValidity = time.Hour
	// controlTokenLifetime caps a control token's life.
	controlTokenLifetime = 30 * time.Minute
)

// AppAuthData is the string App ID authentication signs:
// appId:userId:expireTime:nonce, which is appId::expireTime:nonce without a
// user, or appId:corpId:userId:expireTime:nonce with a corpId (SP mode).
func AppAuthData(appID, corpID, userID string, expireTime int64, nonce string) string {
	exp := strconv.FormatInt(expireTime, 10)
	if corpID != "" {
		return appID + ":" + corpID + ":" + userID + ":" + exp + ":" + nonce
	}
	return appID + ":" + userID + ":" + exp + ":" + nonce
}

// AppAuthSignature is hex(HMAC-SHA256(key = appKey, data)).
func AppAuthSignature(appKey, data string) string {
	m := hmac.New(sha256.New, []byte(appKey))
	m.Write([]byte(data))
	return hex.EncodeToString(m.Sum(nil))
}

// appAuthBody is the App ID authentication request body.
type appAuthBody struct {
	AppID      string `json:"appId"`
	ClientType int    `json:"clientType"`
	UserID     string `json:"userId,omitempty"`
	ExpireTime int64  `json:"expireTime"`
	Nonce      string `json:"nonce"`
	CorpID     string `json:"corpId,omitempty"`
}

// fetchAccessToken authenticates with the App ID or the account and returns
// the access token.
func (c *Client) fetchAccessToken(ctx context.Context) (token, error) {
	const op = "meeting_auth"
	rq := request{op: op, method: http.MethodPost, contentType: contentTypeMeetingAuth}
	var body any
	if c.cfg.meetingMode() == meetingAppID {
		ab := appAuthBody{
			AppID:      c.cfg.MeetingAppID,
			ClientType: meetingClientType,
			UserID:     c.cfg.MeetingUserID,
			ExpireTime: c.cfg.Now().Add(appAuthValidity).Unix(),
			Nonce:      rand.Text() + rand.Text(), // 52 characters
			CorpID:     c.cfg.MeetingCorpID,
		}
		sig := AppAuthSignature(c.secret(meetingKey, "MeetingAppKey"), AppAuthData(ab.AppID, ab.CorpID, ab.UserID, ab.ExpireTime, ab.Nonce))
		rq.url = endpointURL(c.meetingBase, nil, "v2", "usg", "acs", "auth", "appauth")
		rq.header = http.Header{"Authorization": {"HMAC-SHA256 signature=" + sig + ",access=" + base64.StdEncoding.EncodeToString([]byte(ab.AppID))}}
		body = ab
	} else {
		cred := base64.StdEncoding.EncodeToString([]byte(c.cfg.MeetingAccount + ":" + c.secret(meetingKey, "MeetingPassword")))
		rq.url = endpointURL(c.meetingBase, nil, "v1", "usg", "acs", "auth", "account")
		rq.header = http.Header{"Authorization": {"Basic " + cred}}
		body = struct {
			Account    string `json:"account"`
			ClientType int    `json:"clientType"`
		}{c.cfg.MeetingAccount, meetingClientType}
	}
	var err error
	if rq.body, err = marshalJSON(body); err != nil {
		return token{}, fmt.Errorf("apiclient: %s: %w", op, err)
	}
	rep, err := c.do(ctx, rq)
	if err != nil {
		return token{}, err
	}
	var answer struct {
		AccessToken string `json:"accessToken"`
		ValidPeriod int64  `json:"validPeriod"` // seconds
		ExpireTime  int64  `json:"expireTime"`  // unix seconds
	}
	if err := json.Unmarshal(rep.body, &answer); err != nil || answer.AccessToken == "" {
		return token{}, fmt.Errorf("apiclient: %s: %w: no accessToken", op, ErrUnexpectedAnswer)
	}
	now := c.cfg.Now()
	expires := now.Add(accessTokenLifetime)
	if answer.ValidPeriod > 0 {
		expires = now.Add(time.Duration(answer.ValidPeriod) * time.Second)
	}
	if t := time.Unix(answer.ExpireTime, 0); answer.ExpireTime > 0 && t.After(now) && t.Before(expires) {
		expires = t
	}
	return newToken(answer.AccessToken, now, expires, accessTokenMaxAge), nil
}

// controlKey is the token cache key of a conference's control token, and
// the credential its logins are tracked under.
func controlKey(conferenceID string) string { return credentialControlKeyPrefix + conferenceID }

// controlToken returns the conference's cached control token or obtains
// one; concurrent callers for one conference share one fetch.
func (c *Client) controlToken(ctx context.Context, conferenceID string) (string, error) {
	return c.tokens.get(ctx, controlKey(conferenceID), "control_token", func(ctx context.Context) (token, error) {
		return c.fetchControlToken(ctx, conferenceID)
	})
}

// fetchControlToken reads the chair password from the conference detail and
// exchanges it for a control token, valid for the shorter of its expireTime
// and 30 minutes.
func (c *Client) fetchControlToken(ctx context.Context, conferenceID string) (token, error) {
	const op = "control_token"
	password, err := c.chairPassword(ctx, conferenceID)
	if err != nil {
		return token{}, err
	}
	rep, err := c.do(ctx, request{op: op, method: http.MethodGet,
		url:    endpointURL(c.meetingBase, url.Values{"conferenceID": {conferenceID}}, "v1", "mmc", "control", "conferences", "token"),
		header: http.Header{"X-Password": {password}, "X-Login-Type": {"1"}}})
	if err != nil {
		return token{}, err
	}
	var answer struct {
		Data struct {
			Token      string `json:"token"`
			ExpireTime int64  `json:"expireTime"` // unix milliseconds
		} `json:"data"`
	}
	if err := json.Unmarshal(rep.body, &answer); err != nil || answer.Data.Token == "" {
		return token{}, fmt.Errorf("apiclient: %s: %w: no data.token", op, ErrUnexpectedAnswer)
	}
	now := c.cfg.Now()
	expires := now.Add(controlTokenLifetime)
	if t := time.UnixMilli(answer.Data.ExpireTime); answer.Data.ExpireTime > 0 && t.Before(expires) {
		expires = t
	}
	return newToken(answer.Data.Token, now, expires, 0), nil
}

// chairPassword reads the host (chair) password from the conference detail:
// GET /v1/mmc/management/conferences/confDetail?conferenceID=….
func (c *Client) chairPassword(ctx context.Context, conferenceID string) (string, error) {
	const op = "conf_detail"
	rep, err := c.meetingDo(ctx, request{op: op, method: http.MethodGet,
		url: endpointURL(c.meetingBase, url.Values{"conferenceID": {conferenceID}}, "v1", "mmc", "management", "conferences", "confDetail")})
	if err != nil {
		return "", err
	}
	var answer struct {
		ConferenceData struct {
			PasswordEntry []struct {
				ConferenceRole string `json:"conferenceRole"`
				Password       string `json:"password"`
			} `json:"passwordEntry"`
		} `json:"conferenceData"`
	}
	if json.Unmarshal(rep.body, &answer) != nil { // the body holds passwords: do not quote it
		return "", fmt.Errorf("apiclient: %s: %w: the conference detail is not JSON", op, ErrUnexpectedAnswer)
	}
	for _, p := range answer.ConferenceData.PasswordEntry {
		if p.ConferenceRole == "chair" && p.Password != "" {
			return p.Password, nil
		}
	}
	return "", fmt.Errorf("apiclient: %s: %w: no chair password in the conference detail", op, ErrUnexpectedAnswer)
}
