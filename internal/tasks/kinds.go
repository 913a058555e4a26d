package tasks

// The operations, declared once: the CLI name, the asynq task type and the
// upstream rate-limit group of each. Everything else (the CLI, bulk files,
// dead-letter filters, the worker's handlers and rate limits) looks them up
// here.

// Operation names, as the CLI, bulk files and dead-letter filters spell
// them; also the prefix of derived idempotency keys.
const (
	NameDismiss = "dismiss"
	NameDisable = "disable"
	NameCancel  = "cancel"
	NameHangUp  = "hangup"
	NameReclaim = "reclaim"
)

// Task type names (asynq task types).
const (
	TypeDismiss = "rtc:room:dismiss"
	TypeDisable = "rtc:app:disable"
	TypeCancel  = "meeting:conference:cancel"
	TypeHangUp  = "meeting:participants:hangup"
	TypeReclaim = "meeting:vmr:reclaim"
)

// Rate-limit groups: the upstream budgets operations draw from. Every
// operation of a group shares one limit, across all workers.
const (
	GroupRTCRooms       = "rtc_rooms"
	GroupRTCApps        = "rtc_apps"
	GroupMeetingMgmt    = "meeting_mgmt"
	GroupMeetingControl = "meeting_control"
	GroupMeetingVMR     = "meeting_vmr"
)

// kind describes one operation.
type kind struct {
	name, taskType, group string
	// zero returns a pointer to a zero payload, to decode into.
	zero func() Op
}

// kinds lists the operations in their stable order.
var kinds = [...]kind{
	{NameDismiss, TypeDismiss, GroupRTCRooms, func() Op { return &Dismiss{} }},
	{NameDisable, TypeDisable, GroupRTCApps, func() Op { return &Disable{} }},
	{NameCancel, TypeCancel, GroupMeetingMgmt, func() Op { return &Cancel{} }},
	{NameHangUp, TypeHangUp, GroupMeetingControl, func() Op { return &HangUp{} }},
	{NameReclaim, TypeReclaim, GroupMeetingVMR, func() Op { return &Reclaim{} }},
}

// Names lists the operation names in a stable order.
var Names = func() []string {
	s := make([]string, len(kinds))
	for i, k := range kinds {
		s[i] = k.name
	}
	return s
}()

// Types lists the asynq task types, in the order of Names.
var Types = func() []string {
	s := make([]string, len(kinds))
	for i, k := range kinds {
		s[i] = k.taskType
	}
	return s
}()

// Groups lists the rate-limit groups, each once.
var Groups = []string{GroupRTCRooms, GroupRTCApps, GroupMeetingMgmt, GroupMeetingControl, GroupMeetingVMR}

func kindOfType(taskType string) (kind, bool) {
	for _, k := range kinds {
		if k.taskType == taskType {
			return k, true
		}
	}
	return kind{}, false
}

// TypeOf returns the asynq task type for an operation name, and false for
// an unknown name.
func TypeOf(name string) (string, bool) {
	for _, k := range kinds {
		if k.name == name {
			return k.taskType, true
		}
	}
	return "", false
}

// NameOf returns the operation name for an asynq task type, or "" when
// unknown.
func NameOf(taskType string) string {
	k, _ := kindOfType(taskType)
	return k.name
}

// GroupOf returns the rate-limit group of an asynq task type, or "" when
// unknown.
func GroupOf(taskType string) string {
	k, _ := kindOfType(taskType)
	return k.group
}

// newOp returns a pointer to a zero payload for taskType, or nil.
func newOp(taskType string) Op {
	if k, ok := kindOfType(taskType); ok {
		return k.zero()
	}
	return nil
}

// All returns the zero value of every operation, in the order of Names,
// for code that derives something per operation (the bulk file schema).
func All() []Op {
	ops := make([]Op, len(kinds))
	for i, k := range kinds {
		ops[i] = deref(k.zero())
	}
	return ops
}
