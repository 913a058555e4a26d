package cloudsim

import (
	"maps"
	"strings"
)

// Stats is a snapshot of what the simulator has seen since it was created
// or last [Sim.Reset].
type Stats struct {
	// Requests per operation ("unknown" for requests matching no API),
	// including rejected ones.
	Requests map[string]OpStats `json:"requests"`
	// Effects counts per effect key how many times a change was applied,
	// e.g. "dismiss:<app>/<room>": 1.
	Effects map[string]int `json:"effects"`
	// Logins counts successful authentications per endpoint ("iam_token",
	// "appauth", "account_auth", "control_token").
	Logins map[string]int `json:"logins"`
}

// OpStats counts the requests of one operation.
type OpStats struct {
	Total int `json:"total"`
	// ByStatus counts answers by HTTP status ("202", "503") or by what
	// replaced the answer: "reset", "hang", "canceled" (the client gave up
	// during injected latency).
	ByStatus map[string]int `json:"by_status"`
}

// Count is the number of requests to op.
func (st Stats) Count(op string) int { return st.Requests[op].Total }

// CountStatus is the number of requests to op answered with status (an HTTP
// status such as "202", or "reset", "hang", "canceled").
func (st Stats) CountStatus(op, status string) int { return st.Requests[op].ByStatus[status] }

// Effect is the number of times the effect key was applied.
func (st Stats) Effect(key string) int { return st.Effects[key] }

// EffectsOf sums the effects of one operation (keys starting "op:").
func (st Stats) EffectsOf(op string) int {
	n := 0
	for k, v := range st.Effects {
		if strings.HasPrefix(k, op+":") {
			n += v
		}
	}
	return n
}

type stats struct {
	requests map[string]*OpStats
	effects  map[string]int
	logins   map[string]int
}

func newStats() stats {
	return stats{requests: map[string]*OpStats{}, effects: map[string]int{}, logins: map[string]int{}}
}

func (st *stats) request(op, status string) {
	o := st.requests[op]
	if o == nil {
		o = &OpStats{ByStatus: map[string]int{}}
		st.requests[op] = o
	}
	o.Total++
	o.ByStatus[status]++
}

func (st *stats) effect(key string) { st.effects[key]++ }

func (st *stats) login(endpoint string) { st.logins[endpoint]++ }

// Stats returns a snapshot of the counters.
func (s *Sim) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := Stats{Requests: map[string]OpStats{}, Effects: maps.Clone(s.stats.effects), Logins: maps.Clone(s.stats.logins)}
	for op, o := range s.stats.requests {
		out.Requests[op] = OpStats{Total: o.Total, ByStatus: maps.Clone(o.ByStatus)}
	}
	return out
}

// record counts a finished (or hanging) request and appends it to the log.
func (s *Sim) record(e LogEntry, status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e.Time = s.now()
	s.stats.request(e.Op, status)
	s.log.add(e)
}

// Reset clears the statistics, the request log, the faults and AK
// lock-outs. The world and issued tokens stay (see [Sim.ResetState]).
func (s *Sim) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats = newStats()
	s.log = newRing(s.logSize)
	clear(s.faults)
	clear(s.locks)
}
