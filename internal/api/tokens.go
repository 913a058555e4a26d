package api

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Scope is what a token may do.
type Scope string

// The scopes. Admin includes Enqueue.
const (
	// ScopeEnqueue enqueues operations and batches and reads their status.
	ScopeEnqueue Scope = "enqueue"
	// ScopeAdmin also lists, requeues and purges dead letters.
	ScopeAdmin Scope = "admin"
)

// allows reports whether a token of scope s may use a route that needs
// need.
func (s Scope) allows(need Scope) bool { return s == ScopeAdmin || s == need }

// Token is one API token as the server holds it: its name, its scope and
// the SHA-256 of its bytes, never the token itself.
type Token struct {
	// Name identifies the token's holder: it is logged on every accepted
	// request (the token never is) and kept as the origin of what the
	// token enqueues. 1–64 of A–Z a–z 0–9 . _ @ -.
	Name string
	// Scope is ScopeEnqueue or ScopeAdmin.
	Scope Scope
	// Hash is the SHA-256 of the token.
	Hash [sha256.Size]byte
}

// hashPrefix starts the hash field of a token line.
const hashPrefix = "sha256:"

// maxNameLen bounds a token's name.
const maxNameLen = 64

// checkName reports a name that is not 1–64 of A–Z a–z 0–9 . _ @ -, so
// that names are safe in logs, headers and origins.
func checkName(name string) error {
	if name == "" || len(name) > maxNameLen {
		return fmt.Errorf("name must be 1 to %d characters", maxNameLen)
	}
	for _, r := range name {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || strings.ContainsRune("._@-", r)) {
			return errors.New("name may hold only A-Z a-z 0-9 . _ @ -")
		}
	}
	return nil
}

// ParseTokens parses token lines, "NAME SCOPE sha256:HEX" each (HEX the
// hex SHA-256 of the token's bytes), with blank lines and "#" comments
// skipped; sep separates lines ('\n' for a file, ',' for API_TOKENS). It
// reports every bad line, one error each, prefixed with source and the
// line's number, and never quotes a line's hash field (someone may have
// put a token there instead of its hash). Names and hashes must be unique.
func ParseTokens(source, text string, sep rune) ([]Token, error) {
	var tokens []Token
	var errs []error
	names := map[string]int{}
	hashes := map[[sha256.Size]byte]int{}
	for i, line := range strings.Split(text, string(sep)) {
		n := i + 1
		bad := func(format string, args ...any) {
			errs = append(errs, fmt.Errorf("%s: line %d: %s", source, n, fmt.Sprintf(format, args...)))
		}
		if c := strings.IndexByte(line, '#'); c >= 0 {
			line = line[:c]
		}
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if len(fields) != 3 {
			bad("want NAME SCOPE sha256:HEX, got %d fields", len(fields))
			continue
		}
		name, scope, hash := fields[0], Scope(fields[1]), fields[2]
		if err := checkName(name); err != nil {
			bad("%v", err)
			continue
		}
		t := Token{Name: name, Scope: scope}
		if scope != ScopeEnqueue && scope != ScopeAdmin {
			bad("token %s: scope must be enqueue or admin, got %q", name, scope)
		}
		hexHash, ok := strings.CutPrefix(hash, hashPrefix)
		b, err := hex.DecodeString(hexHash)
		switch {
		case !ok:
			bad("token %s: want sha256:HEX, the token's SHA-256, never the token itself", name)
		case err != nil || len(b) != sha256.Size:
			bad("token %s: want sha256: and 64 hex digits", name)
		default:
			copy(t.Hash[:], b)
			if prev, dup := hashes[t.Hash]; dup {
				bad("token %s: the same hash as line %d", name, prev)
			}
			hashes[t.Hash] = n
		}
		if prev, dup := names[name]; dup {
			bad("token %s: the name is already used on line %d", name, prev)
		}
		names[name] = n
		tokens = append(tokens, t)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return tokens, nil
}

// Line returns t as a token line, "NAME SCOPE sha256:HEX".
func (t Token) Line() string {
	return t.Name + " " + string(t.Scope) + " " + hashPrefix + hex.EncodeToString(t.Hash[:])
}

// tokenPrefix starts every token NewToken makes, so that a leaked one is
// recognisable (secret scanners, logs).
const tokenPrefix = "mo_"

// NewToken makes a random token (256 bits, base64url, prefixed "mo_")
// named name with scope, and returns the token, to give its holder, and
// the Token to configure, which holds only its hash.
func NewToken(name string, scope Scope) (string, Token, error) {
	if err := checkName(name); err != nil {
		return "", Token{}, err
	}
	if scope != ScopeEnqueue && scope != ScopeAdmin {
		return "", Token{}, fmt.Errorf("scope must be enqueue or admin, got %q", scope)
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", Token{}, fmt.Errorf("random token: %w", err)
	}
	secret := tokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return secret, Token{Name: name, Scope: scope, Hash: sha256.Sum256([]byte(secret))}, nil
}

// tokenSet finds the token a request presents.
type tokenSet struct {
	tokens []Token
}

// lookup returns the configured token whose hash is the SHA-256 of
// presented. It hashes presented once and compares the digest with every
// configured hash in constant time, without stopping at a match, so the
// time it takes says nothing about which token, or how much of one,
// matched.
func (s tokenSet) lookup(presented string) (Token, bool) {
	sum := sha256.Sum256([]byte(presented))
	found := -1
	for i := range s.tokens {
		if subtle.ConstantTimeCompare(sum[:], s.tokens[i].Hash[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return Token{}, false
	}
	return s.tokens[found], true
}
