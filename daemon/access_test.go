package daemon_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/otpgate/otpgate/daemon"
	"github.com/otpgate/otpgate/smpp/smsc"
)

// statusFrom asks the status of an unknown request with key (and an
// X-Forwarded-For when xff is set): 404 means the key was accepted.
func statusFrom(tb testing.TB, g *gateway, key, xff string) int {
	tb.Helper()
	req, err := http.NewRequest("GET", g.url+"/api/v3/otp-verification/status/ffffffffffffffffffffffff", nil)
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Authorization", key)
	if xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// failUntil429 sends wrong keys until one is answered 429 (at most max)
// and returns how many were answered 401 before it.
func failUntil429(tb testing.TB, g *gateway, xff string, max int) int {
	tb.Helper()
	for i := 0; i < max; i++ {
		switch code := statusFrom(tb, g, fmt.Sprintf("wrong-key-%04d", i), xff); code {
		case 401:
		case 429:
			return i
		default:
			tb.Fatalf("wrong key %d: got %d, want 401 or 429", i+1, code)
		}
	}
	tb.Fatalf("no 429 after %d wrong keys", max)
	return 0
}

// requestLines returns the daemon's "request" log lines.
func requestLines(tb testing.TB) []map[string]any {
	tb.Helper()
	text := logsOf(tb)
	var out []map[string]any
	for _, l := range strings.Split(text, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "request" {
			out = append(out, m)
		}
	}
	return out
}

// TestGateway_AuthFailuresLimited: from one address, wrong API keys past
// auth_failures_per_minute (60) are answered 429 "Too many requests";
// the right key still works from that address; X-Forwarded-For is not
// believed without trusted_proxies. No key reaches the log.
func TestGateway_AuthFailuresLimited(t *testing.T) {
	sim := startSim(t, smsc.Options{})
	g := startGateway(t, testConfig(t, cfgOpts{simAddr: sim.Addr()}))
	for i := 0; i < 200; i++ {
		forbidInLogs(t, fmt.Sprintf("wrong-key-%04d", i))
	}
	// A forwarded address per request: ignored, all count against 127.0.0.1.
	n := 0
	for ; n < 200; n++ {
		code := statusFrom(t, g, fmt.Sprintf("wrong-key-%04d", n), fmt.Sprintf("203.0.113.%d", n%250))
		if code == 429 {
			break
		}
		if code != 401 {
			t.Fatalf("wrong key %d: got %d, want 401", n+1, code)
		}
	}
	if n < 60 || n == 200 {
		t.Fatalf("%d wrong keys answered 401 before a 429, want 60 (then 429)", n)
	}
	t.Logf("429 from wrong key %d", n+1)
	code, body := call(t, "GET", g.url+"/api/v3/otp-verification/status/ffffffffffffffffffffffff", "nope", "")
	if code != 429 || body != tooMany {
		t.Fatalf("wrong key past the limit: got %d %s, want 429 %s", code, body, tooMany)
	}
	if code := statusFrom(t, g, keyA, ""); code != 404 {
		t.Fatalf("right key from the limited address: got %d, want 404 (authenticated, unknown request)", code)
	}
	if code, body := send(t, g, "+91-9876543210"); code != 200 {
		t.Fatalf("send with the right key from the limited address: got %d %s", code, body)
	}
	waitMetric(t, g, `otpgate_ratelimited_total{scope="auth"}`, 2)
	var limited int
	for _, l := range requestLines(t) {
		if l["remote"] != "127.0.0.1" {
			t.Fatalf("request line with remote %v, want 127.0.0.1: %v", l["remote"], l)
		}
		if l["outcome"] == "auth_limited" {
			limited++
		}
	}
	if limited < 2 {
		t.Fatalf("%d request lines with outcome auth_limited, want 2 or more", limited)
	}
}

// TestGateway_TrustedProxies: with trusted_proxies [127.0.0.1/32] the
// limit applies to the address the proxy forwarded (the rightmost one):
// another forwarded address, and the proxy itself, keep their own
// budgets; an address the client wrote further left changes nothing. A
// reload to auth_failures_per_minute 0 lifts the limit.
func TestGateway_TrustedProxies(t *testing.T) {
	sim := startSim(t, smsc.Options{})
	cfg := testConfig(t, cfgOpts{simAddr: sim.Addr()})
	cfg.AuthFailuresPerMinute = 5
	cfg.TrustedProxies = []string{"127.0.0.1/32"}
	if ps := cfg.Validate(); len(ps) > 0 {
		t.Fatal(ps)
	}
	g := startGateway(t, cfg)
	for i := 0; i < 50; i++ {
		forbidInLogs(t, fmt.Sprintf("wrong-key-%04d", i))
	}
	if n := failUntil429(t, g, "203.0.113.7", 50); n < 5 {
		t.Fatalf("%d wrong keys answered 401 before a 429, want 5", n)
	}
	if code := statusFrom(t, g, "wrong-key-0049", "198.51.100.1, 203.0.113.7"); code != 429 {
		t.Fatalf("the same forwarded address behind a made-up one: got %d, want 429", code)
	}
	if code := statusFrom(t, g, "wrong-key-0048", "203.0.113.8"); code != 401 {
		t.Fatalf("another forwarded address: got %d, want 401", code)
	}
	if code := statusFrom(t, g, "wrong-key-0047", ""); code != 401 {
		t.Fatalf("the proxy's own address: got %d, want 401", code)
	}
	if code := statusFrom(t, g, keyA, "203.0.113.7"); code != 404 {
		t.Fatalf("right key from the limited address: got %d, want 404", code)
	}
	remotes := map[any]bool{}
	for _, l := range requestLines(t) {
		remotes[l["remote"]] = true
	}
	for _, want := range []string{"203.0.113.7", "203.0.113.8", "127.0.0.1"} {
		if !remotes[want] {
			t.Fatalf("request lines name remotes %v, want %s among them", remotes, want)
		}
	}
	c2 := *cfg
	c2.AuthFailuresPerMinute = 0
	if err := g.d.Reload(&c2); err != nil {
		t.Fatal(err)
	}
	if code := statusFrom(t, g, "wrong-key-0046", "203.0.113.7"); code != 401 {
		t.Fatalf("after a reload with no limit: got %d, want 401", code)
	}
}

func TestValidate_Access(t *testing.T) {
	cfg, err := daemon.ParseConfig(strings.NewReader("listen: 127.0.0.1:9\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.AuthFailuresPerMinute != 60 || len(cfg.TrustedProxies) != 0 {
		t.Fatalf("defaults: got auth_failures_per_minute %d, trusted_proxies %v; want 60 and none",
			cfg.AuthFailuresPerMinute, cfg.TrustedProxies)
	}
	cfg = testConfig(t, cfgOpts{simAddr: "127.0.0.1:1"})
	cfg.AuthFailuresPerMinute = -1
	cfg.TrustedProxies = []string{"10.0.0.0/8", "192.0.2.1", "2001:db8::/32", "10.0.0.0/33", "proxy.example"}
	var got []string
	for _, p := range cfg.Validate() {
		got = append(got, p.String())
	}
	want := []string{
		"auth_failures_per_minute: must not be negative (0 turns the limit off)",
		`trusted_proxies[3]: want a CIDR like 10.0.0.0/8 or an address, got "10.0.0.0/33"`,
		`trusted_proxies[4]: want a CIDR like 10.0.0.0/8 or an address, got "proxy.example"`,
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}
