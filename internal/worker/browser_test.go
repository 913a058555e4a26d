package worker

import (
	"context"
	"fmt"
	"iter"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/meetops/meetops/internal/browsertest"
	"github.com/stretchr/testify/require"
)

// browserTab starts headless Chromium (a fresh profile, no background
// networking: this machine's network is closed) and returns a tab that
// answers the dashboard's basic-auth challenges with user and pass, as a
// person who typed them once would have their browser do.
func browserTab(t *testing.T, browser, dashOrigin, user, pass string) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(browser),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	t.Cleanup(cancelAlloc)
	tab, cancelTab := chromedp.NewContext(alloc)
	t.Cleanup(cancelTab)
	require.NoError(t, chromedp.Do(tab), "start chromium")

	// Pause the dashboard's requests, continue them, and answer their
	// auth challenges.
	paused := chromedp.Events(tab, fetch.RequestPaused)
	challenged := chromedp.Events(tab, fetch.AuthRequired)
	_, err := chromedp.Call(tab, fetch.Enable, fetch.EnableParams{
		Patterns:           []*fetch.RequestPattern{{URLPattern: dashOrigin + "/*"}},
		HandleAuthRequests: new(true),
	})
	require.NoError(t, err)
	go func() {
		for ev, err := range paused {
			if err != nil {
				return
			}
			_, _ = chromedp.Call(tab, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: ev.RequestID})
		}
	}()
	go func() {
		for ev, err := range challenged {
			if err != nil {
				return
			}
			_, _ = chromedp.Call(tab, fetch.ContinueWithAuth, fetch.ContinueWithAuthParams{RequestID: ev.RequestID,
				AuthChallengeResponse: &fetch.AuthChallengeResponse{
					Response: fetch.AuthChallengeResponseResponseProvideCredentials, Username: user, Password: pass,
				}})
		}
	}()
	return tab
}

// In a real browser: the dashboard renders with the security headers on,
// and its own page can write (pause a queue), while the same request from
// a page of another site — a form it submits, or a fetch it fires — with
// the operator's credentials in the browser, is refused with 403 and does
// nothing (CSRF).
func TestDashboardWritesInABrowserOnlyFromItsOwnOrigin(t *testing.T) {
	t.Parallel()
	browser := browsertest.Chromium(t)
	b := setup(t, writable)
	b.schedule(t, "dismiss:browser-1")
	pauseURL := b.base + "/monitoring/api/queues/default:pause"

	// The hostile page: another site (127.0.0.2 is loopback too, so
	// Chromium's local-network rules do not interfere).
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	require.NoError(t, err)
	evil := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, `<!doctype html><title>cat pictures</title><form method="POST" action="%s" enctype="text/plain"></form>`, pauseURL)
	}))
	evil.Listener.Close()
	evil.Listener = ln
	evil.Start()
	t.Cleanup(evil.Close)

	tab := browserTab(t, browser, b.base, dashAuth[0], dashAuth[1])
	// statusOf waits for the browser's response to the pause request.
	statusOf := func(responses iter.Seq2[network.EventResponseReceived, error]) int64 {
		t.Helper()
		for ev, err := range responses {
			require.NoError(t, err, "no response to the POST")
			if ev.Response.URL == pauseURL {
				return ev.Response.Status
			}
		}
		return 0
	}

	// The dashboard, logged in: scripts run, the API answers, the task shows.
	require.NoError(t, chromedp.Do(tab, chromedp.Navigate(b.base+"/monitoring/queues/default?status=scheduled")))
	_, err = chromedp.Run(tab, chromedp.Poll[bool](`document.documentElement.outerHTML.includes("dismiss:browser-1")`,
		chromedp.WithPollingTimeout(60*time.Second)))
	require.NoError(t, err, "the dashboard renders the scheduled task")

	// The hostile page submits a form to the dashboard: a top-level
	// cross-site POST, which the browser sends with the dashboard's
	// credentials.
	require.NoError(t, chromedp.Do(tab, chromedp.Navigate(evil.URL)))
	responses := chromedp.Events(tab, network.ResponseReceived)
	require.NoError(t, chromedp.Do(tab, chromedp.Evaluate[chromedp.Void](`document.forms[0].submit()`)))
	require.EqualValues(t, http.StatusForbidden, statusOf(responses), "the cross-site form POST is refused")
	require.False(t, b.paused(t), "the cross-site form POST paused nothing")

	// It fires a fetch: a no-cors POST needs no preflight.
	require.NoError(t, chromedp.Do(tab, chromedp.Navigate(evil.URL)))
	responses = chromedp.Events(tab, network.ResponseReceived)
	typ, err := chromedp.Run(tab, chromedp.Evaluate[string](
		fmt.Sprintf(`fetch(%q, {method: "POST", mode: "no-cors", credentials: "include", body: "{}"}).then(r => r.type, e => "error: " + e)`, pauseURL),
		chromedp.EvalAwaitPromise))
	require.NoError(t, err)
	require.Equal(t, "opaque", typ, "the request was sent; its answer is hidden from the page")
	require.EqualValues(t, http.StatusForbidden, statusOf(responses), "the cross-site fetch is refused")
	require.False(t, b.paused(t), "the cross-site fetch paused nothing")

	// The same request from the dashboard's own page works.
	require.NoError(t, chromedp.Do(tab, chromedp.Navigate(b.base+"/monitoring/")))
	code, err := chromedp.Run(tab, chromedp.Evaluate[int](
		`fetch("/monitoring/api/queues/default:pause", {method: "POST"}).then(r => r.status)`, chromedp.EvalAwaitPromise))
	require.NoError(t, err)
	require.Equal(t, http.StatusNoContent, code)
	require.True(t, b.paused(t), "the dashboard's own POST paused the queue")
}
