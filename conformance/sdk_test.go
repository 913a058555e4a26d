package conformance

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/huaweicloud/huaweicloud-sdk-go-v3/core/sdkerr"
	rtcmodel "github.com/huaweicloud/huaweicloud-sdk-go-v3/services/cloudrtc/v2/model"
	mtgmodel "github.com/huaweicloud/huaweicloud-sdk-go-v3/services/meeting/v1/model"
	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/apiclient"
	"github.com/meetops/meetops/internal/cloudsim"
)

// requireServiceError asserts that err is the SDK's ServiceResponseError
// for the answer the simulator logged last for op: the status, the
// error_code and the request ID (from the X-Request-Id header) as the SDK
// parsed them.
func requireServiceError(t *testing.T, e *env, err error, op string, status int, code string) {
	t.Helper()
	var se *sdkerr.ServiceResponseError
	require.True(t, errors.As(err, &se), "want a *sdkerr.ServiceResponseError, got %T: %v", err, err)
	entry := e.lastLog(t, op)
	require.Equal(t, status, se.StatusCode, "%v", se)
	require.Equal(t, code, se.ErrorCode, "%v", se)
	require.NotEmpty(t, se.ErrorMessage, "%v", se)
	require.NotEmpty(t, entry.RequestID)
	require.Equal(t, entry.RequestID, se.RequestId, "%v", se)
	require.Equal(t, status, entry.Status)
	require.Equal(t, code, entry.ErrorCode)
}

// TestSDKRTCClient runs the SDK's CloudRTCClient, signing with AK/SK, against
// cloudsim: RemoveRoom (dismiss) and StopApp (disable).
func TestSDKRTCClient(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.sdkRTC(t)

	t.Run("RemoveRoom", func(t *testing.T) {
		resp, err := c.RemoveRoom(&rtcmodel.RemoveRoomRequest{AppId: cloudsim.DemoApp, RoomId: "room-001"})
		require.NoError(t, err)
		require.Equal(t, http.StatusAccepted, resp.HttpStatusCode)
		require.NotNil(t, resp.XRequestId)
		require.Equal(t, e.lastLog(t, cloudsim.OpDismiss).RequestID, *resp.XRequestId)
		require.False(t, e.sim.RoomExists(cloudsim.DemoApp, "room-001"))

		// The SDK signs without host; that is what cloudsim has to accept.
		reqs := e.rec.take()
		require.Len(t, reqs, 1)
		_, signed, _, err := apiclient.ParseAuthorization(reqs[0].Header.Get("Authorization"))
		require.NoError(t, err)
		require.Equal(t, []string{"user-agent", "x-project-id", "x-sdk-date"}, signed)

		_, err = c.RemoveRoom(&rtcmodel.RemoveRoomRequest{AppId: cloudsim.DemoApp, RoomId: cloudsim.DemoRoomMissing})
		requireServiceError(t, e, err, cloudsim.OpDismiss, http.StatusNotFound, "RTC.00001003")
	})

	t.Run("StopApp", func(t *testing.T) {
		resp, err := c.StopApp(&rtcmodel.StopAppRequest{AppId: cloudsim.DemoApp2})
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.HttpStatusCode)
		require.Equal(t, cloudsim.DemoApp2, *resp.AppId)
		require.Equal(t, rtcmodel.GetAppStateStateEnum().DEACTIVATION, *resp.State.State)
		_, err = time.Parse("2006-01-02T15:04:05.000Z", *resp.State.UpdateTime)
		require.NoError(t, err, "update_time %q", *resp.State.UpdateTime)
		require.Equal(t, e.lastLog(t, cloudsim.OpDisable).RequestID, *resp.XRequestId)

		_, err = c.StopApp(&rtcmodel.StopAppRequest{AppId: cloudsim.DemoAppDisabled})
		requireServiceError(t, e, err, cloudsim.OpDisable, http.StatusBadRequest, "RTC.00001016")
		_, err = c.StopApp(&rtcmodel.StopAppRequest{AppId: cloudsim.DemoAppMissing})
		requireServiceError(t, e, err, cloudsim.OpDisable, http.StatusNotFound, "RTC.00001003")
	})

	st := e.sim.Stats()
	require.Equal(t, 1, st.Effect("dismiss:demo-app/room-001"))
	require.Equal(t, 1, st.Effect("disable:demo-app-2"))
}

