package bulk

import (
	"time"
	"unicode/utf8"

	"github.com/meetops/meetops"
	"github.com/meetops/meetops/internal/tasks"
)

// The fast path of JSONL parsing. Nearly every line of a large input is a
// valid flat object of known fields, each once, with plain values:
// strings without escapes, small integers, booleans, lists of such
// strings. parseFast decodes those in one pass over the bytes, without
// encoding/json's reflection and the map of raw values of the general
// path. It declines everything else — an escape, null, a number with a
// fraction, a field twice or unknown to the operation, any invalid value —
// and the general path (build) takes the line: it stays the one reference
// for what a line means and for every error message. The tests (and
// FuzzFastPathAgrees) check that both paths give the same Item for every
// line the fast path accepts.

// fastField identifies a field the fast path knows.
type fastField uint8

// The fields the fast path knows: the common ones, then every payload
// field.
const (
	fOp fastField = iota
	fKey
	fQueue
	fProcessAt
	fMaxRetry
	fAppID
	fRoomID
	fConferenceID
	fEndOngoing
	fUserUUID
	fParticipantIDs
	fAccount
	fAccountType
	fVMRIDs
	numFastFields
)

// fastFields names the fast fields and gives their kind.
var fastFields = [numFastFields]struct {
	name string
	kind kind
}{
	fOp: {fieldOp, kindString}, fKey: {fieldKey, kindString}, fQueue: {fieldQueue, kindString},
	fProcessAt: {fieldProcessAt, kindString}, fMaxRetry: {fieldMaxRetry, kindInt},
	fAppID: {"app_id", kindString}, fRoomID: {"room_id", kindString},
	fConferenceID: {"conference_id", kindString}, fEndOngoing: {"end_ongoing", kindBool},
	fUserUUID: {"user_uuid", kindString}, fParticipantIDs: {"participant_ids", kindList},
	fAccount: {"account", kindString}, fAccountType: {"account_type", kindInt}, fVMRIDs: {"vmr_ids", kindList},
}

// fastFieldOf returns the fast field named name (fastFields spelt as a
// switch, which is faster than a map).
func fastFieldOf(name []byte) (fastField, bool) {
	switch string(name) {
	case fieldOp:
		return fOp, true
	case fieldKey:
		return fKey, true
	case fieldQueue:
		return fQueue, true
	case fieldProcessAt:
		return fProcessAt, true
	case fieldMaxRetry:
		return fMaxRetry, true
	case "app_id":
		return fAppID, true
	case "room_id":
		return fRoomID, true
	case "conference_id":
		return fConferenceID, true
	case "end_ongoing":
		return fEndOngoing, true
	case "user_uuid":
		return fUserUUID, true
	case "participant_ids":
		return fParticipantIDs, true
	case "account":
		return fAccount, true
	case "account_type":
		return fAccountType, true
	case "vmr_ids":
		return fVMRIDs, true
	}
	return 0, false
}

// fastOpKind identifies an operation the fast path builds.
type fastOpKind uint8

// The operations the fast path builds.
const (
	opDismiss fastOpKind = iota
	opDisable
	opCancel
	opHangUp
	opReclaim
	numFastOps
)

// fastOpOf returns the operation named name.
func fastOpOf(name []byte) (fastOpKind, bool) {
	switch string(name) {
	case tasks.NameDismiss:
		return opDismiss, true
	case tasks.NameDisable:
		return opDisable, true
	case tasks.NameCancel:
		return opCancel, true
	case tasks.NameHangUp:
		return opHangUp, true
	case tasks.NameReclaim:
		return opReclaim, true
	}
	return 0, false
}

