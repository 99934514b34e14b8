package daemon_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/otpgate/otpgate/daemon"
	"github.com/otpgate/otpgate/smpp/smsc"
)

// The Grafana dashboard and the Prometheus alert rules of deploy/ query
// the gateway's metrics by name; these tests hold them to what a running
// gateway serves.

const (
	dashboardPath = "../deploy/grafana/otpgate.json"
	rulesPath     = "../deploy/prometheus/otpgate-rules.yaml"
)

// query is one PromQL expression of a deploy file, and where it is.
type query struct{ where, expr string }

// dashboardQueries returns the PromQL of every panel target and template
// variable of the dashboard, which must be valid JSON with a title, a
// unique id and a target for every panel but rows.
func dashboardQueries(tb testing.TB) []query {
	tb.Helper()
	b, err := os.ReadFile(dashboardPath)
	if err != nil {
		tb.Fatal(err)
	}
	var d struct {
		Title  string `json:"title"`
		UID    string `json:"uid"`
		Panels []struct {
			ID      int    `json:"id"`
			Type    string `json:"type"`
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Type  string `json:"type"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(&d); err != nil {
		tb.Fatalf("%s: %v", dashboardPath, err)
	}
	if dec.More() {
		tb.Fatalf("%s: data after the dashboard", dashboardPath)
	}
	if d.Title == "" || d.UID == "" || len(d.Panels) == 0 {
		tb.Fatalf("%s: no title, uid or panels", dashboardPath)
	}
	var qs []query
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if p.Title == "" || ids[p.ID] {
			tb.Errorf("panel %d (%q): no title, or its id is taken", p.ID, p.Title)
		}
		ids[p.ID] = true
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			tb.Errorf("panel %q has no target", p.Title)
		}
		for _, t := range p.Targets {
			if t.Expr == "" {
				tb.Errorf("panel %q has a target without expr", p.Title)
			}
			qs = append(qs, query{"panel " + p.Title, t.Expr})
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		q, _ := v.Query.(string)
		if m, ok := v.Query.(map[string]any); ok {
			q, _ = m["query"].(string)
		}
		if q == "" {
			tb.Errorf("variable %s has no query", v.Name)
		}
		qs = append(qs, query{"variable " + v.Name, q})
	}
	return qs
}

// rule is one alert of the rules file.
type rule struct {
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

func alertRules(tb testing.TB) []rule {
	tb.Helper()
	b, err := os.ReadFile(rulesPath)
	if err != nil {
		tb.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Rules []rule `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		tb.Fatalf("%s: %v", rulesPath, err)
	}
	var rs []rule
	for _, g := range f.Groups {
		rs = append(rs, g.Rules...)
	}
	if len(rs) == 0 {
		tb.Fatalf("%s: no rules", rulesPath)
	}
	return rs
}

// TestDeploy_Rules: every alert has a for, a severity a pager understands,
// and a summary and description.
func TestDeploy_Rules(t *testing.T) {
	for _, r := range alertRules(t) {
		if r.Alert == "" || r.Expr == "" || r.For == "" {
			t.Errorf("%q: alert, expr and for are required", r.Alert)
		}
		if s := r.Labels["severity"]; s != "critical" && s != "warning" {
			t.Errorf("%s: severity %q, want critical or warning", r.Alert, s)
		}
		if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
			t.Errorf("%s: summary and description are required", r.Alert)
		}
	}
}

var (
	stringRE   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)
	metricRE   = regexp.MustCompile(`\b(?:otpgate|process|go)_[a-zA-Z0-9_]*\b`)
	selectorRE = regexp.MustCompile(`\b((?:otpgate|process|go)_[a-zA-Z0-9_]*)\s*\{([^}]*)\}`)
	matcherRE  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)`)
	groupingRE = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)`)
	// label_replace(v, "dst", "replacement", "src", "regex")
	labelReplaceRE = regexp.MustCompile(`,\s*"([a-zA-Z_][a-zA-Z0-9_]*)"\s*,\s*"[^"]*"\s*,\s*"[a-zA-Z_][a-zA-Z0-9_]*"\s*,\s*"[^"]*"\s*\)`)
	labelValuesRE  = regexp.MustCompile(`^label_values\(.*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)$`)
	seriesRE       = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? `)
	labelPairRE    = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="(?:[^"\\]|\\.)*"`)
)

// exposed maps each series name of a /metrics text to its label names.
func exposed(text string) map[string]map[string]bool {
	out := map[string]map[string]bool{}
	for _, l := range strings.Split(text, "\n") {
		m := seriesRE.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		if out[m[1]] == nil {
			out[m[1]] = map[string]bool{}
		}
		for _, p := range labelPairRE.FindAllStringSubmatch(m[2], -1) {
			out[m[1]][p[1]] = true
		}
	}
	return out
}

// targetLabels are added by Prometheus to every series it scrapes.
var targetLabels = []string{"job", "instance"}

