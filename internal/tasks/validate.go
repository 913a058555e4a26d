package tasks

import (
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"
)

// Payload bounds: list lengths and identifier size.
const (
	// MaxParticipants is the most participants one hang-up names.
	MaxParticipants = 500
	// MaxVMRs is the most cloud meeting rooms one reclaim names.
	MaxVMRs = 100
	// MaxIDLen is the longest identifier, in bytes.
	MaxIDLen = 128
	// MaxPayloadBytes is the largest task payload accepted, producer side
	// and worker side. A valid operation is far smaller (a hang-up of 500
	// IDs of 128 bytes is about 66 KiB); the cap stops a payload written
	// straight into Redis from being decoded, copied into a dead letter or
	// logged whole.
	MaxPayloadBytes = 256 << 10
)

// ErrInvalid is matched (errors.Is) by every validation and decoding error.
var ErrInvalid = errors.New("invalid payload")

// FieldError says what is wrong with one field.
type FieldError struct {
	// Field is the JSON name of the field, with an index for list
	// elements ("participant_ids[3]"), or "" for the payload as a whole.
	Field string
	// Msg says what is wrong.
	Msg string
}

// Error implements error.
func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Msg
	}
	return e.Field + ": " + e.Msg
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// CheckID reports whether id is a valid identifier: 1–128 bytes of UTF-8,
// no control characters, not "." or "..". The error does not name a field;
// use it through Validate for that.
func CheckID(id string) error {
	switch {
	case id == "":
		return errors.New("must not be empty")
	case len(id) > MaxIDLen:
		return fmt.Errorf("must be at most %d bytes, got %d", MaxIDLen, len(id))
	case !utf8.ValidString(id):
		return errors.New("must be valid UTF-8")
	case id == "." || id == "..":
		return fmt.Errorf("must not be %q", id)
	}
	for i, r := range id {
		if unicode.IsControl(r) {
			return fmt.Errorf("must not contain control characters (%U at byte %d)", r, i)
		}
	}
	return nil
}

func checkField(errs []error, field, id string) []error {
	if err := CheckID(id); err != nil {
		errs = append(errs, &FieldError{Field: field, Msg: err.Error()})
	}
	return errs
}

func checkList(errs []error, field string, ids []string, limit int) []error {
	if len(ids) == 0 {
		return append(errs, fieldErr(field, "must list at least one ID"))
	}
	if len(ids) > limit {
		return append(errs, fieldErr(field, "must list at most %d IDs, got %d", limit, len(ids)))
	}
	for i, id := range ids {
		errs = checkField(errs, fmt.Sprintf("%s[%d]", field, i), id)
	}
	return errs
}

// Validate implements Op.
func (o Dismiss) Validate() error {
	var errs []error
	errs = checkField(errs, "app_id", o.AppID)
	errs = checkField(errs, "room_id", o.RoomID)
	return errors.Join(errs...)
}

// Validate implements Op.
func (o Disable) Validate() error {
	return errors.Join(checkField(nil, "app_id", o.AppID)...)
}

// Validate implements Op.
func (o Cancel) Validate() error {
	errs := checkField(nil, "conference_id", o.ConferenceID)
	if o.UserUUID != "" {
		errs = checkField(errs, "user_uuid", o.UserUUID)
	}
	return errors.Join(errs...)
}

// Validate implements Op.
func (o HangUp) Validate() error {
	errs := checkField(nil, "conference_id", o.ConferenceID)
	errs = checkList(errs, "participant_ids", o.ParticipantIDs, MaxParticipants)
	return errors.Join(errs...)
}

// Validate implements Op.
func (o Reclaim) Validate() error {
	errs := checkField(nil, "account", o.Account)
	if o.AccountType != 0 && o.AccountType != 1 {
		errs = append(errs, fieldErr("account_type", "must be 0 or 1, got %d", o.AccountType))
	}
	errs = checkList(errs, "vmr_ids", o.VMRIDs, MaxVMRs)
	return errors.Join(errs...)
}

// CheckKey reports whether a caller-chosen idempotency key is acceptable:
// the ID rules, and no white space (keys travel in logs and CLI arguments).
func CheckKey(key string) error {
	if err := CheckID(key); err != nil {
		return &FieldError{Field: "key", Msg: err.Error()}
	}
	for _, r := range key {
		if unicode.IsSpace(r) {
			return fieldErr("key", "must not contain white space")
		}
	}
	return nil
}
