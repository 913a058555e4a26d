package cloudsim

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/apiclient"
)

// TestAPIClient runs meetops' own API client against the simulator in every
// authentication mode: the two must agree on paths, signatures, tokens and
// answers.
func TestAPIClient(t *testing.T) {
	t.Parallel()
	for name, mode := range map[string]func(c Credentials, url string) apiclient.Config{
		"AKSK+AppID": func(c Credentials, url string) apiclient.Config {
			return apiclient.Config{RTCEndpoint: url, RTCAK: c.AK, RTCSK: c.SK, RTCProjectID: c.ProjectID,
				MeetingEndpoint: url, MeetingAppID: c.AppID, MeetingAppKey: c.AppKey, MeetingUserID: c.UserID}
		},
		"IAM+Account": func(c Credentials, url string) apiclient.Config {
			return apiclient.Config{RTCEndpoint: url, IAMEndpoint: url, IAMUser: c.IAMUser, IAMPassword: c.IAMPassword,
				IAMDomain: c.IAMDomain, IAMProjectID: c.IAMProjectID,
				MeetingEndpoint: url, MeetingAccount: c.Account, MeetingPassword: c.Password}
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			sim, b := setup(t)
			cfg := mode(b.creds, b.srv.URL)
			cfg.Now = b.clock.Now
			client, err := apiclient.New(cfg)
			require.NoError(t, err)
			ctx := context.Background()

			resp, err := client.DismissRoom(ctx, DemoApp, "room-001")
			require.NoError(t, err)
			require.Equal(t, http.StatusAccepted, resp.Status)
			require.NotEmpty(t, resp.RequestID)

			state, _, err := client.DisableApp(ctx, DemoApp2)
			require.NoError(t, err)
			require.Equal(t, string(AppDeactivation), state.State)

			_, err = client.CancelConference(ctx, DemoConfScheduled, "", false)
			require.NoError(t, err)
			_, err = client.HangUpParticipants(ctx, DemoConfOngoing, []string{"p-001", "p-002"})
			require.NoError(t, err)
			_, err = client.ReclaimVMRs(ctx, DemoVMRAccount, 0, []string{"vmr-alice-1"})
			require.NoError(t, err)

			_, err = client.DismissRoom(ctx, DemoApp, "room-001")
			var apiErr *apiclient.Error
			require.ErrorAs(t, err, &apiErr)

			st := sim.Stats()
			for _, key := range []string{"dismiss:demo-app/room-001", "disable:demo-app-2", "cancel:900000001",
				"hangup:900000010/p-001", "hangup:900000010/p-002", "reclaim:member-alice/vmr-alice-1"} {
				require.Equal(t, 1, st.Effect(key), key)
			}
		})
	}
}
