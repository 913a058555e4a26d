// Package conformance checks meetops' simulator and API client against
// Huawei's official Go SDK (github.com/huaweicloud/huaweicloud-sdk-go-v3),
// the closest thing to the real API this project can run. It is a module of
// its own, so the main module and `make test` never download the SDK; run
// it with `make conformance`. Its tests check three things:
//
//   - The SDK's own clients — CloudRTCClient with basic AK/SK credentials,
//     MeetingClient with its account credentials — perform every call
//     meetops makes against cloudsim over HTTP, get the documented status
//     and a body the SDK can decode, and parse one 4xx per call into a
//     ServiceResponseError with the right status, error_code and request ID.
//   - The SDK's signer (core/auth/signer) and apiclient's Signer agree on
//     thousands of random requests: the same Authorization for the same
//     request and signed headers, and apiclient's Verify accepts what the
//     SDK signs after a real HTTP round trip.
//   - For each operation, the request apiclient sends equals the one the SDK
//     sends for the same inputs — method, path, query, body bytes (but the
//     SDK's trailing newline) and the set of headers — except for the
//     deliberate differences listed, each with its reason, in
//     requests_test.go.
//
// The package has no non-test code; this file only documents it.
package conformance
