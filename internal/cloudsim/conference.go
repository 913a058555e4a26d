package cloudsim

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
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

// participant is one entry of the conference detail's participant page
// (the SDK's ParticipantInfo).
type participant struct {
	ParticipantID string `json:"participantID"`
	Role          int    `json:"role"`  // 1 host, 0 participant (an integer, as the SDK decodes it)
	State         string `json:"state"` // always "MEETTING", as the SDK documents
}

// participantState is the only participant state the conference detail
// reports (the SDK's ParticipantInfo.state: "currently always MEETTING").
const participantState = "MEETTING"

// defaultDetailLimit is the conference detail's page size when the request
// names none.
const defaultDetailLimit = 20

// handleConfDetail: GET /v1/mmc/management/conferences/confDetail
// ?conferenceID=…[&offset=…][&limit=…][&searchKey=…]. offset and limit page
// the participants (defaults 0 and 20); searchKey keeps the participants
// whose ID contains it.
func (s *Sim) handleConfDetail(r *http.Request, _ []string) reply {
	if rep := s.authAccess(r); rep != nil {
		return *rep
	}
	q := r.URL.Query()
	confID := q.Get("conferenceID")
	if confID == "" {
		return paramError(OpConfDetail, "conferenceID is required")
	}
	offset, err := queryInt(q, "offset", 0)
	if err != nil {
		return paramError(OpConfDetail, err.Error())
	}
	limit, err := queryInt(q, "limit", defaultDetailLimit)
	if err != nil {
		return paramError(OpConfDetail, err.Error())
	}
	if limit == 0 {
		limit = defaultDetailLimit
	}
	searchKey := q.Get("searchKey")
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
	var ids []string
	for _, p := range c.export().Participants {
		if strings.Contains(p, searchKey) {
			ids = append(ids, p)
		}
	}
	out.Data.Offset = offset
	out.Data.Limit = limit
	out.Data.Count = len(ids)
	out.Data.Data = []participant{}
	for _, p := range ids[min(offset, len(ids)):min(offset+limit, len(ids))] {
		out.Data.Data = append(out.Data.Data, participant{ParticipantID: p, State: participantState})
	}
	return jsonReply(http.StatusOK, out)
}

// queryInt parses the non-negative integer query parameter name; def when
// it is absent.
func queryInt(q url.Values, name string, def int) (int, error) {
	v := q.Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s must be a non-negative integer", name)
	}
	return int(n), nil
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
