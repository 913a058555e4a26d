package cloudsim

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestFaultScript(t *testing.T) {
	t.Parallel()
	sim, b := setup(t)
	tok := b.iamToken(t)
	require.NoError(t, sim.SetFault(OpDismiss, Fault{Script: []string{"503", "502", "500", "ok"}}))

	for _, want := range []struct {
		status int
		code   string
	}{{503, "APIG.0202"}, {502, "APIG.0202"}, {500, "RTC.00002001"}, {202, ""}} {
		a := b.rtc(t, "/v2/apps/demo-app/rooms/room-001/dismiss", tok)
		require.Equal(t, want.status, a.status)
		require.Equal(t, want.code, a.errorCode())
	}
	require.Empty(t, sim.Faults()[OpDismiss].Script, "script consumed")
	require.Equal(t, http.StatusNotFound, b.rtc(t, "/v2/apps/demo-app/rooms/room-001/dismiss", tok).status)

	st := sim.Stats()
	require.Equal(t, 1, st.Effect("dismiss:demo-app/room-001"), "failed attempts have no effect")
	require.Equal(t, 5, st.Count(OpDismiss))
	require.Equal(t, 1, st.CountStatus(OpDismiss, "503"))
	require.Equal(t, "503", sim.Log()[1].Fault)
}

func TestFaultThrottle(t *testing.T) {
	t.Parallel()
	sim, b := setup(t)
	require.NoError(t, sim.SetFault(OpCancel, Fault{Rate: 1, Fail: "429", RetryAfter: 3}))
	a := b.meeting(t, http.MethodDelete, "/v1/mmc/management/conferences?conferenceID="+DemoConfScheduled, b.accessToken(t), "")
	require.Equal(t, http.StatusTooManyRequests, a.status)
	require.Equal(t, "3", a.header.Get("Retry-After"))
	require.Equal(t, "APIG.0308", a.errorCode())
	c, _ := sim.Conference(DemoConfScheduled)
	require.Equal(t, ConfScheduled, c.State)
}

func TestFaultTokenExpired(t *testing.T) {
	t.Parallel()
	sim, b := setup(t)
	for _, op := range []string{OpDisable, OpConfDetail, OpHangup, OpIAMToken} {
		require.NoError(t, sim.SetFault(op, Fault{Script: []string{"401"}}))
	}
	a := b.rtc(t, "/v2/apps/demo-app-2/disable", "whatever")
	require.Equal(t, http.StatusUnauthorized, a.status)
	require.Equal(t, "APIG.0307", a.errorCode())

	a = b.send(t, http.MethodPost, "/v3/auth/tokens", nil, "{}")
	require.Equal(t, http.StatusUnauthorized, a.status)
	require.Equal(t, "IAM.0004", a.errorCode())

	tok := b.accessToken(t)
	a = b.meeting(t, http.MethodGet, "/v1/mmc/management/conferences/confDetail?conferenceID="+DemoConfOngoing, tok, "")
	require.Equal(t, http.StatusUnauthorized, a.status)
	require.Equal(t, "USG.000000004", a.errorCode())
	require.Equal(t, http.StatusOK, b.meeting(t, http.MethodGet, "/v1/mmc/management/conferences/confDetail?conferenceID="+DemoConfOngoing, tok, "").status)

	ct := b.controlToken(t, DemoConfOngoing)
	a = b.hangup(t, DemoConfOngoing, ct, `{"bulkHangUpParticipants":["p-001"]}`)
	require.Equal(t, http.StatusUnauthorized, a.status)
	require.Equal(t, "MMC.111070004", a.errorCode())
}

func TestFaultRateIsDeterministic(t *testing.T) {
	t.Parallel()
	outcomes := func() []string {
		sim := New(Options{Rand: rand.New(rand.NewPCG(7, 7))})
		require.NoError(t, sim.SetFault(OpDismiss, Fault{Rate: 0.3, Fail: "503", Latency: time.Millisecond, LatencyMax: 5 * time.Millisecond}))
		var out []string
		sim.mu.Lock()
		defer sim.mu.Unlock()
		for range 1000 {
			p := sim.planLocked(OpDismiss)
			require.GreaterOrEqual(t, p.latency, time.Millisecond)
			require.LessOrEqual(t, p.latency, 5*time.Millisecond)
			out = append(out, p.outcome)
		}
		return out
	}
	first := outcomes()
	require.Equal(t, first, outcomes(), "same seed, same outcomes")
	failed := 0
	for _, o := range first {
		if o == "503" {
			failed++
		}
	}
	require.InDelta(t, 300, failed, 60)
}

