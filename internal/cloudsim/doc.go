// Package cloudsim is a stateful simulator of the Huawei Cloud RTC, Meeting
// and IAM APIs that meetops calls.
//
// A [Sim] is an [http.Handler]: serve it with net/http (or httptest) and point
// the API client's endpoints at it. It keeps a small world — RTC apps and their
// rooms, conferences with passwords and participants, cloud meeting rooms
// (VMRs) assigned to accounts — that the operations change exactly as the real
// service would, answering with the status codes and error bodies documented
// in Huawei Cloud's API reference. It verifies AK/SK signatures, IAM tokens, Meeting App ID
// HMACs, Basic credentials, access tokens and control tokens, and it expires
// tokens on an injectable clock.
//
// Faults (error rates, scripted answers, latency, hangs, connection resets)
// are set per operation from Go ([Sim.SetFault]), from JSON
// ([Sim.LoadFaults]) or over HTTP (PUT /_sim/faults). Tests observe what
// happened through [Sim.Stats] (requests per operation and status, effects
// applied per object, logins per auth endpoint) and [Sim.Log], a bounded
// request log that never records secrets.
//
// Operation names, used for faults and statistics: "dismiss", "disable",
// "cancel", "hangup", "reclaim", "iam_token", "appauth", "account_auth",
// "conf_detail" and "control_token". Effect keys: "dismiss:<app>/<room>",
// "disable:<app>", "cancel:<conference>", "hangup:<conference>/<participant>"
// and "reclaim:<account>/<vmr>".
//
// Admin endpoints, under /_sim/ and unauthenticated (serve the simulator on
// loopback only): GET /_sim/stats, GET /_sim/state, GET /_sim/log,
// POST /_sim/reset (?state=1 also empties the world), GET|PUT|DELETE
// /_sim/faults, POST /_sim/fixture, PUT /_sim/ttls and
// POST /_sim/tokens/revoke.
package cloudsim
