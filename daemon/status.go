package daemon

import (
	"bytes"
	"context"
	"fmt"
	"html/template"
	"net/http"
	"runtime/debug"
	"sort"
	"strings"
	"time"

	"github.com/otpgate/otpgate/guard"
)

// The status page, at the admin port's "/": one server-rendered page that
// refreshes itself every 5 seconds, for a NOC screen: readiness, build and
// uptime, per carrier its binds, rates, degraded and suspended state, last
// bind failure and receipts, the callbacks waiting, and the pumping guard's
// active blocks. No script: a meta refresh.

// statusData is what the status page shows.
type statusData struct {
	Version  string
	Uptime   time.Duration
	Now      time.Time
	Ready    bool
	Reason   string
	Carriers []CarrierStatus
	// Backlog is the number of callbacks waiting; BacklogKnown is false
	// when the store cannot count them.
	Backlog      int
	BacklogKnown bool
	// Blocks are the pumping guard's active blocks.
	Blocks []guard.Block
}

var statusTemplate = template.Must(template.New("status").Funcs(template.FuncMap{
	"counts": formatCounts,
	"rate":   func(f float64) string { return fmt.Sprintf("%.2f", f) },
	"tps": func(f float64) string {
		if f <= 0 {
			return "unlimited"
		}
		return fmt.Sprintf("%g", f)
	},
	"ago": func(t *time.Time, now time.Time) string {
		return now.Sub(*t).Round(time.Second).String() + " ago"
	},
	"uptime": func(d time.Duration) string { return d.Round(time.Second).String() },
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="5">
<title>otpgate status</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.3em; margin: 0 0 .3em; }
.meta { color: #555; margin-bottom: 1em; }
table { border-collapse: collapse; }
th, td { text-align: left; padding: .35em .8em; border-bottom: 1px solid #ddd; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.state { font-weight: 600; padding: .1em .5em; border-radius: 3px; }
.up { background: #d7f5dd; color: #135c25; }
.partial { background: #fff1c9; color: #6b4d00; }
.down { background: #fbd9d9; color: #8a1616; }
.suspended { background: #e3e3e3; color: #333; }
.ready { color: #135c25; font-weight: 600; }
.unready { color: #8a1616; font-weight: 600; }
</style>
</head>
<body>
<h1>otpgate</h1>
<div class="meta">
{{if .Ready}}<span class="ready" id="readiness">ready</span>{{else}}<span class="unready" id="readiness">not ready: {{.Reason}}</span>{{end}}
· version <span id="version">{{.Version}}</span>
· up <span id="uptime">{{uptime .Uptime}}</span>
· {{.Now.UTC.Format "2006-01-02 15:04:05 UTC"}}
</div>
<table id="carriers">
<thead><tr><th>Carrier</th><th>State</th><th>Binds</th><th>TPS limit</th><th>Submits/s (1 min)</th><th>Submits</th><th>Receipts</th><th>Last bind failure</th></tr></thead>
<tbody>
{{range .Carriers}}<tr id="carrier-{{.Name}}" data-carrier="{{.Name}}">
<td>{{.Name}}</td>
<td>{{if .Suspended}}<span class="state suspended">suspended</span>{{else if eq .BindsUp 0}}<span class="state down">unbound</span>{{else if lt .BindsUp .BindsConfigured}}<span class="state partial">partly bound</span>{{else}}<span class="state up">bound</span>{{end}}{{if .Degraded}} <span class="state down">degraded</span>{{end}}</td>
<td class="num" data-binds>{{.BindsUp}}/{{.BindsConfigured}}</td>
<td class="num">{{tps .TPS}}</td>
<td class="num">{{rate .SubmitRate}}</td>
<td>{{counts .Submits}}</td>
<td>{{counts .Receipts}}</td>
<td>{{if .LastBindFailure}}{{.LastBindFailure}}, {{ago .LastBindFailureAt $.Now}}{{else}}none{{end}}</td>
</tr>
{{else}}<tr><td colspan="8">no carrier running</td></tr>
{{end}}</tbody>
</table>
<p id="callbacks">Callbacks waiting: {{if .BacklogKnown}}<span id="backlog">{{.Backlog}}</span>{{else}}not counted by this store{{end}}</p>
<h2>Pumping guard blocks</h2>
<table id="blocks">
<thead><tr><th>rule</th><th>range</th><th>client</th><th>reason</th><th>since</th></tr></thead>
<tbody>
{{range .Blocks}}<tr><td>{{.Rule}}</td><td>{{.Range}}</td><td>{{.Client}}</td><td>{{.Reason}}</td><td>{{.Since.UTC.Format "2006-01-02 15:04:05 UTC"}}</td></tr>
{{else}}<tr><td colspan="5">none</td></tr>
{{end}}</tbody>
</table>
</body>
</html>
`))

// formatCounts writes counts as "k n, k n" sorted by key ("none" when
// empty).
func formatCounts(m map[string]uint64) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

// statusPage serves the status page.
func (d *Server) statusPage(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	data := statusData{Version: buildVersion(), Uptime: now.Sub(d.started), Now: now, Ready: true,
		Carriers: d.carrierStatuses()}
	if err := d.readiness(); err != nil {
		data.Ready, data.Reason = false, err.Error()
	}
	if g := d.guard.Load(); g != nil {
		data.Blocks = g.Blocks(now)
	}
	d.mu.Lock()
	db := d.db
	d.mu.Unlock()
	if bc, ok := db.(backlogCounter); ok {
		ctx, cancel := context.WithTimeout(r.Context(), backlogScanTimeout)
		data.Backlog, data.BacklogKnown = 0, false
		if n, err := bc.CallbackBacklog(ctx); err == nil {
			data.Backlog, data.BacklogKnown = n, true
		}
		cancel()
	}
	var buf bytes.Buffer
	if err := statusTemplate.Execute(&buf, data); err != nil {
		d.log.Error("status page failed", keyError, err)
		http.Error(w, "status page failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(buf.Bytes())
}

// buildVersion is the module version and VCS revision of the binary.
func buildVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v += " " + s.Value[:min(len(s.Value), 12)]
		case "vcs.modified":
			if s.Value == "true" {
				v += " (modified)"
			}
		}
	}
	return v
}
