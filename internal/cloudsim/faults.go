package cloudsim

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"
)

// Fault outcomes: what a request gets instead of (or after) its real answer.
// Besides these, an outcome may be an HTTP status: "500", "502", "503",
// "429" (with Retry-After when [Fault.RetryAfter] is set) or "401" (a
// token-expired answer in the operation's vocabulary).
const (
	OutcomeOK    = "ok"    // the real answer
	OutcomeReset = "reset" // the connection is reset without an answer
	OutcomeHang  = "hang"  // no answer until the client gives up
	// OutcomeEcho is a 400 whose JSON error_msg echoes the request: its
	// body, query and credential headers, as a careless gateway might.
	// It tests that a client never lets what it sent leave in an error.
	OutcomeEcho = "echo"
	// OutcomeEchoText is OutcomeEcho with a text/plain body (not a JSON
	// error object).
	OutcomeEchoText = "echo_text"
)

// Fault is the fault injected into one operation. Every request first waits
// its latency, then takes the next entry of Script; when the script is used
// up, it fails with Fail at probability Rate, and otherwise gets its real
// answer.
type Fault struct {
	// Script lists outcomes consumed one per request, e.g.
	// ["503", "503", "ok"].
	Script []string
	// Rate is the probability (0..1) that a request past the script fails
	// with Fail.
	Rate float64
	// Fail is the outcome for Rate: "500", "502", "503", "429", "401",
	// "reset", "hang", "echo" or "echo_text".
	Fail string
	// RetryAfter is the Retry-After header (seconds) of a 429; 0 sends none.
	RetryAfter int
	// Latency delays every request; with LatencyMax > Latency the delay is
	// uniform in [Latency, LatencyMax].
	Latency, LatencyMax time.Duration
	// AfterEffect applies the operation before failing, so the client sees
	// an error (or a reset or hang) although the change took place.
	AfterEffect bool
}

type faultJSON struct {
	Script      []string `json:"script,omitempty"`
	Rate        float64  `json:"rate,omitempty"`
	Fail        string   `json:"fail,omitempty"`
	RetryAfter  int      `json:"retry_after,omitempty"`
	Latency     string   `json:"latency,omitempty"`
	LatencyMax  string   `json:"latency_max,omitempty"`
	AfterEffect bool     `json:"after_effect,omitempty"`
}