// fastOp builds operation k from l.
func fastOp(k fastOpKind, l *fastLine) meetops.Op {
	switch k {
	case opDismiss:
		return meetops.Dismiss{AppID: l.str[fAppID], RoomID: l.str[fRoomID]}
	case opDisable:
		return meetops.Disable{AppID: l.str[fAppID]}
	case opCancel:
		return meetops.Cancel{ConferenceID: l.str[fConferenceID], EndOngoing: l.flag[fEndOngoing], UserUUID: l.str[fUserUUID]}
	case opHangUp:
		return meetops.HangUp{ConferenceID: l.str[fConferenceID], ParticipantIDs: l.list[fParticipantIDs]}
	case opReclaim:
		return meetops.Reclaim{Account: l.str[fAccount], AccountType: l.num[fAccountType], VMRIDs: l.list[fVMRIDs]}
	}
	return nil
}

// fastOps gives, for each operation, the set of fields a line of it may
// carry (bit i for fastField i); 0 when the fast path leaves the
// operation to the general path.
var fastOps [numFastOps]uint32

// initFast derives fastOps from the schemas, leaving out any operation
// with a field the fast path does not know as its schema does (a change
// in internal/tasks): the general path takes its lines. schema.go's init
// calls it, after building the schemas.
func initFast() {
	const common = 1<<fOp | 1<<fKey | 1<<fQueue | 1<<fProcessAt | 1<<fMaxRetry
	for name, sc := range schemas {
		k, ok := fastOpOf([]byte(name))
		mask := uint32(common)
		for _, field := range sc.fields {
			id, known := fastFieldOf([]byte(field))
			ok = ok && known && fastFields[id].kind == kinds[field]
			mask |= 1 << id
		}
		if ok {
			fastOps[k] = mask
		}
	}
}

// fastLine holds the values of one line by field.
type fastLine struct {
	seen  uint32
	str   [numFastFields]string
	list  [numFastFields][]string
	num   [numFastFields]int
	flag  [numFastFields]bool
	opRaw []byte // the op's name, in the line
}

// parseFast returns the Item of a valid line b (trimmed, starting with
// '{') that takes the fast path, deriving the key when derive is set and
// the line has none; ok is false when the general path must take the line.
func parseFast(line int, b []byte, derive bool) (it Item, ok bool) {
	var l fastLine
	if !l.scan(b) || l.seen&(1<<fOp) == 0 {
		return Item{}, false
	}
	op, known := fastOpOf(l.opRaw)
	if !known || fastOps[op] == 0 || l.seen&^fastOps[op] != 0 {
		return Item{}, false
	}
	it.Line = line
	if l.seen&(1<<fKey) != 0 {
		if tasks.CheckKey(l.str[fKey]) != nil {
			return Item{}, false
		}
		it.Key = l.str[fKey]
	}
	if l.seen&(1<<fQueue) != 0 {
		if tasks.CheckID(l.str[fQueue]) != nil {
			return Item{}, false
		}
		it.Queue = l.str[fQueue]
	}
	if l.seen&(1<<fProcessAt) != 0 {
		t, err := time.Parse(time.RFC3339, l.str[fProcessAt])
		if err != nil {
			return Item{}, false
		}
		it.ProcessAt = t
	}
	if l.seen&(1<<fMaxRetry) != 0 {
		n := l.num[fMaxRetry]
		if n < 0 {
			return Item{}, false
		}
		it.MaxRetry = &n
	}
	it.Op = fastOp(op, &l)
	if it.Op.Validate() != nil {
		return Item{}, false
	}
	if it.Key == "" && derive {
		it.Key = tasks.Key(it.Op)
	}
	return it, true
}

// scan reads the flat object b into l; false means b is not one the fast
// path takes.
func (l *fastLine) scan(b []byte) bool {
	s := scanner{b: b}
	if !s.byte('{') {
		return false
	}
	s.space()
	if s.peek() == '}' {
		return false // empty: the general path says what is missing
	}
	for {
		s.space()
		start, end, ok := s.str()
		if !ok {
			return false
		}
		id, ok := fastFieldOf(b[start:end])
		if !ok || l.seen&(1<<id) != 0 {
			return false
		}
		l.seen |= 1 << id
		s.space()
		if !s.byte(':') {
			return false
		}
		s.space()
		if !l.value(&s, id) {
			return false
		}
		s.space()
		if s.byte('}') {
			return s.i == len(b)
		}
		if !s.byte(',') {
			return false
		}
	}
}

