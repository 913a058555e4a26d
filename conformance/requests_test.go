package conformance

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	rtcmodel "github.com/huaweicloud/huaweicloud-sdk-go-v3/services/cloudrtc/v2/model"
	mtgmodel "github.com/huaweicloud/huaweicloud-sdk-go-v3/services/meeting/v1/model"
	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/apiclient"
	"github.com/meetops/meetops/internal/cloudsim"
)

// difference is a header one client sends and the other does not, on
// purpose.
type difference struct {
	header string
	why    string
}

// deliberate lists, per operation, the headers apiclient sends that the SDK
// does not (onlyAPIClient) and those the SDK sends that apiclient does not
// (onlySDK). The test fails on any other difference in the header sets, and
// on a listed one that is no longer there.
var deliberate = map[string]struct{ onlyAPIClient, onlySDK []difference }{
	cloudsim.OpAccountAuth: {onlyAPIClient: []difference{xRequestID}},
	cloudsim.OpDismiss:     {onlyAPIClient: []difference{xRequestID}},
	cloudsim.OpDisable:     {onlyAPIClient: []difference{xRequestID}},
	cloudsim.OpCancel:      {onlyAPIClient: []difference{xRequestID}},
	cloudsim.OpConfDetail:  {onlyAPIClient: []difference{xRequestID}},
	cloudsim.OpControlToken: {onlyAPIClient: []difference{xRequestID}, onlySDK: []difference{{"X-Access-Token",
		"the control token is obtained with the host password (X-Password, X-Login-Type: 1): neither the page nor the " +
			"SDK's request definition (GenReqDefForCreateConfToken) lists an access token; the SDK sends it only because " +
			"its MeetingCredentials add it to every Meeting request, and apiclient does not expose the enterprise-wide " +
			"token where it is not needed"}}},
	cloudsim.OpHangup: {onlyAPIClient: []difference{xRequestID}, onlySDK: []difference{{"X-Access-Token",
		"hang-up authenticates with the per-conference control token (X-Conference-Authorization), the only credential " +
			"the page and the SDK's request definition (GenReqDefForHangUp) list; as for the control token, the SDK's " +
			"credentials add the access token to every request and apiclient does not send it where it is not needed"}}},
	cloudsim.OpReclaim: {onlyAPIClient: []difference{xRequestID}},
}

var xRequestID = difference{"X-Request-Id",
	"apiclient sends a UUID on every request so that its errors carry a request ID even when an answer has none; " +
		"the reclaim page and the SDK's DisassociateVmrRequest document it as an optional request header, and the SDK " +
		"sends it only when the caller sets it"}

// inputs are the arguments of the five operations; both clients get the
// same ones.
type inputs struct {
	app, room, appToDisable string
	scheduled, ongoing      string   // conferences
	participants            []string // in ongoing
	account                 string   // VMR owner, accountType 0
	vmrs                    []string
}

var demoInputs = inputs{
	app: cloudsim.DemoApp, room: "room-001", appToDisable: cloudsim.DemoApp2,
	scheduled: cloudsim.DemoConfScheduled, ongoing: cloudsim.DemoConfOngoing, participants: []string{"p-001", "p-002"},
	account: cloudsim.DemoVMRAccount, vmrs: []string{"vmr-alice-1", "vmr-alice-2"},
}

// hostileInputs are IDs with every character that escapes differently in a
// path, a query and JSON — but "/", which the SDK cannot put in a path
// segment (it substitutes path parameters unescaped).
var hostileInputs = inputs{
	app: "app ü%;,?#", room: "room+1&=@:日", appToDisable: "app 2 é",
	scheduled: "9 0&type=1+ü#", ongoing: "8%20?x=1;y", participants: []string{"p<1>&", "p \"2\" ü"},
	account: "member+alice@example.com;x", vmrs: []string{"vmr <1>&", "vmr é"},
}

// seed adds the hostile inputs' world to e's simulator.
func (in inputs) seed(t *testing.T, e *env) {
	t.Helper()
	require.NoError(t, e.sim.AddApp(cloudsim.App{ID: in.app, Rooms: []string{in.room}}))
	require.NoError(t, e.sim.AddApp(cloudsim.App{ID: in.appToDisable}))
	require.NoError(t, e.sim.AddConference(cloudsim.Conference{ID: in.scheduled, ChairPassword: cloudsim.DemoChairPassword}))
	require.NoError(t, e.sim.AddConference(cloudsim.Conference{ID: in.ongoing, State: cloudsim.ConfOngoing,
		ChairPassword: cloudsim.DemoChairPassword, Participants: in.participants}))
	require.NoError(t, e.sim.AssignVMRs(in.account, 0, in.vmrs...))
}

// effects are the simulator effect keys the five operations produce.
func (in inputs) effects() []string {
	keys := []string{"dismiss:" + in.app + "/" + in.room, "disable:" + in.appToDisable, "cancel:" + in.scheduled}
	for _, p := range in.participants {
		keys = append(keys, "hangup:"+in.ongoing+"/"+p)
	}
	for _, v := range in.vmrs {
		keys = append(keys, "reclaim:"+in.account+"/"+v)
	}
	return keys
}

