package daemon_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/otpgate/otpgate/smpp/smsc"
)

// TestGateway_OpsMetrics: the series that the alert rules need beyond the
// event counters are served: the carriers each route can use (the GB route's
// only carrier never binds), each carrier's degraded state from its start,
// the store's commits and failed writes, and the callback backlog, which
// grows while the client's endpoint fails.
func TestGateway_OpsMetrics(t *testing.T) {
	fastRetries(t)
	h := newHook(t, cbSecretA, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadGateway) })
	sim := startSim(t, smsc.Options{ReceiptTLV: true})
	g := startGateway(t, callbackConfig(t, cfgOpts{simAddr: sim.Addr()}, h.srv.URL, ""))
	waitCarrierBound(t, g, "a")
	_, text := call(t, "GET", g.admin+"/metrics", "", "")
	for _, want := range []string{
		`otpgate_route_carriers_bound{route="GB"} 0`,
		`otpgate_route_carriers_bound{route="*"} 1`,
		`otpgate_carrier_degraded{carrier="a"} 0`,
		`otpgate_carrier_degraded{carrier="dead"} 0`,
		`otpgate_store_write_failures_total 0`,
		`otpgate_callback_queue_depth 0`,
		`otpgate_store_commit_duration_seconds_bucket{le="+Inf"} `,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s:\n%s", want, grepLines(text, "otpgate_"))
		}
	}
	commits := metricValue(t, text, "otpgate_store_commit_duration_seconds_count")
	mustSend(t, g, "+91-9870000031")
	waitMetric(t, g, "otpgate_callback_queue_depth", 1)
	waitMetric(t, g, `otpgate_callbacks_total{outcome="retry"}`, 1)
	_, text = call(t, "GET", g.admin+"/metrics", "", "")
	if n := metricValue(t, text, "otpgate_store_commit_duration_seconds_count"); n <= commits {
		t.Errorf("commits: got %g after a send, want more than %g", n, commits)
	}
}

// metricValue is the value of the series (name and labels) in a /metrics
// text.
func metricValue(tb testing.TB, text, series string) float64 {
	tb.Helper()
	for _, l := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				tb.Fatalf("%s: %v", series, err)
			}
			return f
		}
	}
	tb.Fatalf("no series %s", series)
	return 0
}