// value reads the value of field id.
func (l *fastLine) value(s *scanner, id fastField) bool {
	switch fastFields[id].kind {
	case kindString:
		start, end, ok := s.str()
		if !ok {
			return false
		}
		if id == fOp {
			l.opRaw = s.b[start:end]
		} else {
			l.str[id] = s.text(start, end)
		}
		return true
	case kindList:
		list, ok := s.list()
		l.list[id] = list
		return ok
	case kindBool:
		v, ok := s.bool()
		l.flag[id] = v
		return ok
	case kindInt:
		n, ok := s.int()
		l.num[id] = n
		return ok
	}
	return false
}

// scanner reads the plain JSON values the fast path takes.
type scanner struct {
	b []byte
	i int
	// line is b as a string, made on first use: every string value is a
	// substring of it, one allocation for the whole line.
	line string
}

func (s *scanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// byte consumes c when it is next.
func (s *scanner) byte(c byte) bool {
	if s.peek() != c {
		return false
	}
	s.i++
	return true
}

// space skips JSON white space.
func (s *scanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\r', '\n':
			s.i++
		default:
			return
		}
	}
}

// str reads a string without escapes or control characters, in valid
// UTF-8 (which encoding/json would copy as it is), and returns the bounds
// of its contents.
func (s *scanner) str() (start, end int, ok bool) {
	if !s.byte('"') {
		return 0, 0, false
	}
	start, ascii := s.i, true
	for j := start; j < len(s.b); j++ {
		c := s.b[j]
		if plain[c] {
			continue
		}
		switch {
		case c == '"':
			if !ascii && !utf8.Valid(s.b[start:j]) {
				return 0, 0, false // encoding/json replaces invalid bytes
			}
			s.i = j + 1
			return start, j, true
		case c >= utf8.RuneSelf:
			ascii = false
		default: // an escape or a control character
			return 0, 0, false
		}
	}
	return 0, 0, false
}

// plain tells the bytes that stand for themselves in a JSON string: the
// printable ASCII ones but the quote and the backslash.
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// text returns b[start:end] as a string.
func (s *scanner) text(start, end int) string {
	if s.line == "" {
		s.line = string(s.b)
	}
	return s.line[start:end]
}

// list reads an array of strings.
func (s *scanner) list() ([]string, bool) {
	if !s.byte('[') {
		return nil, false
	}
	s.space()
	list := []string{}
	if s.byte(']') {
		return list, true
	}
	for {
		s.space()
		start, end, ok := s.str()
		if !ok {
			return nil, false
		}
		list = append(list, s.text(start, end))
		s.space()
		if s.byte(']') {
			return list, true
		}
		if !s.byte(',') {
			return nil, false
		}
	}
}

// bool reads true or false.
func (s *scanner) bool() (v, ok bool) {
	rest := s.b[s.i:]
	switch {
	case len(rest) >= 4 && string(rest[:4]) == "true":
		s.i += 4
		return true, true
	case len(rest) >= 5 && string(rest[:5]) == "false":
		s.i += 5
		return false, true
	}
	return false, false
}

// int reads an integer without fraction nor exponent, of at most 18
// digits (so that it cannot overflow); what follows is checked by the
// caller (a '.', 'e' or digit there makes the line decline).
func (s *scanner) int() (int, bool) {
	neg := s.byte('-')
	n, digits := 0, 0
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		if digits > 0 && n == 0 {
			return 0, false // a leading zero: not JSON
		}
		n = n*10 + int(s.b[s.i]-'0')
		s.i++
		digits++
	}
	if digits == 0 || digits > 18 {
		return 0, false
	}
	if neg {
		n = -n
	}
	return n, true
}
