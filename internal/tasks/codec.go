package tasks

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Decode parses and validates a task payload of the given asynq type. It
// rejects unknown task types, unknown fields, wrong JSON types, trailing
// data and invalid values; every error names the field and matches
// ErrInvalid.
func Decode(taskType string, payload []byte) (Op, error) {
	if err := CheckPayloadSize(len(payload)); err != nil {
		return nil, err
	}
	op := newOp(taskType)
	if op == nil {
		return nil, &FieldError{Msg: fmt.Sprintf("unknown task type %q", taskType)}
	}
	if !decodeFast(payload, op) {
		op = newOp(taskType) // the fast path may have set some fields
		if err := decodeStrict(payload, op); err != nil {
			return nil, err
		}
	}
	op = deref(op)
	if err := op.Validate(); err != nil {
		return nil, err
	}
	return op, nil
}

// CheckPayloadSize reports a payload of n bytes over MaxPayloadBytes, as an
// error matching ErrInvalid.
func CheckPayloadSize(n int) error {
	if n > MaxPayloadBytes {
		return &FieldError{Msg: fmt.Sprintf("payload is %d bytes, over the limit of %d", n, MaxPayloadBytes)}
	}
	return nil
}

// deref turns the *T used for decoding back into the T value that
// implements Op everywhere else.
func deref(op Op) Op {
	switch v := op.(type) {
	case *Dismiss:
		return *v
	case *Disable:
		return *v
	case *Cancel:
		return *v
	case *HangUp:
		return *v
	case *Reclaim:
		return *v
	}
	return op
}

func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonFieldError(err)
	}
	if len(bytes.TrimSpace(data[dec.InputOffset():])) > 0 {
		return &FieldError{Msg: "trailing data after the JSON object"}
	}
	return nil
}

// jsonFieldError turns encoding/json's errors into FieldErrors naming the
// field.
func jsonFieldError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return &FieldError{Field: te.Field, Msg: fmt.Sprintf("must be a JSON %s, got %s", jsonKind(te.Type.Kind().String()), te.Value)}
	}
	if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return &FieldError{Field: strings.Trim(f, `"`), Msg: "unknown field"}
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return &FieldError{Msg: fmt.Sprintf("malformed JSON at byte %d: %v", se.Offset, err)}
	}
	if errors.Is(err, io.EOF) {
		return &FieldError{Msg: "empty payload"}
	}
	return &FieldError{Msg: fmt.Sprintf("malformed JSON: %v", err)}
}

func jsonKind(k string) string {
	switch k {
	case "slice":
		return "array"
	case "int", "int64":
		return "integer"
	case "bool":
		return "boolean"
	case "struct":
		return "object"
	}
	return k
}

// Canonical returns the canonical payload of op: compact JSON, keys sorted,
// optional fields at their default left out, list fields sorted and
// de-duplicated. It is the payload meetops enqueues and hashes.
func Canonical(op Op) []byte {
	b, err := json.Marshal(op.canonical())
	if err != nil {
		panic(fmt.Sprintf("tasks: marshal %T: %v", op, err)) // plain structs of strings cannot fail
	}
	return b
}

// Key derives the idempotency key of op: "<op>:" followed by the first 32
// hex digits of sha256 over its canonical payload.
func Key(op Op) string {
	return keyOf(op.Name(), Canonical(op))
}

func keyOf(name string, canonical []byte) string {
	sum := sha256.Sum256(canonical)
	return name + ":" + hex.EncodeToString(sum[:16])
}