// TestSDKMeetingClient runs the SDK's MeetingClient, with its account
// credentials, against cloudsim: ShowMeetingDetail (conference detail),
// CreateConfToken (control token), HangUp, CancelMeeting and
// DisassociateVmr (reclaim), each once successfully and once with a 4xx.
func TestSDKMeetingClient(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.sdkMeeting(t)
	i32 := func(v int32) *int32 { return &v }

	t.Run("ShowMeetingDetail", func(t *testing.T) {
		resp, err := c.ShowMeetingDetail(&mtgmodel.ShowMeetingDetailRequest{ConferenceID: cloudsim.DemoConfOngoing})
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.HttpStatusCode)
		d := resp.ConferenceData
		require.Equal(t, cloudsim.DemoConfOngoing, *d.ConferenceID)
		require.Equal(t, "Created", *d.ConferenceState)
		require.NotNil(t, d.PasswordEntry)
		require.Len(t, *d.PasswordEntry, 2)
		chair := (*d.PasswordEntry)[0]
		require.Equal(t, "chair", *chair.ConferenceRole)
		require.Equal(t, cloudsim.DemoChairPassword, *chair.Password)
		require.Equal(t, int32(10), *resp.Data.Count)
		require.Len(t, *resp.Data.Data, 10)
		p := (*resp.Data.Data)[0]
		require.Equal(t, "p-001", *p.ParticipantID)
		require.Equal(t, int32(0), *p.Role) // an integer, as ParticipantInfo declares it
		require.Equal(t, "MEETTING", *p.State)

		// The paging parameters the SDK can send are honoured.
		resp, err = c.ShowMeetingDetail(&mtgmodel.ShowMeetingDetailRequest{ConferenceID: cloudsim.DemoConfOngoing, Offset: i32(8), Limit: i32(5)})
		require.NoError(t, err)
		require.Equal(t, int32(8), *resp.Data.Offset)
		require.Equal(t, int32(5), *resp.Data.Limit)
		require.Len(t, *resp.Data.Data, 2)
		require.Equal(t, "p-009", *(*resp.Data.Data)[0].ParticipantID)

		_, err = c.ShowMeetingDetail(&mtgmodel.ShowMeetingDetailRequest{ConferenceID: cloudsim.DemoConfMissing})
		requireServiceError(t, e, err, cloudsim.OpConfDetail, http.StatusBadRequest, "MMC.111070005")
	})

	var controlToken string
	t.Run("CreateConfToken", func(t *testing.T) {
		resp, err := c.CreateConfToken(&mtgmodel.CreateConfTokenRequest{ConferenceID: cloudsim.DemoConfOngoing,
			XPassword: cloudsim.DemoChairPassword, XLoginType: 1})
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.HttpStatusCode)
		require.NotEmpty(t, *resp.Data.Token)
		require.Equal(t, int32(1800), *resp.Data.ConfTokenExpireTime)
		require.Equal(t, int32(1), *resp.Data.Role)
		require.InDelta(t, time.Now().Add(30*time.Minute).UnixMilli(), *resp.Data.ExpireTime, float64(time.Minute.Milliseconds()))
		controlToken = *resp.Data.Token

		// Keep-alive: the token renews itself, the password unchecked (the
		// SDK sends X-Password empty: it is not a pointer field).
		resp, err = c.CreateConfToken(&mtgmodel.CreateConfTokenRequest{ConferenceID: cloudsim.DemoConfOngoing,
			XConferenceAuthorization: &controlToken, XLoginType: 1})
		require.NoError(t, err)
		require.NotEqual(t, controlToken, *resp.Data.Token)
		controlToken = *resp.Data.Token

		_, err = c.CreateConfToken(&mtgmodel.CreateConfTokenRequest{ConferenceID: cloudsim.DemoConfOngoing,
			XPassword: cloudsim.DemoGuestPassword, XLoginType: 1})
		requireServiceError(t, e, err, cloudsim.OpControlToken, http.StatusBadRequest, "MMC.111072065")
	})

	t.Run("HangUp", func(t *testing.T) {
		require.NotEmpty(t, controlToken, "CreateConfToken failed")
		resp, err := c.HangUp(&mtgmodel.HangUpRequest{ConferenceID: cloudsim.DemoConfOngoing, XConferenceAuthorization: controlToken,
			Body: &mtgmodel.RestBulkHangUpReqBody{BulkHangUpParticipants: []string{"p-001", "p-002"}}})
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.HttpStatusCode)

		_, err = c.HangUp(&mtgmodel.HangUpRequest{ConferenceID: cloudsim.DemoConfOngoing, XConferenceAuthorization: "not-a-control-token",
			Body: &mtgmodel.RestBulkHangUpReqBody{BulkHangUpParticipants: []string{"p-003"}}})
		requireServiceError(t, e, err, cloudsim.OpHangup, http.StatusUnauthorized, "MMC.111070004")
	})

	t.Run("CancelMeeting", func(t *testing.T) {
		resp, err := c.CancelMeeting(&mtgmodel.CancelMeetingRequest{ConferenceID: cloudsim.DemoConfScheduled})
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.HttpStatusCode)
		resp, err = c.CancelMeeting(&mtgmodel.CancelMeetingRequest{ConferenceID: cloudsim.DemoConfOngoing2, Type: i32(1)})
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.HttpStatusCode)

		_, err = c.CancelMeeting(&mtgmodel.CancelMeetingRequest{ConferenceID: cloudsim.DemoConfEnded})
		requireServiceError(t, e, err, cloudsim.OpCancel, http.StatusBadRequest, "MMC.111072006")
	})

	t.Run("DisassociateVmr", func(t *testing.T) {
		resp, err := c.DisassociateVmr(&mtgmodel.DisassociateVmrRequest{Account: cloudsim.DemoVMRAccount, AccountType: i32(0),
			Body: &[]string{"vmr-alice-1", "vmr-alice-2"}})
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.HttpStatusCode)
		resp, err = c.DisassociateVmr(&mtgmodel.DisassociateVmrRequest{Account: cloudsim.DemoVMRThirdParty, AccountType: i32(1),
			Body: &[]string{"vmr-bob-1"}})
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.HttpStatusCode)

		_, err = c.DisassociateVmr(&mtgmodel.DisassociateVmrRequest{Account: cloudsim.DemoVMRAccount,
			Body: &[]string{cloudsim.DemoVMRUnassigned}})
		requireServiceError(t, e, err, cloudsim.OpReclaim, http.StatusBadRequest, "MMC.111070006")
	})

	st := e.sim.Stats()
	for _, key := range []string{"hangup:900000010/p-001", "hangup:900000010/p-002", "cancel:900000001", "cancel:900000011",
		"reclaim:member-alice/vmr-alice-1", "reclaim:member-alice/vmr-alice-2", "reclaim:tp-user-bob/vmr-bob-1"} {
		require.Equal(t, 1, st.Effect(key), key)
	}
	require.Equal(t, 1, st.Logins[cloudsim.OpAccountAuth], "the SDK logs in once and reuses its access token")
	require.Zero(t, st.CountStatus(cloudsim.OpAccountAuth, "401"))
}
