package tasks

import "unicode/utf8"

// The fast path of Decode. Nearly every payload a worker decodes is one a
// producer wrote with Prepare: a flat object of known fields, each once,
// with plain values (strings without escapes, small integers, booleans,
// lists of such strings). decodeFast reads those in one pass over the
// bytes, without encoding/json's reflection and decoder buffer. It
// declines everything else — an escape, null, a number with a fraction or
// exponent, a field twice, a field unknown to the operation (or spelt in
// another case), invalid UTF-8, trailing data — and decodeStrict takes the
// payload: it stays the one reference for what a payload means and for
// every error message. FuzzFastDecodeAgrees checks that both give the same
// operation for every payload the fast path accepts.

// decodeFast decodes data into op (a pointer from newOp) and reports
// whether it could; when it could not, op may be partly set.
func decodeFast(data []byte, op Op) bool {
	s := fastScanner{b: data}
	if !s.consume('{') {
		return false
	}
	var seen uint8 // one bit per field of op, in the order of fieldIndex
	if !s.consume('}') {
		for {
			name, ok := s.str()
			if !ok || !s.consume(':') {
				return false
			}
			i, ok := setField(op, name, &s)
			if !ok || seen&(1<<i) != 0 {
				return false
			}
			seen |= 1 << i
			if s.consume(',') {
				continue
			}
			if s.consume('}') {
				break
			}
			return false
		}
	}
	s.space()
	return s.i == len(s.b)
}

// setField reads the value of field name into op and returns the field's
// index in op (for the duplicate check).
func setField(op Op, name string, s *fastScanner) (int, bool) {
	var ok bool
	switch o := op.(type) {
	case *Dismiss:
		switch name {
		case "app_id":
			o.AppID, ok = s.str()
			return 0, ok
		case "room_id":
			o.RoomID, ok = s.str()
			return 1, ok
		}
	case *Disable:
		if name == "app_id" {
			o.AppID, ok = s.str()
			return 0, ok
		}
	case *Cancel:
		switch name {
		case "conference_id":
			o.ConferenceID, ok = s.str()
			return 0, ok
		case "end_ongoing":
			o.EndOngoing, ok = s.boolean()
			return 1, ok
		case "user_uuid":
			o.UserUUID, ok = s.str()
			return 2, ok
		}
	case *HangUp:
		switch name {
		case "conference_id":
			o.ConferenceID, ok = s.str()
			return 0, ok
		case "participant_ids":
			o.ParticipantIDs, ok = s.list()
			return 1, ok
		}
	case *Reclaim:
		switch name {
		case "account":
			o.Account, ok = s.str()
			return 0, ok
		case "account_type":
			o.AccountType, ok = s.int()
			return 1, ok
		case "vmr_ids":
			o.VMRIDs, ok = s.list()
			return 2, ok
		}
	}
	return 0, false
}

// fastScanner reads JSON tokens from b, skipping the whitespace before
// each.
type fastScanner struct {
	b []byte
	i int
}

func (s *fastScanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// consume reads c if it is the next token.
func (s *fastScanner) consume(c byte) bool {
	s.space()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// str reads a string without escapes or control characters, of valid
// UTF-8.
func (s *fastScanner) str() (string, bool) {
	if !s.consume('"') {
		return "", false
	}
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			v := s.b[start:s.i]
			s.i++
			if !utf8.Valid(v) {
				return "", false
			}
			return string(v), true
		case c == '\\' || c < 0x20:
			return "", false
		}
		s.i++
	}
	return "", false
}

// int reads an integer of at most 9 digits (no fraction, no exponent).
func (s *fastScanner) int() (int, bool) {
	s.space()
	neg := s.i < len(s.b) && s.b[s.i] == '-'
	if neg {
		s.i++
	}
	start, n := s.i, 0
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		n = n*10 + int(s.b[s.i]-'0')
		s.i++
	}
	digits := s.i - start
	if digits == 0 || digits > 9 || (digits > 1 && s.b[start] == '0') {
		return 0, false
	}
	if s.i < len(s.b) {
		switch s.b[s.i] {
		case '.', 'e', 'E':
			return 0, false
		}
	}
	if neg {
		n = -n
	}
	return n, true
}

func (s *fastScanner) boolean() (bool, bool) {
	s.space()
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

// list reads an array of strings as str does; [] is an empty, non-nil
// slice, as encoding/json decodes it.
func (s *fastScanner) list() ([]string, bool) {
	if !s.consume('[') {
		return nil, false
	}
	out := []string{}
	if s.consume(']') {
		return out, true
	}
	for {
		v, ok := s.str()
		if !ok {
			return nil, false
		}
		out = append(out, v)
		if s.consume(',') {
			continue
		}
		return out, s.consume(']')
	}
}