// opOf names the operation of a captured request by its path.
func opOf(c captured) string {
	switch p := c.Path; {
	case strings.HasPrefix(p, "/v2/apps/") && strings.HasSuffix(p, "/dismiss"):
		return cloudsim.OpDismiss
	case strings.HasPrefix(p, "/v2/apps/") && strings.HasSuffix(p, "/disable"):
		return cloudsim.OpDisable
	case p == "/v1/usg/acs/auth/account":
		return cloudsim.OpAccountAuth
	case p == "/v1/mmc/management/conferences":
		return cloudsim.OpCancel
	case p == "/v1/mmc/management/conferences/confDetail":
		return cloudsim.OpConfDetail
	case p == "/v1/mmc/control/conferences/token":
		return cloudsim.OpControlToken
	case p == "/v1/mmc/control/conferences/participants/delete":
		return cloudsim.OpHangup
	case strings.HasPrefix(p, "/v1/usg/dcs/corp/vmr/recycle-from-member/"):
		return cloudsim.OpReclaim
	}
	return "unknown " + c.Method + " " + c.EscapedPath
}

// byOp indexes requests by operation; each must occur once.
func byOp(t *testing.T, reqs []captured) map[string]captured {
	t.Helper()
	out := map[string]captured{}
	for _, r := range reqs {
		op := opOf(r)
		_, dup := out[op]
		require.False(t, dup, "two %s requests", op)
		out[op] = r
	}
	return out
}

// runAPIClient performs the five operations with apiclient and returns the
// requests it sent.
func runAPIClient(t *testing.T, e *env, in inputs) map[string]captured {
	t.Helper()
	c := e.apiclient(t)
	ctx := context.Background()
	_, err := c.DismissRoom(ctx, in.app, in.room)
	require.NoError(t, err)
	_, _, err = c.DisableApp(ctx, in.appToDisable)
	require.NoError(t, err)
	_, err = c.CancelConference(ctx, in.scheduled, "", false)
	require.NoError(t, err)
	_, err = c.HangUpParticipants(ctx, in.ongoing, in.participants)
	require.NoError(t, err)
	_, err = c.ReclaimVMRs(ctx, in.account, 0, in.vmrs)
	require.NoError(t, err)
	return byOp(t, e.rec.take())
}

// runSDK performs the same operations with the SDK's clients; hang-up is
// the three calls apiclient makes for it (detail, control token, hang-up).
func runSDK(t *testing.T, e *env, in inputs) map[string]captured {
	t.Helper()
	rtc, mtg := e.sdkRTC(t), e.sdkMeeting(t)
	_, err := rtc.RemoveRoom(&rtcmodel.RemoveRoomRequest{AppId: in.app, RoomId: in.room})
	require.NoError(t, err)
	_, err = rtc.StopApp(&rtcmodel.StopAppRequest{AppId: in.appToDisable})
	require.NoError(t, err)
	_, err = mtg.CancelMeeting(&mtgmodel.CancelMeetingRequest{ConferenceID: in.scheduled})
	require.NoError(t, err)
	detail, err := mtg.ShowMeetingDetail(&mtgmodel.ShowMeetingDetailRequest{ConferenceID: in.ongoing})
	require.NoError(t, err)
	var chair string
	for _, p := range *detail.ConferenceData.PasswordEntry {
		if *p.ConferenceRole == "chair" {
			chair = *p.Password
		}
	}
	tok, err := mtg.CreateConfToken(&mtgmodel.CreateConfTokenRequest{ConferenceID: in.ongoing, XPassword: chair, XLoginType: 1})
	require.NoError(t, err)
	_, err = mtg.HangUp(&mtgmodel.HangUpRequest{ConferenceID: in.ongoing, XConferenceAuthorization: *tok.Data.Token,
		Body: &mtgmodel.RestBulkHangUpReqBody{BulkHangUpParticipants: in.participants}})
	require.NoError(t, err)
	accountType := int32(0)
	vmrs := in.vmrs
	_, err = mtg.DisassociateVmr(&mtgmodel.DisassociateVmrRequest{Account: in.account, AccountType: &accountType, Body: &vmrs})
	require.NoError(t, err)
	return byOp(t, e.rec.take())
}

// valueHeaders are the headers whose values follow from the inputs and the
// configuration alone (not from tokens, clocks or versions): they must be
// equal where both clients send them.
var valueHeaders = []string{"Content-Type", "X-Project-Id", "X-Password", "X-Login-Type"}

