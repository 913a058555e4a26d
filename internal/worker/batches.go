package worker

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/meetops/meetops/internal/batch"
	"github.com/meetops/meetops/internal/deadletter"
	"github.com/meetops/meetops/internal/tasks"
)

// The /batches pages: a read-only, server-rendered view of the recent
// batches with a progress bar each, and per batch its dead letters grouped
// by reason and upstream error code, linked to the dashboard's task pages.
// No scripts, no front-end build.

// batchesPage is the data of the list page.
type batchesPage struct {
	Batches []batchView
}

// batchView is one batch as the pages show it.
type batchView struct {
	batch.Progress
	// Percentages of the progress bar.
	SucceededPct, AlreadyDonePct, DeadPct float64
}

func viewOf(p batch.Progress) batchView {
	v := batchView{Progress: p}
	if p.Total > 0 {
		pct := func(n int) float64 { return 100 * float64(n) / float64(p.Total) }
		v.SucceededPct, v.AlreadyDonePct, v.DeadPct = pct(p.Succeeded), pct(p.AlreadyDone), pct(p.Dead)
	}
	return v
}

// deadGroup is the dead letters of one reason and error code.
type deadGroup struct {
	Reason, Code string
	Letters      []deadLink
}

// deadLink is one dead letter with its dashboard link.
type deadLink struct {
	Key, Message, Href string
	Line               int
}

// batchPage is the data of one batch's page.
type batchPage struct {
	Batch batchView
	Dead  []deadGroup
}

var pageCSS = template.CSS(`body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse}td,th{padding:.3em .8em;text-align:left;border-bottom:1px solid #ddd}
.bar{display:flex;width:240px;height:12px;background:#eee;border-radius:6px;overflow:hidden}
.ok{background:#2e7d32}.already{background:#81c784}.dead{background:#c62828}
code{font-size:12px}h2{margin-top:1.5em}.muted{color:#777}`)

var pages = template.Must(template.New("list").Funcs(template.FuncMap{
	"time":  func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"css":   func() template.CSS { return pageCSS },
	"deref": func(t *time.Time) time.Time { return *t },
}).Parse(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>meetops batches</title>
<style>{{css}}</style></head><body>
<h1>Batches</h1>
<p class="muted">The bulk runs of the last dedup window, newest first. <a href="/monitoring">Dashboard</a></p>
{{if not .Batches}}<p>No batches.</p>{{else}}
<table><thead><tr><th>Batch</th><th>Label</th><th>Origin</th><th>Created</th><th>Progress</th><th>Total</th><th>Pending</th><th>Succeeded</th><th>Already done</th><th>Dead</th><th></th></tr></thead><tbody>
{{range .Batches}}<tr>
<td><a href="/batches/{{.BatchID}}"><code>{{.BatchID}}</code></a></td><td>{{.Label}}</td><td>{{.Origin}}</td><td>{{time .CreatedAt}}</td>
<td><div class="bar" title="{{.Succeeded}} succeeded, {{.AlreadyDone}} already done, {{.Dead}} dead, {{.Pending}} pending"><span class="ok" style="width:{{.SucceededPct}}%"></span><span class="already" style="width:{{.AlreadyDonePct}}%"></span><span class="dead" style="width:{{.DeadPct}}%"></span></div></td>
<td>{{.Total}}</td><td>{{.Pending}}</td><td>{{.Succeeded}}</td><td>{{.AlreadyDone}}</td><td>{{.Dead}}</td><td>{{if .Complete}}complete{{else}}running{{end}}</td>
</tr>{{end}}</tbody></table>{{end}}
</body></html>`))

var onePage = template.Must(template.Must(pages.Clone()).New("one").Parse(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>meetops batch {{.Batch.BatchID}}</title>
<style>{{css}}</style></head><body>
<p><a href="/batches">All batches</a></p>
<h1>Batch <code>{{.Batch.BatchID}}</code></h1>
<table>
<tr><th>Label</th><td>{{.Batch.Label}}</td></tr><tr><th>Origin</th><td>{{.Batch.Origin}}</td></tr>
<tr><th>Created</th><td>{{time .Batch.CreatedAt}}</td></tr>
<tr><th>Progress</th><td><div class="bar"><span class="ok" style="width:{{.Batch.SucceededPct}}%"></span><span class="already" style="width:{{.Batch.AlreadyDonePct}}%"></span><span class="dead" style="width:{{.Batch.DeadPct}}%"></span></div></td></tr>
<tr><th>Total</th><td>{{.Batch.Total}}</td></tr><tr><th>Pending</th><td>{{.Batch.Pending}}</td></tr>
<tr><th>Succeeded</th><td>{{.Batch.Succeeded}}</td></tr><tr><th>Already done</th><td>{{.Batch.AlreadyDone}}</td></tr>
<tr><th>Dead</th><td>{{.Batch.Dead}}</td></tr>
<tr><th>Complete</th><td>{{if .Batch.Complete}}yes, {{time (deref .Batch.CompletedAt)}}{{else}}no{{end}}</td></tr>
</table>
<h2>Dead letters</h2>
{{if not .Dead}}<p>None.</p>{{end}}
{{range .Dead}}<h3>{{.Reason}}{{if .Code}} · {{.Code}}{{end}} ({{len .Letters}})</h3>
<table><thead><tr><th>Line</th><th>Key</th><th>Message</th></tr></thead><tbody>
{{range .Letters}}<tr><td>{{if .Line}}{{.Line}}{{else}}<span class="muted">–</span>{{end}}</td><td><a href="{{.Href}}"><code>{{.Key}}</code></a></td><td>{{.Message}}</td></tr>{{end}}
</tbody></table>{{end}}
</body></html>`))

