package metrics_test

import (
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/metrics"
)

// scrape returns the value of each sample line of the registry's /metrics
// whose series name (labels included) is one of names.
func scrape(t *testing.T, m *metrics.Registry, names ...string) map[string]string {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for line := range strings.Lines(string(body)) {
		series, value, ok := strings.Cut(strings.TrimSpace(line), " ")
		if ok && !strings.HasPrefix(series, "#") {
			got[series] = value
		}
	}
	for _, n := range names {
		if _, ok := got[n]; !ok {
			t.Fatalf("/metrics has no %s", n)
		}
	}
	return got
}

// TestStoreCommit: each commit is one observation of its duration and of
// the writes it carried, and a failed commit counts its writes as failed.
func TestStoreCommit(t *testing.T) {
	m := metrics.New()
	m.StoreCommit(2*time.Millisecond, 5, nil)
	m.StoreCommit(time.Millisecond, 3, errors.New("disk full"))
	got := scrape(t, m,
		"otpgate_store_commit_writes_sum", "otpgate_store_commit_writes_count",
		`otpgate_store_commit_writes_bucket{le="4"}`, `otpgate_store_commit_writes_bucket{le="8"}`,
		"otpgate_store_commit_duration_seconds_count", "otpgate_store_commit_duration_seconds_sum",
		"otpgate_store_write_failures_total")
	for series, want := range map[string]string{
		"otpgate_store_commit_writes_sum":             "8",
		"otpgate_store_commit_writes_count":           "2",
		`otpgate_store_commit_writes_bucket{le="4"}`:  "1",
		`otpgate_store_commit_writes_bucket{le="8"}`:  "2",
		"otpgate_store_commit_duration_seconds_count": "2",
		"otpgate_store_commit_duration_seconds_sum":   "0.003",
		"otpgate_store_write_failures_total":          "3",
	} {
		if got[series] != want {
			t.Errorf("%s = %s, want %s", series, got[series], want)
		}
	}
}
