package api

import (
	"fmt"
	"net/http"
	"strings"
)

// realm names the API in WWW-Authenticate challenges.
const realm = `Bearer realm="meetops"`

// authenticate returns the token the request presents as
// "Authorization: Bearer TOKEN" when it is configured and has scope need.
// A missing, malformed or unknown token is 401 with a Bearer challenge
// (RFC 6750: error="invalid_request" or "invalid_token"); a token without
// the scope is 403 with error="insufficient_scope". No answer, log line
// or metric ever holds the presented token.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, need Scope) (Token, *Problem) {
	values := r.Header.Values("Authorization")
	if len(values) == 0 {
		w.Header().Set("WWW-Authenticate", realm)
		return Token{}, newProblem(typeUnauthorized, "send Authorization: Bearer TOKEN")
	}
	scheme, presented, _ := strings.Cut(values[0], " ")
	presented = strings.TrimSpace(presented)
	if len(values) > 1 || !strings.EqualFold(scheme, "Bearer") || presented == "" {
		w.Header().Set("WWW-Authenticate", realm+`, error="invalid_request"`)
		return Token{}, newProblem(typeUnauthorized, "want one Authorization header of the form Bearer TOKEN")
	}
	t, ok := s.tokens.lookup(presented)
	if !ok {
		w.Header().Set("WWW-Authenticate", realm+`, error="invalid_token"`)
		return Token{}, newProblem(typeUnauthorized, "the bearer token is not one this server accepts")
	}
	if !t.Scope.allows(need) {
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`%s, error="insufficient_scope", scope=%q`, realm, need))
		return t, newProblem(typeForbidden, fmt.Sprintf("token %s has scope %s; this needs %s", t.Name, t.Scope, need))
	}
	return t, nil
}