func TestFaultLatency(t *testing.T) {
	t.Parallel()
	sim, b := setup(t)
	require.NoError(t, sim.SetFault(OpConfDetail, Fault{Latency: 30 * time.Millisecond}))
	tok := b.accessToken(t)
	start := time.Now()
	a := b.meeting(t, http.MethodGet, "/v1/mmc/management/conferences/confDetail?conferenceID="+DemoConfOngoing, tok, "")
	require.Equal(t, http.StatusOK, a.status)
	require.GreaterOrEqual(t, time.Since(start), 30*time.Millisecond)

	// A client that gives up during the latency is counted as canceled.
	require.NoError(t, sim.SetFault(OpConfDetail, Fault{Latency: time.Hour}))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	req := b.newRequest(t, http.MethodGet, "/v1/mmc/management/conferences/confDetail?conferenceID="+DemoConfOngoing, http.Header{"X-Access-Token": {tok}}, "")
	_, err := b.client.Do(req.WithContext(ctx))
	require.ErrorIs(t, err, context.DeadlineExceeded)
	waitFor(t, "the canceled request to be counted", func() bool {
		return sim.Stats().CountStatus(OpConfDetail, statusCanceled) == 1
	})
}

func TestFaultHang(t *testing.T) {
	t.Parallel()
	sim, b := setup(t)
	require.NoError(t, sim.SetFault(OpDisable, Fault{Script: []string{"hang"}}))
	tok := b.iamToken(t)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		req := b.newRequest(t, http.MethodPost, "/v2/apps/demo-app-2/disable", http.Header{"X-Auth-Token": {tok}}, "")
		resp, err := b.client.Do(req.WithContext(ctx))
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	waitFor(t, "the request to hang", func() bool { return sim.Stats().CountStatus(OpDisable, OutcomeHang) == 1 })
	select {
	case err := <-errc:
		t.Fatalf("hanging request returned: %v", err)
	default:
	}
	cancel() // the client gives up
	require.ErrorIs(t, <-errc, context.Canceled)

	app, _ := sim.App(DemoApp2)
	require.Equal(t, AppActivation, app.State, "a hang without after_effect changes nothing")
	require.Equal(t, http.StatusOK, b.rtc(t, "/v2/apps/demo-app-2/disable", tok).status)
}

