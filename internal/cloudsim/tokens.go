package cloudsim

import (
	"encoding/json"
	"fmt"
	"time"
)

// TokenTTLs are the lifetimes of the tokens the simulator issues. Shorten
// them to exercise refresh; zero fields take the defaults.
type TokenTTLs struct {
	IAM     time.Duration // IAM user token (X-Subject-Token); default 24 h
	Access  time.Duration // Meeting access token (X-Access-Token); default 12 h
	Control time.Duration // Meeting control token; default 30 min
}

// Default token lifetimes.
const (
	DefaultIAMTTL     = 24 * time.Hour
	DefaultAccessTTL  = 12 * time.Hour
	DefaultControlTTL = 30 * time.Minute
)

// maxTokensPerUser is how many access tokens one user may hold; issuing one
// more revokes the oldest, as the real service does.
const maxTokensPerUser = 64

func (t TokenTTLs) withDefaults() TokenTTLs {
	if t.IAM <= 0 {
		t.IAM = DefaultIAMTTL
	}
	if t.Access <= 0 {
		t.Access = DefaultAccessTTL
	}
	if t.Control <= 0 {
		t.Control = DefaultControlTTL
	}
	return t
}

// MarshalJSON writes the lifetimes as Go duration strings
// ({"iam":"24h0m0s","access":"12h0m0s","control":"30m0s"}).
func (t TokenTTLs) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{"iam": t.IAM.String(), "access": t.Access.String(), "control": t.Control.String()})
}

// UnmarshalJSON reads lifetimes written as Go duration strings; missing
// fields stay zero.
func (t *TokenTTLs) UnmarshalJSON(b []byte) error {
	var raw struct{ IAM, Access, Control string }
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("token ttls: %w", err)
	}
	for _, f := range []struct {
		s   string
		dst *time.Duration
	}{{raw.IAM, &t.IAM}, {raw.Access, &t.Access}, {raw.Control, &t.Control}} {
		if f.s == "" {
			continue
		}
		d, err := time.ParseDuration(f.s)
		if err != nil {
			return fmt.Errorf("token ttls: %w", err)
		}
		*f.dst = d
	}
	return nil
}

// SetTokenTTLs changes the lifetimes of tokens issued from now on; zero
// fields take the defaults.
func (s *Sim) SetTokenTTLs(t TokenTTLs) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ttls = t.withDefaults()
}

// TokenTTLs returns the lifetimes in force.
func (s *Sim) TokenTTLs() TokenTTLs {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ttls
}

// RevokeTokens invalidates every issued token at once, as a password change
// would: clients must log in again.
func (s *Sim) RevokeTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens = newTokenStore()
}

type accessToken struct {
	user    string
	expires time.Time
}

type controlToken struct {
	conference string
	expires    time.Time
}

type tokenStore struct {
	iam     map[string]time.Time
	access  map[string]accessToken
	byUser  map[string][]string // access tokens per user, oldest first
	control map[string]controlToken
}

func newTokenStore() tokenStore {
	return tokenStore{
		iam:     map[string]time.Time{},
		access:  map[string]accessToken{},
		byUser:  map[string][]string{},
		control: map[string]controlToken{},
	}
}

// issueIAMLocked returns a new IAM token, when it was issued and when it
// expires.
func (s *Sim) issueIAMLocked() (tok string, issued, expires time.Time) {
	tok = "MIIsim" + s.randHexLocked(40)
	issued = s.now()
	expires = issued.Add(s.ttls.IAM)
	s.tokens.iam[tok] = expires
	return tok, issued, expires
}

// validIAM reports whether an IAM token is known and not expired.
func (s *Sim) validIAM(tok string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.tokens.iam[tok]
	if ok && !s.now().Before(exp) {
		delete(s.tokens.iam, tok)
		return false
	}
	return ok
}

// issueAccessLocked returns a new access token for user, revoking the
// user's oldest when it holds too many.
func (s *Sim) issueAccessLocked(user string) (string, time.Time) {
	tok := "stb" + s.randHexLocked(18)
	exp := s.now().Add(s.ttls.Access)
	s.tokens.access[tok] = accessToken{user: user, expires: exp}
	live := s.tokens.byUser[user][:0]
	for _, t := range s.tokens.byUser[user] {
		if _, ok := s.tokens.access[t]; ok {
			live = append(live, t)
		}
	}
	live = append(live, tok)
	for len(live) > maxTokensPerUser {
		delete(s.tokens.access, live[0])
		live = live[1:]
	}
	s.tokens.byUser[user] = live
	return tok, exp
}

// validAccess reports whether an access token is known and not expired.
func (s *Sim) validAccess(tok string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	at, ok := s.tokens.access[tok]
	if ok && !s.now().Before(at.expires) {
		delete(s.tokens.access, tok)
		return false
	}
	return ok
}

// issueControlLocked returns a new control token for a conference.
func (s *Sim) issueControlLocked(conf string) (string, time.Time) {
	tok := "stb" + s.randHexLocked(24)
	exp := s.now().Add(s.ttls.Control)
	s.tokens.control[tok] = controlToken{conference: conf, expires: exp}
	return tok, exp
}

// validControlLocked reports whether a control token is known, unexpired
// and issued for conf. Callers hold s.mu.
func (s *Sim) validControlLocked(tok, conf string) bool {
	ct, ok := s.tokens.control[tok]
	if ok && !s.now().Before(ct.expires) {
		delete(s.tokens.control, tok)
		return false
	}
	return ok && ct.conference == conf
}
