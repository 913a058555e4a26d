package tasks

import "slices"

// Op is one of the five operations. Its value is the task payload.
//
// The payload structs declare their fields in JSON-key order, so that
// json.Marshal writes canonical JSON (keys sorted) without a detour through
// a map; TestCanonicalKeysSorted guards this.
type Op interface {
	// Name is the CLI name: dismiss, disable, cancel, hangup or reclaim.
	Name() string
	// TaskType is the asynq task type.
	TaskType() string
	// Validate reports every invalid field, each error naming its field.
	Validate() error
	// canonical returns the operation with list fields sorted and
	// de-duplicated, so equal operations have equal payloads.
	canonical() Op
}

// Dismiss dismisses an RTC room (removing all its users).
type Dismiss struct {
	AppID  string `json:"app_id"`
	RoomID string `json:"room_id"`
}

// Disable disables an RTC application.
type Disable struct {
	AppID string `json:"app_id"`
}

// Cancel cancels a scheduled meeting; with EndOngoing it also ends a meeting
// in progress.
type Cancel struct {
	ConferenceID string `json:"conference_id"`
	EndOngoing   bool   `json:"end_ongoing,omitempty"`
	UserUUID     string `json:"user_uuid,omitempty"`
}

// HangUp disconnects participants from a meeting in progress.
type HangUp struct {
	ConferenceID   string   `json:"conference_id"`
	ParticipantIDs []string `json:"participant_ids"`
}

// Reclaim reclaims cloud meeting rooms (VMRs) from a member account.
// AccountType 0 is a Huawei Cloud Meeting account, 1 a third-party user ID.
type Reclaim struct {
	Account     string   `json:"account"`
	AccountType int      `json:"account_type,omitempty"`
	VMRIDs      []string `json:"vmr_ids"`
}

// Name implements Op.
func (Dismiss) Name() string { return NameDismiss }

// Name implements Op.
func (Disable) Name() string { return NameDisable }

// Name implements Op.
func (Cancel) Name() string { return NameCancel }

// Name implements Op.
func (HangUp) Name() string { return NameHangUp }

// Name implements Op.
func (Reclaim) Name() string { return NameReclaim }

// TaskType implements Op.
func (Dismiss) TaskType() string { return TypeDismiss }

// TaskType implements Op.
func (Disable) TaskType() string { return TypeDisable }

// TaskType implements Op.
func (Cancel) TaskType() string { return TypeCancel }

// TaskType implements Op.
func (HangUp) TaskType() string { return TypeHangUp }

// TaskType implements Op.
func (Reclaim) TaskType() string { return TypeReclaim }

func (o Dismiss) canonical() Op { return o }
func (o Disable) canonical() Op { return o }
func (o Cancel) canonical() Op  { return o }

func (o HangUp) canonical() Op {
	o.ParticipantIDs = sortedUnique(o.ParticipantIDs)
	return o
}

func (o Reclaim) canonical() Op {
	o.VMRIDs = sortedUnique(o.VMRIDs)
	return o
}

func sortedUnique(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}