func TestFaultHangReleasedByClose(t *testing.T) {
	t.Parallel()
	sim, b := setup(t)
	require.NoError(t, sim.SetFault(OpDisable, Fault{Rate: 1, Fail: "hang"}))
	tok := b.iamToken(t)
	errc := make(chan error, 1)
	go func() {
		req := b.newRequest(t, http.MethodPost, "/v2/apps/demo-app-2/disable", http.Header{"X-Auth-Token": {tok}}, "")
		resp, err := b.client.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	waitFor(t, "the request to hang", func() bool { return sim.Stats().CountStatus(OpDisable, OutcomeHang) == 1 })
	sim.Close()
	require.Error(t, <-errc)
}

func TestFaultReset(t *testing.T) {
	t.Parallel()
	sim, b := setup(t)
	require.NoError(t, sim.SetFault(OpReclaim, Fault{Script: []string{"reset"}}))
	tok := b.accessToken(t)
	req := b.newRequest(t, http.MethodPost, "/v1/usg/dcs/corp/vmr/recycle-from-member/"+DemoVMRAccount,
		http.Header{"X-Access-Token": {tok}}, `["vmr-alice-1"]`)
	_, err := b.client.Do(req)
	require.Error(t, err)
	require.True(t, errors.Is(err, syscall.ECONNRESET) || strings.Contains(err.Error(), "EOF"), "error: %v", err)
	require.Equal(t, 1, sim.Stats().CountStatus(OpReclaim, OutcomeReset))
	_, _, assigned := sim.VMROwner("vmr-alice-1")
	require.True(t, assigned)
}

func TestFaultAfterEffect(t *testing.T) {
	t.Parallel()
	sim, b := setup(t)
	tok := b.iamToken(t)
	require.NoError(t, sim.SetFault(OpDismiss, Fault{Script: []string{"502", "reset"}, AfterEffect: true}))

	a := b.rtc(t, "/v2/apps/demo-app/rooms/room-001/dismiss", tok)
	require.Equal(t, http.StatusBadGateway, a.status)
	require.False(t, sim.RoomExists(DemoApp, "room-001"), "the effect took place")

	req := b.newRequest(t, http.MethodPost, "/v2/apps/demo-app/rooms/room-002/dismiss", http.Header{"X-Auth-Token": {tok}}, "")
	_, err := b.client.Do(req)
	require.Error(t, err)
	require.False(t, sim.RoomExists(DemoApp, "room-002"))

	// The retry sees the "already done" answer.
	require.Equal(t, http.StatusNotFound, b.rtc(t, "/v2/apps/demo-app/rooms/room-001/dismiss", tok).status)
	require.Equal(t, 1, sim.Stats().Effect("dismiss:demo-app/room-001"))
	require.Equal(t, "502 after effect", sim.Log()[1].Fault)
}

func TestFaultValidation(t *testing.T) {
	t.Parallel()
	sim := New(Options{})
	require.Error(t, sim.SetFault("nope", Fault{Rate: 1, Fail: "503"}))
	require.Error(t, sim.SetFault(OpDismiss, Fault{Rate: 1.5, Fail: "503"}))
	require.Error(t, sim.SetFault(OpDismiss, Fault{Rate: 0.5}))
	require.Error(t, sim.SetFault(OpDismiss, Fault{Rate: 0.5, Fail: "418"}))
	require.Error(t, sim.SetFault(OpDismiss, Fault{Script: []string{"oops"}}))
	require.Error(t, sim.SetFault(OpDismiss, Fault{Latency: -time.Second}))

	require.NoError(t, sim.SetFault(OpDismiss, Fault{Script: []string{"503"}}))
	require.NoError(t, sim.SetFault(OpDismiss, Fault{}))
	require.Empty(t, sim.Faults(), "the zero fault removes it")
}

func TestLoadFaults(t *testing.T) {
	t.Parallel()
	sim := New(Options{})
	require.NoError(t, sim.LoadFaults(strings.NewReader(`{
		"dismiss": {"script": ["503", "ok"]},
		"hangup": {"rate": 0.2, "fail": "429", "retry_after": 2, "latency": "50ms", "latency_max": "200ms", "after_effect": true}
	}`)))
	require.Equal(t, map[string]Fault{
		OpDismiss: {Script: []string{"503", "ok"}},
		OpHangup:  {Rate: 0.2, Fail: "429", RetryAfter: 2, Latency: 50 * time.Millisecond, LatencyMax: 200 * time.Millisecond, AfterEffect: true},
	}, sim.Faults())

	for name, in := range map[string]string{
		"unknown op":    `{"nope": {"script": ["503"]}}`,
		"unknown field": `{"dismiss": {"scrip": ["503"]}}`,
		"bad duration":  `{"dismiss": {"latency": "soon"}}`,
		"bad outcome":   `{"dismiss": {"rate": 1, "fail": "ok"}}`,
		"not JSON":      `[`,
	} {
		require.Error(t, sim.LoadFaults(strings.NewReader(in)), name)
	}
	require.Len(t, sim.Faults(), 2, "a failed load keeps the faults in force")
}

// The echo outcomes answer 400 with what the request carried — its body,
// query and credential headers — in a JSON error_msg or as text, to test
// that a client keeps its own secrets out of its errors.
func TestFaultEcho(t *testing.T) {
	t.Parallel()
	sim, b := setup(t)
	require.NoError(t, sim.SetFault(OpIAMToken, Fault{Script: []string{OutcomeEcho, OutcomeEchoText}}))
	body := iamBody(b.creds.IAMUser, b.creds.IAMPassword, b.creds.IAMDomain, b.creds.IAMProjectID)

	a := b.send(t, http.MethodPost, "/v3/auth/tokens?x=1", http.Header{"X-Password": {"hp"}}, body)
	require.Equal(t, http.StatusBadRequest, a.status)
	var eb errorBody
	a.decode(t, &eb)
	require.Equal(t, "SIM.ECHO", eb.ErrorCode)
	require.Contains(t, eb.ErrorMsg, body, "the body, as received")
	require.Contains(t, eb.ErrorMsg, "X-Password: hp")
	require.Contains(t, eb.ErrorMsg, "?x=1")

	a = b.send(t, http.MethodPost, "/v3/auth/tokens", nil, body)
	require.Equal(t, http.StatusBadRequest, a.status)
	require.Contains(t, a.header.Get("Content-Type"), "text/plain")
	require.Contains(t, string(a.body), body)
	require.Equal(t, "echo_text", sim.Log()[1].Fault)
}
