package asynqdb

import (
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// Task is one asynq task to write, with the fields asynq's Client.Enqueue
// sets from its options and the task's headers; the others (deadline,
// unique key, group) are left unset, as they are without those options.
type Task struct {
	// ID is the task ID (asynq.TaskID).
	ID string
	// Type is the task type name.
	Type string
	// Payload is the task payload.
	Payload []byte
	// Queue is the queue name.
	Queue string
	// Retry is the retry budget (asynq.MaxRetry).
	Retry int
	// Timeout bounds one attempt (asynq.Timeout); asynq keeps whole
	// seconds, and without a timeout (nor a deadline) uses 30 minutes.
	Timeout time.Duration
	// Retention is how long the completed task is kept (asynq.Retention);
	// asynq keeps whole seconds.
	Retention time.Duration
	// ProcessAt, when not zero, schedules the task for then; the zero time
	// makes it pending at once. (asynq schedules a task whose process-at
	// time is after now, and enqueues the others; so does the caller.)
	ProcessAt time.Time
	// Origin, when not empty, is the task's one header, OriginHeader:
	// who enqueued it (an API token's name). asynq.NewTaskWithHeaders
	// with that one header writes the same message.
	Origin string
}

// OriginHeader is the asynq task header that holds Task.Origin.
const OriginHeader = "origin"

// defaultTimeout is asynq's timeout for a task enqueued with neither a
// timeout nor a deadline.
const defaultTimeout = 30 * time.Minute

// TaskMessage field numbers, from asynq's internal/proto/asynq.proto.
const (
	fieldType      protowire.Number = 1  // string
	fieldPayload   protowire.Number = 2  // bytes
	fieldID        protowire.Number = 3  // string
	fieldQueue     protowire.Number = 4  // string
	fieldRetry     protowire.Number = 5  // int32
	fieldTimeout   protowire.Number = 8  // int64
	fieldDeadline  protowire.Number = 9  // int64
	fieldRetention protowire.Number = 12 // int64
	fieldHeaders   protowire.Number = 15 // map<string, string>
	// A map entry is a message of key (1) and value (2).
	fieldEntryKey   protowire.Number = 1
	fieldEntryValue protowire.Number = 2
)

// AppendMessage appends t encoded as asynq's base.EncodeMessage encodes
// the TaskMessage that Client.Enqueue builds for it: proto3, fields in
// field-number order, fields at their zero value left out. The deadline
// is 0 (none), as asynq sets it when only a timeout is given.
//
// The strings must be valid UTF-8, as proto.Marshal requires.
func AppendMessage(b []byte, t *Task) []byte {
	b = appendString(b, fieldType, t.Type)
	b = appendBytes(b, fieldPayload, t.Payload)
	b = appendString(b, fieldID, t.ID)
	b = appendString(b, fieldQueue, t.Queue)
	b = appendVarint(b, fieldRetry, uint64(int64(int32(t.Retry)))) // int32: negatives sign-extend to 10 bytes
	// retried (6), error_msg (7): zero for a new task.
	timeout := t.Timeout
	if timeout == 0 {
		timeout = defaultTimeout
	}
	b = appendVarint(b, fieldTimeout, uint64(int64(timeout.Seconds())))
	b = appendVarint(b, fieldDeadline, 0)
	// unique_key (10), last_failed_at (11): zero for a new task.
	b = appendVarint(b, fieldRetention, uint64(int64(t.Retention.Seconds())))
	// completed_at (13), group_key (14): zero for a new task.
	if t.Origin != "" {
		// One map entry, both fields written, as protobuf-go writes a map
		// entry (one entry: no ordering to match).
		n := entrySize(OriginHeader, t.Origin)
		b = protowire.AppendTag(b, fieldHeaders, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(n))
		b = protowire.AppendTag(b, fieldEntryKey, protowire.BytesType)
		b = protowire.AppendString(b, OriginHeader)
		b = protowire.AppendTag(b, fieldEntryValue, protowire.BytesType)
		b = protowire.AppendString(b, t.Origin)
	}
	return b
}

// entrySize is the encoded size of a map entry of key and value.
func entrySize(key, value string) int {
	return 2 + protowire.SizeBytes(len(key)) + protowire.SizeBytes(len(value))
}

// messageSize is the encoded size of t, for sizing buffers.
func messageSize(t *Task) int {
	n := 0
	for _, s := range [...]int{len(t.Type), len(t.Payload), len(t.ID), len(t.Queue)} {
		if s > 0 {
			n += 1 + protowire.SizeVarint(uint64(s)) + s
		}
	}
	if t.Origin != "" {
		n += 2 + protowire.SizeBytes(entrySize(OriginHeader, t.Origin))
	}
	return n + 4*(1+10)
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendBytes(b []byte, num protowire.Number, v []byte) []byte {
	if len(v) == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func appendVarint(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}
