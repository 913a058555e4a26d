package worker

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/batch"
	"github.com/meetops/meetops/internal/browsertest"
	"github.com/meetops/meetops/internal/deadletter"
	"github.com/meetops/meetops/internal/tasks"
)

// fillBatch makes a sealed batch of n members on the worker's Redis:
// every third succeeded, one already done, two dead letters with one
// reason and code, one with another, the rest pending.
func (b *testBundle) fillBatch(t *testing.T, label string, n int) string {
	t.Helper()
	ctx := context.Background()
	id, err := b.w.batches.Create(ctx, batch.Spec{Label: label, Origin: "ops@laptop"})
	require.NoError(t, err)
	var ms []batch.Member
	for i := range n {
		ms = append(ms, batch.Member{Key: fmt.Sprintf("%s-%02d", label, i), Index: i, Line: i + 1})
	}
	_, err = b.w.batches.Add(ctx, id, ms)
	require.NoError(t, err)
	_, err = b.w.batches.Seal(ctx, id)
	require.NoError(t, err)
	dead := map[int][2]string{1: {tasks.ReasonHTTP4xx, "RTC.00001003"}, 4: {tasks.ReasonHTTP4xx, "RTC.00001003"}, 7: {tasks.ReasonAuth, "USG.000000004"}}
	for i, m := range ms {
		st := batch.Pending
		switch d, isDead := dead[i]; {
		case isDead:
			st = batch.DeadWith(d[0])
			res := tasks.Result{Outcome: tasks.OutcomeDeadLetter, Reason: d[0], ErrorCode: d[1], ErrorMsg: "refused <b>" + m.Key + "</b>", Attempts: 1}
			require.NoError(t, b.w.dead.Add(ctx, deadletter.Record{Key: m.Key, Type: tasks.TypeDismiss, Queue: "default",
				Reason: d[0], Payload: []byte(`{}`), Result: res.JSON()}))
		case i == 2:
			st = batch.AlreadyDone
		case i%3 == 0:
			st = batch.Succeeded
		}
		_, err := b.w.batches.Transition(ctx, []string{id}, m.Key, st)
		require.NoError(t, err)
	}
	return id
}

// The /batches pages, rendered by a real browser: the list with a progress
// bar per batch, and a batch's dead letters grouped by reason and error
// code, linked to the dashboard's task pages, its messages escaped. With
// MEETOPS_UPDATE_SCREENSHOTS=1 the screenshots are written to docs/.
func TestBatchPagesInABrowser(t *testing.T) {
	t.Parallel()
	browser := browsertest.Chromium(t)
	b := setup(t, nil)
	id := b.fillBatch(t, "offboarding-team-7", 12)
	b.fillBatch(t, "retired-app-rooms", 30)

	code, html := b.get(t, "/batches", nil)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, html, "offboarding-team-7")
	code, html = b.get(t, "/batches/"+id, nil)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, html, `href="/monitoring/queues/default/tasks/offboarding-team-7-01"`)
	require.Contains(t, html, "refused &lt;b&gt;", "upstream text is escaped")
	require.Equal(t, http.StatusNotFound, b.status(t, "/batches/b_000000000000000000000000", nil))
	require.Equal(t, http.StatusNotFound, b.status(t, "/batches/nope", nil))

	tab := browserTab(t, browser, b.base, "", "")
	require.NoError(t, chromedp.Do(tab, chromedp.EmulateViewport(1280, 720)))
	shots := t.TempDir()
	if os.Getenv("MEETOPS_UPDATE_SCREENSHOTS") == "1" {
		shots = filepath.Join("..", "..", "docs")
	}
	for _, page := range []struct{ path, file, want string }{
		{"/batches", "batches.png", "retired-app-rooms"},
		{"/batches/" + id, "batch.png", "http_4xx · RTC.00001003 (2)"},
	} {
		require.NoError(t, chromedp.Do(tab, chromedp.Navigate(b.base+page.path)))
		text, err := chromedp.Run(tab, chromedp.Evaluate[string](`document.body.innerText`))
		require.NoError(t, err)
		require.Contains(t, text, page.want, page.path)
		shot, err := chromedp.Run(tab, chromedp.FullScreenshot(100))
		require.NoError(t, err)
		img, err := png.Decode(bytes.NewReader(shot))
		require.NoError(t, err)
		require.Greater(t, img.Bounds().Dx(), 600)
		require.NoError(t, os.WriteFile(filepath.Join(shots, page.file), shot, 0o644))
	}
	text, err := chromedp.Run(tab, chromedp.Evaluate[string](`document.body.innerText`))
	require.NoError(t, err)
	require.True(t, strings.Index(text, "http_4xx") < strings.Index(text, "auth ·"), "the largest group first")
}
