package cloudsim

import (
	"net/http"
	"slices"
)

// iamTimeFormat is the layout of token.expires_at (RFC 3339, microseconds).
const iamTimeFormat = "2006-01-02T15:04:05.000000Z"

type iamRequest struct {
	Auth struct {
		Identity struct {
			Methods  []string `json:"methods"`
			Password struct {
				User struct {
					Name     string `json:"name"`
					Password string `json:"password"`
					Domain   struct {
						Name string `json:"name"`
					} `json:"domain"`
				} `json:"user"`
			} `json:"password"`
		} `json:"identity"`
		Scope struct {
			Project struct {
				ID string `json:"id"`
			} `json:"project"`
		} `json:"scope"`
	} `json:"auth"`
}

type iamTokenBody struct {
	Token struct {
		ExpiresAt string   `json:"expires_at"`
		IssuedAt  string   `json:"issued_at"`
		Methods   []string `json:"methods"`
		Project   struct {
			ID string `json:"id"`
		} `json:"project"`
		User struct {
			Name   string `json:"name"`
			Domain struct {
				Name string `json:"name"`
			} `json:"domain"`
		} `json:"user"`
	} `json:"token"`
}

// handleIAMToken: POST /v3/auth/tokens (password method, project scope) →
// 201 with the token in X-Subject-Token.
func (s *Sim) handleIAMToken(r *http.Request, _ []string) reply {
	b, err := readBody(r)
	if err != nil {
		return paramError(OpIAMToken, err.Error())
	}
	var req iamRequest
	if err := decodeLenient(b, &req); err != nil {
		return paramError(OpIAMToken, err.Error())
	}
	id := req.Auth.Identity
	user := id.Password.User
	if !slices.Contains(id.Methods, "password") || user.Name == "" || user.Password == "" ||
		user.Domain.Name == "" || req.Auth.Scope.Project.ID == "" {
		return paramError(OpIAMToken, "auth.identity (password method, user name, password, domain name) and auth.scope.project.id are required")
	}
	c := s.creds
	if c.IAMUser == "" || user.Name != c.IAMUser || user.Password != c.IAMPassword ||
		user.Domain.Name != c.IAMDomain || req.Auth.Scope.Project.ID != c.IAMProjectID {
		return apiError(http.StatusUnauthorized, codeIAMBadPassword, "The username or password is wrong.")
	}

	s.mu.Lock()
	tok, issued, exp := s.issueIAMLocked()
	s.stats.login(OpIAMToken)
	s.mu.Unlock()

	var out iamTokenBody
	out.Token.ExpiresAt = exp.UTC().Format(iamTimeFormat)
	out.Token.IssuedAt = issued.UTC().Format(iamTimeFormat)
	out.Token.Methods = []string{"password"}
	out.Token.Project.ID = c.IAMProjectID
	out.Token.User.Name = c.IAMUser
	out.Token.User.Domain.Name = c.IAMDomain
	rep := jsonReply(http.StatusCreated, out)
	rep.header = map[string]string{"X-Subject-Token": tok}
	return rep
}
