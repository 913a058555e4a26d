package cloudsim

import (
	"net/http"
	"strconv"
	"time"
)

// meetingTimeFormat is the layout of a meeting's startTime and endTime.
const meetingTimeFormat = "2006-01-02 15:04"

// handleCancel: DELETE /v1/mmc/management/conferences?conferenceID=…
// [&userUUID=…][&type=1]. A scheduled meeting is cancelled; one in progress
// is ended only with type=1.
func (s *Sim) handleCancel(r *http.Request, _ []string) reply {
	if rep := s.authAccess(r); rep != nil {
		return *rep
	}
	q := r.URL.Query()
	confID := q.Get("conferenceID")
	if confID == "" {
		return paramError(OpCancel, "conferenceID is required")
	}
	endOngoing := false
	if t := q.Get("type"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil {
			return paramError(OpCancel, "type must be an integer")
		}
		endOngoing = n == 1
	}
	userUUID := q.Get("userUUID")

	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.world.confs[confID]
	if !ok {
		return mmcError(codeMMCNoConference, "The conference does not exist")
	}
	if c.UserUUID != "" && userUUID != "" && userUUID != c.UserUUID {
		return mmcError(codeMMCNotPermitted, "Insufficient permissions for this conference")
	}
	switch c.State {
	case ConfEnded, ConfCancelled:
		return mmcError(codeMMCEnded, "The conference has ended")
	case ConfOngoing:
		if !endOngoing {
			return mmcError(codeMMCInProgress, "The conference is in progress; pass type=1 to end it")
		}
		c.State = ConfEnded
		clear(c.participants)
	default:
		c.State = ConfCancelled
	}
	s.stats.effect("cancel:" + confID)
	return reply{status: http.StatusOK}
}

type passwordEntry struct {
	ConferenceRole string `json:"conferenceRole"`
	Password       string `json:"password"`
}

type confDetailBody struct {
	ConferenceData struct {
		ConferenceID    string          `json:"conferenceID"`
		Subject         string          `json:"subject"`
		ConferenceState string          `json:"conferenceState"`
		StartTime       string          `json:"startTime"`
		EndTime         string          `json:"endTime"`
		MediaTypes      string          `json:"mediaTypes"`
		UserUUID        string          `json:"userUUID,omitempty"`
		PasswordEntry   []passwordEntry `json:"passwordEntry"`
	} `json:"conferenceData"`
	Data struct {
		Offset int           `json:"offset"`
		Limit  int           `json:"limit"`
		Count  int           `json:"count"`
		Data   []participant `json:"data"`
	} `json:"data"`
}

type participant struct {
	ParticipantID string `json:"participantID"`
	Role          int    `json:"role"`
	State         string `json:"state"`
}

// handleConfDetail: GET /v1/mmc/management/conferences/confDetail?conferenceID=….
func (s *Sim) handleConfDetail(r *http.Request, _ []string) reply {
	if rep := s.authAccess(r); rep != nil {
		return *rep
	}
	confID := r.URL.Query().Get("conferenceID")
	if confID == "" {
		return paramError(OpConfDetail, "conferenceID is required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.world.confs[confID]
	if !ok {
		return mmcError(codeMMCNoConference, "The conference does not exist")
	}
	var out confDetailBody
	d := &out.ConferenceData
	d.ConferenceID = c.ID
	d.Subject = c.Subject
	d.ConferenceState = detailState(c.State)
	d.StartTime = c.StartTime.UTC().Format(meetingTimeFormat)
	d.EndTime = c.StartTime.Add(time.Hour).UTC().Format(meetingTimeFormat)
	d.MediaTypes = "Voice,Video,Data"
	d.UserUUID = c.UserUUID
	d.PasswordEntry = []passwordEntry{
		{ConferenceRole: "chair", Password: c.ChairPassword},
		{ConferenceRole: "general", Password: c.GuestPassword},
	}
	ex := c.export()
	out.Data.Limit = 20
	out.Data.Count = len(ex.Participants)
	out.Data.Data = []participant{}
	for _, p := range ex.Participants {
		if len(out.Data.Data) == out.Data.Limit {
			break
		}
		out.Data.Data = append(out.Data.Data, participant{ParticipantID: p, State: "online"})
	}
	return jsonReply(http.StatusOK, out)
}

// detailState maps a meeting state to confDetail's conferenceState.
func detailState(st ConferenceState) string {
	switch st {
	case ConfOngoing:
		return "Created"
	case ConfEnded, ConfCancelled:
		return "Destroyed"
	}
	return "Schedule"
}
