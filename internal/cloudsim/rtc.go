package cloudsim

import (
	"net/http"
)

// rtcTimeFormat is the layout of an app state's update_time.
const rtcTimeFormat = "2006-01-02T15:04:05.000Z"

type appStateBody struct {
	AppID string `json:"app_id"`
	State struct {
		State      AppState `json:"state"`
		UpdateTime string   `json:"update_time"`
	} `json:"state"`
}

// handleDismiss: POST /v2/apps/{app_id}/rooms/{room_id}/dismiss → 202.
func (s *Sim) handleDismiss(r *http.Request, p []string) reply {
	body, err := readBody(r)
	if err != nil {
		return paramError(OpDismiss, err.Error())
	}
	if rep := s.authRTC(r, body); rep != nil {
		return *rep
	}
	appID, roomID := p[0], p[1]
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.world.apps[appID]
	switch {
	case !ok:
		return rtcError(http.StatusNotFound, codeRTCInvalidValue, "InvalidParameterValue")
	case a.state == AppDeactivation:
		return rtcError(http.StatusBadRequest, codeRTCDeactivated, "AppDeactivation")
	case !a.hasRoom(roomID):
		return rtcError(http.StatusNotFound, codeRTCInvalidValue, "InvalidParameterValue")
	}
	a.dismiss(roomID)
	s.stats.effect("dismiss:" + appID + "/" + roomID)
	return reply{status: http.StatusAccepted}
}

// handleDisable: POST /v2/apps/{app_id}/disable → 200 with the app state.
func (s *Sim) handleDisable(r *http.Request, p []string) reply {
	body, err := readBody(r)
	if err != nil {
		return paramError(OpDisable, err.Error())
	}
	if rep := s.authRTC(r, body); rep != nil {
		return *rep
	}
	appID := p[0]
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.world.apps[appID]
	switch {
	case !ok:
		return rtcError(http.StatusNotFound, codeRTCInvalidValue, "InvalidParameterValue")
	case a.state == AppDeactivation:
		return rtcError(http.StatusBadRequest, codeRTCDeactivated, "AppDeactivation")
	}
	a.state = AppDeactivation
	a.updateTime = s.now().UTC()
	s.stats.effect("disable:" + appID)
	var out appStateBody
	out.AppID = appID
	out.State.State = a.state
	out.State.UpdateTime = a.updateTime.Format(rtcTimeFormat)
	return jsonReply(http.StatusOK, out)
}
