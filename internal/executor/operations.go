package executor

import (
	"context"

	"github.com/meetops/meetops/internal/apiclient"
	"github.com/meetops/meetops/internal/tasks"
)

// API is the upstream client the handler calls; *apiclient.Client
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

// operation is how the handler executes one task type: the upstream call
// and the operation's "already done" answer, which counts as success on a
// retry after an attempt that may have reached upstream (and dead-letters
// on a first attempt, where it is a genuine 4xx).
type operation struct {
	call        func(ctx context.Context, api API, op tasks.Op) (answer, error)
	alreadyDone func(e *apiclient.Error) bool
}

// operations holds every task type's operation; TestEveryTaskTypeHasAnOperation
// checks it covers tasks.Types.
var operations = map[string]operation{
	tasks.TypeDismiss: {
		call: func(ctx context.Context, api API, op tasks.Op) (answer, error) {
			o := op.(tasks.Dismiss)
			r, err := api.DismissRoom(ctx, o.AppID, o.RoomID)
			return answer{resp: r}, err
		},
		// The room is gone: 404, decided by the status, not the code.
		alreadyDone: func(e *apiclient.Error) bool { return e.Status == 404 },
	},
	tasks.TypeDisable: {
		call: func(ctx context.Context, api API, op tasks.Op) (answer, error) {
			st, r, err := api.DisableApp(ctx, op.(tasks.Disable).AppID)
			return answer{resp: r, appState: st.State}, err
		},
		// 400 RTC.00001016 AppDeactivation (200 with state DEACTIVATION is
		// plain success).
		alreadyDone: func(e *apiclient.Error) bool { return e.Status == 400 && e.Code == "RTC.00001016" },
	},
	tasks.TypeCancel: {
		call: func(ctx context.Context, api API, op tasks.Op) (answer, error) {
			o := op.(tasks.Cancel)
			r, err := api.CancelConference(ctx, o.ConferenceID, o.UserUUID, o.EndOngoing)
			return answer{resp: r}, err
		},
		// The meeting does not exist, or has ended.
		alreadyDone: func(e *apiclient.Error) bool { return e.Code == "MMC.111070005" || e.Code == "MMC.111072006" },
	},
	tasks.TypeHangUp: {
		call: func(ctx context.Context, api API, op tasks.Op) (answer, error) {
			o := op.(tasks.HangUp)
			r, err := api.HangUpParticipants(ctx, o.ConferenceID, o.ParticipantIDs)
			return answer{resp: r}, err
		},
		// The meeting has ended (its control token or the hang-up itself
		// says so); participants who already left are a plain 200.
		alreadyDone: func(e *apiclient.Error) bool { return e.Code == "MMC.111072006" },
	},
	tasks.TypeReclaim: {
		call: func(ctx context.Context, api API, op tasks.Op) (answer, error) {
			o := op.(tasks.Reclaim)
			r, err := api.ReclaimVMRs(ctx, o.Account, o.AccountType, o.VMRIDs)
			return answer{resp: r}, err
		},
		// The VMR does not exist or is not assigned to the account.
		alreadyDone: func(e *apiclient.Error) bool { return e.Code == "MMC.111070006" },
	},
}
