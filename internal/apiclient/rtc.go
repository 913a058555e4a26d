package apiclient

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// RTC error code that a fresh IAM token can cure (HTTP 400).
const codeRTCUnauthorized = "RTC.00001001"

// iamKey is the token cache key of the IAM token, and the credential its
// logins are tracked under.
const iamKey = CredentialIAM

// iamTokenLifetime is assumed when IAM's answer has no usable expires_at.
const iamTokenLifetime = 24 * time.Hour

// AppState is an RTC application's state as DisableApp reports it.
type AppState struct {
	AppID      string // application ID
	State      string // ACTIVATION, DEACTIVATION, ARREARS or DELETED
	UpdateTime string // e.g. 2006-01-02T15:04:05.075Z (UTC), as sent
}

// DismissRoom dismisses an RTC room and removes all its users:
// POST /v2/apps/{app_id}/rooms/{room_id}/dismiss (202).
func (c *Client) DismissRoom(ctx context.Context, appID, roomID string) (Response, error) {
	const op = "dismiss"
	if err := checkID(op, "appID", appID); err != nil {
		return Response{}, err
	}
	if err := checkID(op, "roomID", roomID); err != nil {
		return Response{}, err
	}
	rep, err := c.rtcDo(ctx, op, endpointURL(c.rtcBase, nil, "v2", "apps", appID, "rooms", roomID, "dismiss"))
	return rep.Response, err
}

// DisableApp disables an RTC application: POST /v2/apps/{app_id}/disable
// (200 with the new state). A 2xx answer whose body cannot be parsed returns
// the Response and an error wrapping ErrUnexpectedAnswer.
func (c *Client) DisableApp(ctx context.Context, appID string) (AppState, Response, error) {
	const op = "disable"
	if err := checkID(op, "appID", appID); err != nil {
		return AppState{}, Response{}, err
	}
	rep, err := c.rtcDo(ctx, op, endpointURL(c.rtcBase, nil, "v2", "apps", appID, "disable"))
	if err != nil {
		return AppState{}, rep.Response, err
	}
	var body struct {
		AppID string `json:"app_id"`
		State struct {
			State      string `json:"state"`
			UpdateTime string `json:"update_time"`
		} `json:"state"`
	}
	if err := json.Unmarshal(rep.body, &body); err != nil {
		return AppState{}, rep.Response, fmt.Errorf("apiclient: %s: %w: %w", op, ErrUnexpectedAnswer, err)
	}
	return AppState{AppID: body.AppID, State: body.State.State, UpdateTime: body.State.UpdateTime}, rep.Response, nil
}

// rtcDo sends a body-less RTC POST with the configured authentication (and,
// as every request, the Content-Type the RTC reference marks mandatory). In
// IAM token mode a 401 or RTC.00001001 drops the token and retries once with
// a new one. In AK/SK mode nothing is retried: a fresh signature cannot cure
// a rejected one, and repeated failures lock the key (APIG.0301).
func (c *Client) rtcDo(ctx context.Context, op string, u *url.URL) (reply, error) {
	rq := request{op: op, method: http.MethodPost, url: u}
	switch c.cfg.rtcMode() {
	case rtcAKSK:
		rq.header = http.Header{"X-Project-Id": {c.cfg.RTCProjectID}}
		rq.sign = func(r *http.Request, body []byte) error { return c.signer.Sign(r, body, c.cfg.Now()) }
		return c.do(ctx, rq)
	case rtcIAM:
		for retried := false; ; retried = true {
			tok, err := c.tokens.get(ctx, iamKey, "iam_token", c.fetchIAMToken)
			if err != nil {
				return reply{}, err
			}
			rq.header = http.Header{"X-Auth-Token": {tok}}
			rep, err := c.do(ctx, rq)
			if !retried && isAuthError(err, codeRTCUnauthorized) {
				c.tokens.invalidate(iamKey, tok)
				continue
			}
			return rep, err
		}
	}
	return reply{}, fmt.Errorf("apiclient: %s: RTC API %w (set RTCAK/RTCSK/RTCProjectID or the IAM* fields)", op, ErrNotConfigured)
}

// fetchIAMToken obtains an IAM user token: POST /v3/auth/tokens.
func (c *Client) fetchIAMToken(ctx context.Context) (token, error) {
	const op = "iam_token"
	var body struct {
		Auth struct {
			Identity struct {
				Methods  []string `json:"methods"`
				Password struct {
					User struct {
						Name     string `json:"name"`
						Password string `json:"password"`
						Domain   struct {
							Name string `json:"name"`
						} `json:"domain"`
					} `json:"user"`
				} `json:"password"`
			} `json:"identity"`
			Scope struct {
				Project struct {
					ID string `json:"id"`
				} `json:"project"`
			} `json:"scope"`
		} `json:"auth"`
	}
	body.Auth.Identity.Methods = []string{"password"}
	body.Auth.Identity.Password.User.Name = c.cfg.IAMUser
	body.Auth.Identity.Password.User.Password = c.secret(iamKey, "IAMPassword")
	body.Auth.Identity.Password.User.Domain.Name = c.cfg.IAMDomain
	body.Auth.Scope.Project.ID = c.cfg.IAMProjectID
	b, err := marshalJSON(body)
	if err != nil {
		return token{}, fmt.Errorf("apiclient: %s: %w", op, err)
	}
	rep, err := c.do(ctx, request{op: op, method: http.MethodPost, url: endpointURL(c.iamBase, nil, "v3", "auth", "tokens"),
		body: b, contentType: contentTypeIAM})
	if err != nil {
		return token{}, err
	}
	tok := rep.header.Get("X-Subject-Token")
	if tok == "" {
		return token{}, fmt.Errorf("apiclient: %s: %w: no X-Subject-Token header", op, ErrUnexpectedAnswer)
	}
	now := c.cfg.Now()
	expires := now.Add(iamTokenLifetime)
	var answer struct {
		Token struct {
			ExpiresAt string `json:"expires_at"`
		} `json:"token"`
	}
	if json.Unmarshal(rep.body, &answer) == nil {
		if t, err := time.Parse(time.RFC3339Nano, answer.Token.ExpiresAt); err == nil {
			expires = t
		}
	}
	return newToken(tok, now, expires, 0), nil
}