// TestRequestsMatchTheSDK performs each operation with apiclient and with
// the SDK's clients, for the same inputs, against two simulators behind
// recorders, and compares what the servers received.
func TestRequestsMatchTheSDK(t *testing.T) {
	t.Parallel()
	for name, in := range map[string]inputs{"Demo": demoInputs, "Hostile": hostileInputs} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ea, es := newEnv(t), newEnv(t)
			if name == "Hostile" {
				in.seed(t, ea)
				in.seed(t, es)
			}
			got, want := runAPIClient(t, ea, in), runSDK(t, es, in)
			require.ElementsMatch(t, slices.Collect(maps.Keys(want)), slices.Collect(maps.Keys(got)))

			var table strings.Builder
			fmt.Fprintf(&table, "%-14s | %-70s | %s\n", "operation", "apiclient headers", "SDK headers")
			for _, op := range slices.Sorted(maps.Keys(want)) {
				a, s := got[op], want[op]
				require.Equal(t, s.Method, a.Method, op)
				require.Equal(t, s.Path, a.Path, "%s: decoded path", op)
				if name == "Demo" {
					// Hostile IDs escape differently: apiclient escapes
					// each ID as one segment (url.PathEscape, which also
					// escapes ";" and ","), the SDK lets net/http escape
					// the whole path. Both decode to the same path and
					// sign the same canonical URI.
					require.Equal(t, s.EscapedPath, a.EscapedPath, "%s: path as sent", op)
					require.Equal(t, s.RawQuery, a.RawQuery, "%s: query as sent", op)
				}
				require.Equal(t, s.Query(), a.Query(), "%s: query", op)
				require.Equal(t, canonicalTarget(s), canonicalTarget(a), "%s: canonical URI and query", op)
				if len(s.Body) == 0 {
					require.Empty(t, a.Body, op)
				} else {
					sdkBody, ok := bytes.CutSuffix(s.Body, []byte("\n"))
					require.True(t, ok, "%s: the SDK's json.Encoder ends its body with a newline", op)
					require.Equal(t, string(sdkBody), string(a.Body), "%s: body", op)
				}

				aNames, sNames := headerNames(a.Header), headerNames(s.Header)
				var onlyA, onlyS []string
				for _, h := range aNames {
					if !slices.Contains(sNames, h) {
						onlyA = append(onlyA, h)
					}
				}
				for _, h := range sNames {
					if !slices.Contains(aNames, h) {
						onlyS = append(onlyS, h)
					}
				}
				d := deliberate[op]
				require.Equal(t, names(d.onlyAPIClient), onlyA, "%s: headers only apiclient sends (apiclient %v, SDK %v)", op, aNames, sNames)
				require.Equal(t, names(d.onlySDK), onlyS, "%s: headers only the SDK sends (apiclient %v, SDK %v)", op, aNames, sNames)
				for _, h := range valueHeaders {
					if a.Header.Get(h) != "" && s.Header.Get(h) != "" {
						require.Equal(t, s.Header.Get(h), a.Header.Get(h), "%s: %s", op, h)
					}
				}
				if op == cloudsim.OpDismiss || op == cloudsim.OpDisable {
					// Both sign what they send, but apiclient also signs
					// host (the published example does; it binds the
					// signature to the host) and its X-Request-Id.
					_, aSigned, _, err := apiclient.ParseAuthorization(a.Header.Get("Authorization"))
					require.NoError(t, err)
					_, sSigned, _, err := apiclient.ParseAuthorization(s.Header.Get("Authorization"))
					require.NoError(t, err)
					require.Equal(t, []string{"user-agent", "x-project-id", "x-sdk-date"}, sSigned, op)
					require.Equal(t, []string{"host", "user-agent", "x-project-id", "x-request-id", "x-sdk-date"}, aSigned, op)
				}
				fmt.Fprintf(&table, "%-14s | %-70s | %s\n", op, strings.Join(aNames, ","), strings.Join(sNames, ","))
			}
			for _, key := range in.effects() {
				require.Equal(t, 1, ea.sim.Stats().Effect(key), "apiclient: %s", key)
				require.Equal(t, 1, es.sim.Stats().Effect(key), "SDK: %s", key)
			}
			reasons := map[string][]string{} // "only … sends H: why" → operations
			for _, op := range slices.Sorted(maps.Keys(deliberate)) {
				for _, d := range deliberate[op].onlyAPIClient {
					k := "only apiclient sends " + d.header + ": " + d.why
					reasons[k] = append(reasons[k], op)
				}
				for _, d := range deliberate[op].onlySDK {
					k := "only the SDK sends " + d.header + ": " + d.why
					reasons[k] = append(reasons[k], op)
				}
			}
			for _, k := range slices.Sorted(maps.Keys(reasons)) {
				fmt.Fprintf(&table, "%s — %s\n", strings.Join(reasons[k], ", "), k)
			}
			t.Logf("header sets received by the server:\n%s", table.String())
		})
	}
}

// canonicalTarget is the method, canonical URI and canonical query string
// of c, as an AK/SK signature covers them.
func canonicalTarget(c captured) string {
	r := &http.Request{Method: c.Method, URL: &url.URL{Path: c.Path, RawPath: c.EscapedPath, RawQuery: c.RawQuery}, Header: http.Header{}}
	lines := strings.SplitN(apiclient.CanonicalRequest(r, nil, ""), "\n", 4)
	return strings.Join(lines[:3], "\n")
}

func headerNames(h http.Header) []string { return slices.Sorted(maps.Keys(h)) }

func names(ds []difference) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.header)
	}
	return out
}
