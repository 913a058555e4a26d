package cloudsim

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
)

// serveAdmin answers the /_sim/ endpoints. They are not counted in the
// statistics nor logged.
func (s *Sim) serveAdmin(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/_sim/stats":
		if allow(w, r, http.MethodGet) {
			adminJSON(w, http.StatusOK, s.Stats())
		}
	case "/_sim/state":
		if allow(w, r, http.MethodGet) {
			adminJSON(w, http.StatusOK, s.State())
		}
	case "/_sim/log":
		if allow(w, r, http.MethodGet) {
			entries := s.Log()
			if n, err := strconv.Atoi(r.URL.Query().Get("limit")); err == nil && n >= 0 && n < len(entries) {
				entries = entries[len(entries)-n:]
			}
			adminJSON(w, http.StatusOK, entries)
		}
	case "/_sim/reset":
		if allow(w, r, http.MethodPost) {
			s.Reset()
			if v, _ := strconv.ParseBool(r.URL.Query().Get("state")); v {
				s.ResetState()
			}
			w.WriteHeader(http.StatusNoContent)
		}
	case "/_sim/faults":
		s.adminFaults(w, r)
	case "/_sim/fixture":
		if allow(w, r, http.MethodPost) {
			if err := s.LoadFixture(r.Body); err != nil {
				adminError(w, http.StatusBadRequest, err)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		}
	case "/_sim/ttls":
		s.adminTTLs(w, r)
	case "/_sim/tokens/revoke":
		if allow(w, r, http.MethodPost) {
			s.RevokeTokens()
			w.WriteHeader(http.StatusNoContent)
		}
	default:
		adminJSON(w, http.StatusNotFound, map[string]string{"error": "no such admin endpoint"})
	}
}

func (s *Sim) adminFaults(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		adminJSON(w, http.StatusOK, s.Faults())
	case http.MethodPut:
		if err := s.LoadFaults(r.Body); err != nil {
			adminError(w, http.StatusBadRequest, err)
			return
		}
		adminJSON(w, http.StatusOK, s.Faults())
	case http.MethodDelete:
		s.ClearFaults()
		w.WriteHeader(http.StatusNoContent)
	default:
		w.Header().Set("Allow", "GET, PUT, DELETE")
		adminJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "method not allowed"})
	}
}

func (s *Sim) adminTTLs(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		adminJSON(w, http.StatusOK, s.TokenTTLs())
	case http.MethodPut:
		var t TokenTTLs
		if err := json.NewDecoder(r.Body).Decode(&t); err != nil {
			adminError(w, http.StatusBadRequest, err)
			return
		}
		s.SetTokenTTLs(t)
		adminJSON(w, http.StatusOK, s.TokenTTLs())
	default:
		w.Header().Set("Allow", "GET, PUT")
		adminJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "method not allowed"})
	}
}

// allow answers 405 unless r uses method.
func allow(w http.ResponseWriter, r *http.Request, method string) bool {
	if r.Method == method {
		return true
	}
	w.Header().Set("Allow", method)
	adminJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "method not allowed"})
	return false
}

func adminError(w http.ResponseWriter, status int, err error) {
	adminJSON(w, status, map[string]string{"error": err.Error()})
}

func adminJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
