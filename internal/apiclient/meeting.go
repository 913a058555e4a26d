package apiclient

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
)

// Meeting error codes that a fresh token can cure.
const (
	codeAccessTokenInvalid  = "USG.000000004" // access token invalid or expired
	codeControlTokenInvalid = "MMC.111070004" // meeting authentication failed (control token)
)

// CancelConference cancels a scheduled meeting:
// DELETE /v1/mmc/management/conferences?conferenceID=…[&userUUID=…][&type=1]
// (200). endOngoing (type=1) also ends a meeting in progress.
func (c *Client) CancelConference(ctx context.Context, conferenceID, userUUID string, endOngoing bool) (Response, error) {
	const op = "cancel"
	if err := checkID(op, "conferenceID", conferenceID); err != nil {
		return Response{}, err
	}
	q := url.Values{"conferenceID": {conferenceID}}
	if userUUID != "" {
		q.Set("userUUID", userUUID)
	}
	if endOngoing {
		q.Set("type", "1")
	}
	rep, err := c.meetingDo(ctx, request{op: op, method: http.MethodDelete,
		url: endpointURL(c.meetingBase, q, "v1", "mmc", "management", "conferences")})
	return rep.Response, err
}

// HangUpParticipants disconnects participants from a meeting in progress:
// POST /v1/mmc/control/conferences/participants/delete?conferenceID=… with
// body {"bulkHangUpParticipants":[…]} (200). It authenticates with the
// conference's control token (see the package documentation); a 401 or
// MMC.111070004 drops that token and retries once with a new one.
func (c *Client) HangUpParticipants(ctx context.Context, conferenceID string, participantIDs []string) (Response, error) {
	const op = "hangup"
	if err := checkID(op, "conferenceID", conferenceID); err != nil {
		return Response{}, err
	}
	if err := checkList(op, "participantIDs", participantIDs); err != nil {
		return Response{}, err
	}
	if err := c.meetingConfigured(op); err != nil {
		return Response{}, err
	}
	body, err := marshalJSON(struct {
		IDs []string `json:"bulkHangUpParticipants"`
	}{participantIDs})
	if err != nil {
		return Response{}, fmt.Errorf("apiclient: %s: %w", op, err)
	}
	rq := request{op: op, method: http.MethodPost, body: body,
		url: endpointURL(c.meetingBase, url.Values{"conferenceID": {conferenceID}}, "v1", "mmc", "control", "conferences", "participants", "delete")}
	for retried := false; ; retried = true {
		tok, err := c.controlToken(ctx, conferenceID)
		if err != nil {
			return Response{}, err
		}
		rq.header = http.Header{"X-Conference-Authorization": {tok}}
		rep, err := c.do(ctx, rq)
		if !retried && isAuthError(err, codeControlTokenInvalid) {
			c.tokens.invalidate(controlKey(conferenceID), tok)
			continue
		}
		return rep.Response, err
	}
}

// ReclaimVMRs reclaims cloud meeting rooms from a member:
// POST /v1/usg/dcs/corp/vmr/recycle-from-member/{account}?accountType=N
// with the bare JSON array of VMR IDs as body (200). accountType is 0 (a
// Huawei Cloud Meeting account) or 1 (a third-party user ID).
func (c *Client) ReclaimVMRs(ctx context.Context, account string, accountType int, vmrIDs []string) (Response, error) {
	const op = "reclaim"
	if err := checkID(op, "account", account); err != nil {
		return Response{}, err
	}
	if accountType != 0 && accountType != 1 {
		return Response{}, fmt.Errorf("apiclient: %s: %w: accountType must be 0 or 1, got %d", op, ErrInvalidArgument, accountType)
	}
	if err := checkList(op, "vmrIDs", vmrIDs); err != nil {
		return Response{}, err
	}
	body, err := marshalJSON(vmrIDs)
	if err != nil {
		return Response{}, fmt.Errorf("apiclient: %s: %w", op, err)
	}
	q := url.Values{"accountType": {strconv.Itoa(accountType)}}
	rep, err := c.meetingDo(ctx, request{op: op, method: http.MethodPost, body: body,
		url: endpointURL(c.meetingBase, q, "v1", "usg", "dcs", "corp", "vmr", "recycle-from-member", account)})
	return rep.Response, err
}

// meetingDo sends rq with the shared access token. A 401 or USG.000000004
// drops the token and retries once with a new one; a second failure is
// returned as is.
func (c *Client) meetingDo(ctx context.Context, rq request) (reply, error) {
	if err := c.meetingConfigured(rq.op); err != nil {
		return reply{}, err
	}
	for retried := false; ; retried = true {
		tok, err := c.tokens.get(ctx, meetingKey, "meeting_auth", c.fetchAccessToken)
		if err != nil {
			return reply{}, err
		}
		rq.header = http.Header{"X-Access-Token": {tok}}
		rep, err := c.do(ctx, rq)
		if !retried && isAuthError(err, codeAccessTokenInvalid) {
			c.tokens.invalidate(meetingKey, tok)
			continue
		}
		return rep, err
	}
}

func (c *Client) meetingConfigured(op string) error {
	if c.cfg.meetingMode() == meetingNone {
		return fmt.Errorf("apiclient: %s: Meeting API %w (set MeetingAppID/MeetingAppKey or MeetingAccount/MeetingPassword)", op, ErrNotConfigured)
	}
	return nil
}

// checkList rejects an empty list or an empty element.
func checkList(op, name string, ids []string) error {
	if len(ids) == 0 {
		return fmt.Errorf("apiclient: %s: %w: %s is empty", op, ErrInvalidArgument, name)
	}
	for i, id := range ids {
		if id == "" {
			return fmt.Errorf("apiclient: %s: %w: %s[%d] is empty", op, ErrInvalidArgument, name, i)
		}
	}
	return nil
}
