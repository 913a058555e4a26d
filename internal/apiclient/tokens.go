package apiclient

import (
	"context"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// token is a cached credential and the time after which it is re-fetched.
type token struct {
	value     string
	refreshAt time.Time
}

// newToken returns a token obtained at now that expires at expires. It is
// refreshed once 90 % of its lifetime has passed, and at the latest maxAge
// after now (0: no cap). A token that is already expired is used once and
// never served from the cache.
func newToken(value string, now, expires time.Time, maxAge time.Duration) token {
	refreshAt := expires.Add(-expires.Sub(now) / 10)
	if maxAge > 0 && now.Add(maxAge).Before(refreshAt) {
		refreshAt = now.Add(maxAge)
	}
	return token{value: value, refreshAt: refreshAt}
}

// tokenCache holds tokens by key and makes concurrent callers that miss the
// cache share one fetch per key. A key is also the credential its logins
// are tracked under (logins): a failed login makes the key's next callers
// wait a backoff, and refusals over the policy's window reject it.
type tokenCache struct {
	now    func() time.Time
	flight singleflight.Group
	logins *logins

	mu     sync.Mutex
	tokens map[string]token
}

func newTokenCache(now func() time.Time, l *logins) *tokenCache {
	return &tokenCache{now: now, logins: l, tokens: make(map[string]token)}
}

// get returns the fresh cached token for key or fetches one. The fetch is
// shared by every caller waiting for key and runs without the caller's
// cancellation (each exchange has its own timeout), so one caller giving up
// does not fail the others; a caller whose ctx ends stops waiting with the
// ctx error in an *Error for op.
//
// A fetch whose login (the exchange named op) is refused or fails
// transiently returns a *LoginError to every caller sharing it, and until
// the key's backoff has passed the callers get one without a fetch (see
// LoginPolicy). Other fetch errors are returned as they are.
func (tc *tokenCache) get(ctx context.Context, key, op string, fetch func(context.Context) (token, error)) (string, error) {
	if v, ok := tc.cached(key); ok {
		return v, nil
	}
	ch := tc.flight.DoChan(key, func() (any, error) {
		// A fetch that finished between cached() and DoChan already stored
		// a fresh token.
		if v, ok := tc.cached(key); ok {
			return v, nil
		}
		if err := tc.logins.admit(key); err != nil {
			return "", err
		}
		t, err := fetch(context.WithoutCancel(ctx))
		if err != nil {
			if refused, transient, retryAfter := loginFailure(op, err); refused || transient {
				return "", tc.logins.failed(key, err, refused, retryAfter)
			}
			return "", err
		}
		tc.store(key, t)
		tc.logins.succeeded(key)
		return t.value, nil
	})
	select {
	case <-ctx.Done():
		return "", &Error{Op: op, Err: ctx.Err()}
	case r := <-ch:
		if r.Err != nil {
			return "", r.Err
		}
		return r.Val.(string), nil
	}
}

func (tc *tokenCache) cached(key string) (string, bool) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	t, ok := tc.tokens[key]
	if !ok || !tc.now().Before(t.refreshAt) {
		return "", false
	}
	return t.value, true
}

// store caches t under key and drops every stale token, so per-conference
// tokens do not pile up.
func (tc *tokenCache) store(key string, t token) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	now := tc.now()
	for k, old := range tc.tokens {
		if !now.Before(old.refreshAt) {
			delete(tc.tokens, k)
		}
	}
	tc.tokens[key] = t
}

// invalidate drops the token for key if it is still value (a concurrent
// caller may already have replaced it with a fresh one).
func (tc *tokenCache) invalidate(key, value string) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if tc.tokens[key].value == value {
		delete(tc.tokens, key)
	}
}
