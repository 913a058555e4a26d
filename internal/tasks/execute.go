package tasks

import (
	"context"
	"errors"

	"github.com/meetops/meetops/internal/apiclient"
)

// API is the upstream client the handlers call; *apiclient.Client
// implements it.
type API interface {
	DismissRoom(ctx context.Context, appID, roomID string) (apiclient.Response, error)
	DisableApp(ctx context.Context, appID string) (apiclient.AppState, apiclient.Response, error)
	CancelConference(ctx context.Context, conferenceID, userUUID string, endOngoing bool) (apiclient.Response, error)
	HangUpParticipants(ctx context.Context, conferenceID string, participantIDs []string) (apiclient.Response, error)
	ReclaimVMRs(ctx context.Context, account string, accountType int, vmrIDs []string) (apiclient.Response, error)
}

// answer is what one upstream call returned on success.
type answer struct {
	resp     apiclient.Response
	appState string // disable only
}

// executor is implemented by every Op: it performs the upstream call and
// knows the operation's "already done" answers (DESIGN.md "Precise rules").
type executor interface {
	execute(ctx context.Context, api API) (answer, error)
	alreadyDone(e *apiclient.Error) bool
	group() string
}

// Rate-limit groups of upstream operations.
const (
	GroupRTCRooms       = "rtc_rooms"
	GroupRTCApps        = "rtc_apps"
	GroupMeetingMgmt    = "meeting_mgmt"
	GroupMeetingControl = "meeting_control"
	GroupMeetingVMR     = "meeting_vmr"
)

// Groups lists the rate-limit groups.
var Groups = []string{GroupRTCRooms, GroupRTCApps, GroupMeetingMgmt, GroupMeetingControl, GroupMeetingVMR}

func (o Dismiss) execute(ctx context.Context, api API) (answer, error) {
	r, err := api.DismissRoom(ctx, o.AppID, o.RoomID)
	return answer{resp: r}, err
}

func (o Disable) execute(ctx context.Context, api API) (answer, error) {
	st, r, err := api.DisableApp(ctx, o.AppID)
	return answer{resp: r, appState: st.State}, err
}

func (o Cancel) execute(ctx context.Context, api API) (answer, error) {
	r, err := api.CancelConference(ctx, o.ConferenceID, o.UserUUID, o.EndOngoing)
	return answer{resp: r}, err
}

func (o HangUp) execute(ctx context.Context, api API) (answer, error) {
	r, err := api.HangUpParticipants(ctx, o.ConferenceID, o.ParticipantIDs)
	return answer{resp: r}, err
}

func (o Reclaim) execute(ctx context.Context, api API) (answer, error) {
	r, err := api.ReclaimVMRs(ctx, o.Account, o.AccountType, o.VMRIDs)
	return answer{resp: r}, err
}

// Dismiss: the room is gone (404, decided by status, not code).
func (Dismiss) alreadyDone(e *apiclient.Error) bool { return e.Status == 404 }

// Disable: 400 RTC.00001016 AppDeactivation. (200 DEACTIVATION is success.)
func (Disable) alreadyDone(e *apiclient.Error) bool {
	return e.Status == 400 && e.Code == "RTC.00001016"
}

// Cancel: the meeting does not exist, or has ended.
func (Cancel) alreadyDone(e *apiclient.Error) bool {
	return e.Code == "MMC.111070005" || e.Code == "MMC.111072006"
}

// HangUp: the meeting has ended (its control token or the hang-up itself).
func (HangUp) alreadyDone(e *apiclient.Error) bool { return e.Code == "MMC.111072006" }

// Reclaim: the VMR does not exist or is not assigned to the account.
func (Reclaim) alreadyDone(e *apiclient.Error) bool { return e.Code == "MMC.111070006" }

func (Dismiss) group() string { return GroupRTCRooms }
func (Disable) group() string { return GroupRTCApps }
func (Cancel) group() string  { return GroupMeetingMgmt }
func (HangUp) group() string  { return GroupMeetingControl }
func (Reclaim) group() string { return GroupMeetingVMR }

// GroupOf returns the rate-limit group of an asynq task type, or "".
func GroupOf(taskType string) string {
	if op, ok := newOp(taskType).(executor); ok {
		return op.group()
	}
	return ""
}

// asAPIError returns err's *apiclient.Error, or nil.
func asAPIError(err error) *apiclient.Error {
	var ae *apiclient.Error
	if errors.As(err, &ae) {
		return ae
	}
	return nil
}
