package bulk

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/meetops/meetops/internal/tasks"
)

// Fields every line may carry besides its operation's payload fields.
const (
	fieldOp        = "op"
	fieldKey       = "key"
	fieldQueue     = "queue"
	fieldProcessAt = "process_at"
	fieldMaxRetry  = "max_retry"
)

// kind is the JSON shape of a field, which says how a CSV cell converts.
type kind int

const (
	kindString kind = iota
	kindList        // []string; ';'-separated in CSV
	kindBool
	kindInt
)

// opSchema is one operation's payload fields, read from its struct tags.
type opSchema struct {
	taskType string
	fields   []string // JSON names, in declaration order
}

var (
	// schemas maps an op name to its schema.
	schemas = map[string]opSchema{}
	// kinds maps every payload and common field name to its kind; a name
	// has the same kind in every operation that uses it.
	kinds = map[string]kind{
		fieldOp: kindString, fieldKey: kindString, fieldQueue: kindString,
		fieldProcessAt: kindString, fieldMaxRetry: kindInt,
	}
)

func init() {
	for _, op := range tasks.All() {
		s := opSchema{taskType: op.TaskType()}
		t := reflect.TypeOf(op)
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			k := kindOf(f.Type)
			if prev, ok := kinds[name]; ok && prev != k {
				panic(fmt.Sprintf("bulk: field %s has two kinds", name)) // a change in internal/tasks
			}
			kinds[name] = k
			s.fields = append(s.fields, name)
		}
		schemas[op.Name()] = s
	}
	initFast()
}

func kindOf(t reflect.Type) kind {
	switch t.Kind() {
	case reflect.Slice:
		return kindList
	case reflect.Bool:
		return kindBool
	case reflect.Int:
		return kindInt
	case reflect.String:
		return kindString
	}
	panic(fmt.Sprintf("bulk: unsupported payload field type %s", t)) // a change in internal/tasks
}

// build turns the fields of one line into an Item, collecting every
// problem; pre holds problems found while converting the fields. It
// derives the key of a valid line without one when derive is set.
func build(line int, m map[string]json.RawMessage, pre []error, derive bool) Item {
	it := Item{Line: line}
	errs := pre
	name, sc, err := opOf(m)
	if err != nil {
		errs = append(errs, err)
	}
	payload := make(map[string]json.RawMessage, len(m))
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := m[k]
		switch k {
		case fieldOp:
		case fieldKey:
			if err := decodeString(k, v, &it.Key); err != nil {
				errs = append(errs, err)
			} else if err := tasks.CheckKey(it.Key); err != nil {
				errs = append(errs, err)
			}
		case fieldQueue:
			if err := decodeString(k, v, &it.Queue); err != nil {
				errs = append(errs, err)
			} else if err := tasks.CheckID(it.Queue); err != nil {
				errs = append(errs, fieldErr(k, err.Error()))
			}
		case fieldProcessAt:
			errs = appendErr(errs, decodeTime(k, v, &it.ProcessAt))
		case fieldMaxRetry:
			var n int
			if err := json.Unmarshal(v, &n); err != nil {
				errs = append(errs, fieldErr(k, "must be an integer"))
			} else if n < 0 {
				errs = append(errs, fieldErr(k, fmt.Sprintf("must not be negative, got %d", n)))
			} else {
				it.MaxRetry = &n
			}
		default:
			if sc.taskType != "" && !slices.Contains(sc.fields, k) {
				errs = append(errs, unknownField(k, fmt.Sprintf("unknown field for %s (it takes %s)", name, strings.Join(sc.fields, ", "))))
				continue
			}
			if sc.taskType == "" {
				if _, ok := kinds[k]; !ok {
					errs = append(errs, unknownField(k, "unknown field"))
				}
				continue
			}
			payload[k] = v
		}
	}
	if sc.taskType != "" {
		raw, err := json.Marshal(payload)
		if err != nil { // a RawMessage that is not JSON; cannot come from either format
			errs = append(errs, errorf(err.Error()))
		} else if op, err := tasks.Decode(sc.taskType, raw); err != nil {
			errs = append(errs, err)
		} else {
			it.Op = op
		}
	}
	if len(errs) > 0 {
		it.Op = nil
		it.Err = errors.Join(errs...)
		return it
	}
	if it.Key == "" && derive {
		it.Key = tasks.Key(it.Op)
	}
	return it
}

func opOf(m map[string]json.RawMessage) (string, opSchema, error) {
	raw, ok := m[fieldOp]
	if !ok {
		return "", opSchema{}, fieldErr(fieldOp, "missing (want one of "+strings.Join(tasks.Names, ", ")+")")
	}
	var name string
	if err := decodeString(fieldOp, raw, &name); err != nil {
		return "", opSchema{}, err
	}
	sc, ok := schemas[name]
	if !ok {
		return name, opSchema{}, fieldErr(fieldOp, fmt.Sprintf("unknown operation %q (want one of %s)", name, strings.Join(tasks.Names, ", ")))
	}
	return name, sc, nil
}

func decodeString(field string, raw json.RawMessage, dst *string) error {
	if err := json.Unmarshal(raw, dst); err != nil {
		return fieldErr(field, "must be a string")
	}
	return nil
}

func decodeTime(field string, raw json.RawMessage, dst *time.Time) error {
	var s string
	if err := decodeString(field, raw, &s); err != nil {
		return err
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return fieldErr(field, fmt.Sprintf("must be an RFC 3339 time like 2030-01-06T09:00:00Z, got %q", s))
	}
	*dst = t
	return nil
}

func appendErr(errs []error, err error) []error {
	if err != nil {
		return append(errs, err)
	}
	return errs
}