// batchesHandler serves GET /batches and GET /batches/{id}.
func (w *Worker) batchesHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /batches", func(rw http.ResponseWriter, r *http.Request) {
		list, err := w.batches.List(r.Context(), 100)
		if err != nil {
			http.Error(rw, "redis unreachable", http.StatusServiceUnavailable)
			return
		}
		page := batchesPage{}
		for _, p := range list {
			page.Batches = append(page.Batches, viewOf(p))
		}
		render(rw, pages, page)
	})
	mux.HandleFunc("GET /batches/{id}", func(rw http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if !batch.ValidID(id) {
			http.NotFound(rw, r)
			return
		}
		page, err := w.batchPage(r.Context(), id)
		switch {
		case errors.Is(err, batch.ErrNotFound):
			http.Error(rw, "no such batch (unknown, or expired with the dedup window)", http.StatusNotFound)
			return
		case err != nil:
			http.Error(rw, "redis unreachable", http.StatusServiceUnavailable)
			return
		}
		render(rw, onePage, page)
	})
	return mux
}

// batchPage reads a batch and its dead letters, grouped by reason and
// error code (the dead-letter store has the code and message).
func (w *Worker) batchPage(ctx context.Context, id string) (batchPage, error) {
	p, err := w.batches.Get(ctx, id)
	if err != nil {
		return batchPage{}, err
	}
	page := batchPage{Batch: viewOf(p)}
	groups := map[[2]string]*deadGroup{}
	err = w.batches.Members(ctx, id, func(m batch.Member) error {
		if m.State.Kind() != batch.Dead {
			return nil
		}
		link := deadLink{Key: m.Key, Line: m.Line}
		code, queue := "", tasks.DefaultQueue
		if rec, err := w.dead.Get(ctx, m.Key); err == nil {
			queue = rec.Queue
			var res tasks.Result
			if json.Unmarshal(rec.Result, &res) == nil {
				code, link.Message = res.ErrorCode, res.ErrorMsg
			}
		} else if !errors.Is(err, deadletter.ErrNotFound) {
			return err
		}
		link.Href = "/monitoring/queues/" + url.PathEscape(queue) + "/tasks/" + url.PathEscape(m.Key)
		g := groups[[2]string{m.State.Reason(), code}]
		if g == nil {
			g = &deadGroup{Reason: m.State.Reason(), Code: code}
			groups[[2]string{g.Reason, g.Code}] = g
		}
		g.Letters = append(g.Letters, link)
		return nil
	})
	if err != nil {
		return batchPage{}, err
	}
	for _, g := range groups {
		page.Dead = append(page.Dead, *g)
	}
	slices.SortFunc(page.Dead, func(a, b deadGroup) int {
		return cmp.Or(len(b.Letters)-len(a.Letters), strings.Compare(a.Reason, b.Reason), strings.Compare(a.Code, b.Code))
	})
	return page, nil
}

func render(rw http.ResponseWriter, t *template.Template, data any) {
	rw.Header().Set("Content-Type", "text/html; charset=utf-8")
	// Server-rendered, no scripts at all.
	rw.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	if err := t.Execute(rw, data); err != nil {
		http.Error(rw, "render: "+err.Error(), http.StatusInternalServerError)
	}
}