// MarshalJSON writes a Fault in snake case with durations as Go duration
// strings ("150ms").
func (f Fault) MarshalJSON() ([]byte, error) {
	j := faultJSON{Script: f.Script, Rate: f.Rate, Fail: f.Fail, RetryAfter: f.RetryAfter, AfterEffect: f.AfterEffect}
	if f.Latency > 0 {
		j.Latency = f.Latency.String()
	}
	if f.LatencyMax > 0 {
		j.LatencyMax = f.LatencyMax.String()
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads the form MarshalJSON writes; unknown fields are an
// error.
func (f *Fault) UnmarshalJSON(b []byte) error {
	var j faultJSON
	if err := decodeStrict(b, &j); err != nil {
		return fmt.Errorf("fault: %w", err)
	}
	out := Fault{Script: j.Script, Rate: j.Rate, Fail: j.Fail, RetryAfter: j.RetryAfter, AfterEffect: j.AfterEffect}
	for _, d := range []struct {
		s   string
		dst *time.Duration
	}{{j.Latency, &out.Latency}, {j.LatencyMax, &out.LatencyMax}} {
		if d.s == "" {
			continue
		}
		v, err := time.ParseDuration(d.s)
		if err != nil {
			return fmt.Errorf("fault: %w", err)
		}
		*d.dst = v
	}
	*f = out
	return nil
}

func validOutcome(o string) bool {
	switch o {
	case OutcomeOK, OutcomeReset, OutcomeHang, OutcomeEcho, OutcomeEchoText, "500", "502", "503", "429", "401":
		return true
	}
	return false
}

func (f Fault) validate() error {
	for _, o := range f.Script {
		if !validOutcome(o) {
			return fmt.Errorf("unknown outcome %q in script", o)
		}
	}
	if f.Rate < 0 || f.Rate > 1 {
		return fmt.Errorf("rate %v is not within 0..1", f.Rate)
	}
	if f.Rate > 0 && (f.Fail == "" || f.Fail == OutcomeOK || !validOutcome(f.Fail)) {
		return fmt.Errorf("rate needs a failing outcome in fail, not %q", f.Fail)
	}
	if f.RetryAfter < 0 || f.Latency < 0 || f.LatencyMax < 0 {
		return fmt.Errorf("negative retry_after or latency")
	}
	return nil
}

type faultState struct {
	Fault
	next int // index of the next script entry
}

// plan is what happens to one request.
type plan struct {
	outcome     string
	latency     time.Duration
	retryAfter  int
	afterEffect bool
}

// label describes a plan for the request log ("" when nothing is injected).
func (p plan) label() string {
	if p.outcome == OutcomeOK {
		if p.latency > 0 {
			return "latency"
		}
		return ""
	}
	if p.afterEffect {
		return p.outcome + " after effect"
	}
	return p.outcome
}

// planLocked decides the fault for a request to op. Callers hold s.mu.
func (s *Sim) planLocked(op string) plan {
	fs := s.faults[op]
	if fs == nil {
		return plan{outcome: OutcomeOK}
	}
	p := plan{outcome: OutcomeOK, latency: fs.Latency, retryAfter: fs.RetryAfter, afterEffect: fs.AfterEffect}
	switch {
	case fs.next < len(fs.Script):
		p.outcome = fs.Script[fs.next]
		fs.next++
	case fs.Rate > 0 && s.rng.Float64() < fs.Rate:
		p.outcome = fs.Fail
	}
	if fs.LatencyMax > fs.Latency {
		p.latency += time.Duration(s.rng.Int64N(int64(fs.LatencyMax-fs.Latency) + 1))
	}
	return p
}

// SetFault injects f into op (one of [Ops]), replacing its previous fault
// and restarting its script. The zero Fault removes it.
func (s *Sim) SetFault(op string, f Fault) error {
	if !isOp(op) {
		return fmt.Errorf("cloudsim: unknown operation %q", op)
	}
	if err := f.validate(); err != nil {
		return fmt.Errorf("cloudsim: fault for %s: %w", op, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.isZero() {
		delete(s.faults, op)
		return nil
	}
	f.Script = slices.Clone(f.Script)
	s.faults[op] = &faultState{Fault: f}
	return nil
}

func (f Fault) isZero() bool {
	return len(f.Script) == 0 && f.Rate == 0 && f.Latency == 0 && f.LatencyMax == 0
}

// ClearFaults removes every fault.
func (s *Sim) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.faults)
}

// Faults returns the faults in force, each with the part of its script
// not yet consumed (a fault whose script is used up and that has no rate or
// latency is left out).
func (s *Sim) Faults() map[string]Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]Fault, len(s.faults))
	for op, fs := range s.faults {
		f := fs.Fault
		f.Script = slices.Clone(fs.Script[fs.next:])
		if len(f.Script) == 0 {
			f.Script = nil
		}
		if !f.isZero() {
			out[op] = f
		}
	}
	return out
}

// LoadFaults replaces every fault with those of a JSON object mapping
// operation names to faults, e.g.
//
//	{"dismiss": {"script": ["503", "ok"]},
//	 "hangup": {"rate": 0.2, "fail": "429", "retry_after": 2, "latency": "50ms", "latency_max": "200ms"}}
//
// On any error the faults in force stay.
func (s *Sim) LoadFaults(r io.Reader) error {
	var m map[string]Fault
	b, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("cloudsim: reading faults: %w", err)
	}
	if err := decodeStrict(b, &m); err != nil {
		return fmt.Errorf("cloudsim: decoding faults: %w", err)
	}
	for _, op := range slices.Sorted(maps.Keys(m)) {
		if !isOp(op) {
			return fmt.Errorf("cloudsim: faults: unknown operation %q (want one of %v)", op, Ops())
		}
		if err := m[op].validate(); err != nil {
			return fmt.Errorf("cloudsim: faults: %s: %w", op, err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.faults)
	for op, f := range m {
		if !f.isZero() {
			s.faults[op] = &faultState{Fault: f}
		}
	}
	return nil
}