// checkQuery reports the metrics q names that the gateway does not serve,
// the labels it matches on that those metrics lack, and the labels it
// groups by that none of its metrics has; it returns the metric names.
func checkQuery(t *testing.T, q query, have map[string]map[string]bool) []string {
	t.Helper()
	made := map[string]bool{} // labels that label_replace adds
	for _, m := range labelReplaceRE.FindAllStringSubmatch(q.expr, -1) {
		made[m[1]] = true
	}
	bare := stringRE.ReplaceAllString(q.expr, `""`)
	names := metricRE.FindAllString(bare, -1)
	slices.Sort(names)
	names = slices.Compact(names)
	known := func(label string) bool {
		if slices.Contains(targetLabels, label) || made[label] {
			return true
		}
		for _, n := range names {
			if have[n][label] {
				return true
			}
		}
		return false
	}
	for _, n := range names {
		if have[n] == nil {
			t.Errorf("%s: %s is not in /metrics: %s", q.where, n, q.expr)
		}
	}
	for _, m := range selectorRE.FindAllStringSubmatch(bare, -1) {
		for _, l := range matcherRE.FindAllStringSubmatch(m[2], -1) {
			if have[m[1]] != nil && !have[m[1]][l[1]] && !slices.Contains(targetLabels, l[1]) {
				t.Errorf("%s: %s has no label %s: %s", q.where, m[1], l[1], q.expr)
			}
		}
	}
	for _, m := range groupingRE.FindAllStringSubmatch(bare, -1) {
		for _, l := range strings.Split(m[1], ",") {
			if l = strings.TrimSpace(l); l != "" && !known(l) {
				t.Errorf("%s: no metric of the query has the label %s: %s", q.where, l, q.expr)
			}
		}
	}
	for _, m := range labelValuesRE.FindAllStringSubmatch(q.expr, -1) {
		if !known(m[1]) {
			t.Errorf("%s: no metric of the query has the label %s: %s", q.where, m[1], q.expr)
		}
	}
	return names
}

// TestDeploy_MetricsExist runs a gateway through what makes each of its
// series appear (sends, a resend too soon, verifications, a dead route, an
// MO, a reload, a failing callback endpoint whose circuit opens), then
// checks every metric that the dashboard and the alert rules query, with
// the labels they match and group on, against its /metrics; and that the
// dashboard shows every otpgate series the gateway serves.
func TestDeploy_MetricsExist(t *testing.T) {
	fastRetries(t)
	t.Cleanup(daemon.SetCallbackCircuit(2, time.Hour))
	h := newHook(t, cbSecretA, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadGateway) })
	sim := startSim(t, smsc.Options{ReceiptTLV: true})
	cfg := callbackConfig(t, cfgOpts{simAddr: sim.Addr(), resend: "1h"}, h.srv.URL, "")
	g := startGateway(t, cfg)
	waitCarrierBound(t, g, "a")

	reqID := requestID(t, mustSend(t, g, "+91-9870000041"))
	otpCode := codeFor(t, sim, "919870000041", 1)
	if code, _ := send(t, g, "+91-9870000041"); code != 429 {
		t.Fatalf("resend too soon: got %d, want 429", code)
	}
	verify(t, g, "+91-9870000041", flip(otpCode))
	if code, body := verify(t, g, "+91-9870000041", otpCode); code != 200 {
		t.Fatalf("verify: got %d %s", code, body)
	}
	if code, _ := send(t, g, "+44-7400123456"); code != 409 {
		t.Fatalf("send on the dead route: got %d, want 409", code)
	}
	if err := sim.SendMO(smsc.MO{Src: "919870000042", SrcTON: 1, SrcNPI: 1, Dst: "OTPGATE", DstTON: 5, Text: "STOP"}); err != nil {
		t.Fatal(err)
	}
	if err := g.d.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	waitState(t, g, reqID, "DELIVERED")
	waitMetric(t, g, `otpgate_mo_total{carrier="a"}`, 1)
	waitMetric(t, g, `otpgate_callback_circuit_open{client="`+clientA+`"}`, 1)

	_, text := call(t, "GET", g.admin+"/metrics", "", "")
	have := exposed(text)
	used := map[string]bool{}
	for _, q := range dashboardQueries(t) {
		for _, n := range checkQuery(t, q, have) {
			used[n] = true
		}
	}
	for n := range have {
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(n, "_bucket"), "_sum"), "_count")
		if strings.HasPrefix(n, "otpgate_") && !used[n] && !used[base+"_bucket"] && !used[base+"_count"] {
			t.Errorf("the dashboard shows nothing of %s", n)
		}
	}
	for _, r := range alertRules(t) {
		checkQuery(t, query{"alert " + r.Alert, r.Expr}, have)
	}
}

// TestDeploy_DashboardPromQL has promtool parse every query of the
// dashboard, with Grafana's variables replaced by values, as a recording
// rule. It needs promtool (Debian's prometheus package; CI installs it).
func TestDeploy_DashboardPromQL(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("promtool not found: .ci/run installs it")
		}
		t.Skip("promtool not found")
	}
	vars := strings.NewReplacer("$__rate_interval", "5m", "$job", ".*", "$instance", ".*", "$carrier", ".*")
	var b strings.Builder
	b.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	for i, q := range dashboardQueries(t) {
		if strings.HasPrefix(q.expr, "label_values(") {
			continue // Grafana's, not PromQL
		}
		expr, err := json.Marshal(vars.Replace(q.expr)) // a JSON string is a YAML string
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "      - record: dashboard:query_%d\n        expr: %s\n", i, expr)
	}
	path := filepath.Join(t.TempDir(), "dashboard-rules.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", path).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
}
