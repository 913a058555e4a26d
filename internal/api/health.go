package api

import (
	"context"
	"net/http"
	"strconv"
	"time"

	apidoc "github.com/meetops/meetops/api"
)

// healthz is GET /healthz: the process runs (liveness).
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request, _ *call) *Problem {
	writeText(w, http.StatusOK, "ok\n")
	return nil
}

// readyz is GET /readyz: Redis answers (readiness). A 503 carries
// Retry-After and the one-line diagnosis of the producer's Ping, which
// never holds a password.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request, c *call) *Problem {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.producer.Ping(ctx); err != nil {
		c.log(slogError(err))
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
		writeText(w, http.StatusServiceUnavailable, "redis unavailable: "+err.Error()+"\n")
		return nil
	}
	writeText(w, http.StatusOK, "ok\n")
	return nil
}

// openAPI is GET /v1/openapi.yaml: the API's OpenAPI 3.1 document, the
// very bytes of api/openapi.yaml.
func (s *Server) openAPI(w http.ResponseWriter, _ *http.Request, _ *call) *Problem {
	w.Header().Set("Content-Type", "application/yaml")
	w.Header().Set("Content-Length", strconv.Itoa(len(apidoc.OpenAPI)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(apidoc.OpenAPI)
	return nil
}

func writeText(w http.ResponseWriter, status int, text string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(text))
}
