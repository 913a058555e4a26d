// Package api holds the OpenAPI 3.1 document of meetops' HTTP producer
// API (openapi.yaml, next to this file). The server (internal/api) serves
// these very bytes at GET /v1/openapi.yaml, and its tests validate every
// request they send and every answer they get against them, so the
// document and the server cannot drift apart.
package api

import _ "embed"

// OpenAPI is the content of openapi.yaml.
//
//go:embed openapi.yaml
var OpenAPI []byte
