// Package api is meetops' HTTP producer API: any service, in any language,
// enqueues operations with the guarantees of the Go producer package,
// because the API is built on it — the same validation (an operation object
// is parsed by internal/bulk, exactly as a bulk line), the same keys, the
// same duplicate and key-reused rules, the same batch path.
//
// The contract is api/openapi.yaml (OpenAPI 3.1, served at GET
// /v1/openapi.yaml); README.md's "HTTP API" section is the user's view.
// One file per concept:
//
//   - server.go: routes, the per-request wrapper (panic recovery,
//     authentication, rate limit, metrics, the access log line with the
//     token's name);
//   - tokens.go, auth.go: tokens held as SHA-256 hashes, compared in
//     constant time; scopes enqueue and admin; 401 and 403 with their
//     WWW-Authenticate challenges;
//   - ratelimit.go: a token bucket per token (429 with Retry-After);
//   - body.go: media types (415), body limits (413: 64 KiB for one
//     operation, 64 MiB and 100,000 operations for a batch), query
//     parameters (unknown ones are 400);
//   - problem.go: RFC 9457 problem answers, and which producer errors mean
//     Redis is unavailable (503 with Retry-After);
//   - operations.go, batches.go, deadletters.go, health.go: the endpoints;
//   - metrics.go: requests by route and status, latency, operations by op
//     and outcome;
//   - config.go, serve.go: the api command's configuration (environment,
//     flags, NAME_FILE, one line per problem) and its listener (httpguard's
//     timeouts and headers; graceful shutdown).
//
// It is on the producer side: it links neither the worker's executor nor
// the upstream client, the simulator, zerolog or the dashboard
// (`make deps-check`).
package api
