// Package retry decides what happens after an upstream attempt: it sorts
// every outcome into a [Class] (success, transient, auth, permanent), holds
// the exponential backoff [Schedule], and adapts both to asynq's
// RetryDelayFunc and IsFailure hooks.
//
// It imports nothing of meetops but the API client's error type.
package retry
