package daemon_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/daemon"
	"github.com/otpgate/otpgate/smpp/smsc"
)

const (
	clientA = "64c1115454eb66846d026abf"
	keyA    = "key-a-0001"
	clientB = "client-b"
	keyB    = "key-b-0001"
)

// gateway is a running daemon on 127.0.0.1:0.
type gateway struct {
	d      *daemon.Server
	url    string // the API port
	admin  string // the admin port (/metrics, /readyz with its reason)
	cancel context.CancelFunc
	done   chan error
}

// startSim starts a simulator that the test owns.
func startSim(tb testing.TB, cfg smsc.Options) *smsc.Server {
	tb.Helper()
	if cfg.SystemID == "" {
		cfg.SystemID, cfg.Password = "carrier-a", "pw-a"
	}
	if cfg.ReceiptDelay == 0 {
		cfg.ReceiptDelay = 20 * time.Millisecond
	}
	s, err := smsc.Listen("127.0.0.1:0", cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// deadAddr returns an address where nothing listens.
func deadAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

type cfgOpts struct {
	dir          string
	simAddr      string
	deadAddr     string
	maxAttempts  int
	resend       string
	perHour      int
	ratePerSec   float64
	rateBurst    int
	submitTimout string
}

func testConfig(tb testing.TB, o cfgOpts) *daemon.Config {
	tb.Helper()
	cfg, err := daemon.ParseConfig(strings.NewReader(configYAML(tb, o)))
	if err != nil {
		tb.Fatal(err)
	}
	if ps := cfg.Validate(); len(ps) > 0 {
		tb.Fatal(ps)
	}
	return cfg
}

// configYAML is the text of a test configuration: client A (all
// countries, custom text 41), client B (IN only), carrier a at o.simAddr
// for every country but GB, whose only carrier is dead.
func configYAML(tb testing.TB, o cfgOpts) string {
	tb.Helper()
	if o.dir == "" {
		o.dir = tb.TempDir()
	}
	if o.deadAddr == "" {
		o.deadAddr = deadAddr(tb)
	}
	if o.maxAttempts == 0 {
		o.maxAttempts = 3
	}
	if o.resend == "" {
		o.resend = "0s"
	}
	if o.perHour == 0 {
		o.perHour = 100
	}
	if o.submitTimout == "" {
		o.submitTimout = "3s"
	}
	rate := ""
	if o.ratePerSec > 0 {
		rate = fmt.Sprintf("rate: {per_second: %g, burst: %d}", o.ratePerSec, o.rateBurst)
	}
	y := fmt.Sprintf(`
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
data_dir: %[1]s
secret_file: %[2]s
submit_timeout: %[9]s
log: {level: debug}
otp: {ttl: 5m, max_attempts: %[3]d, resend_interval: %[4]s, max_per_number_per_hour: %[5]d}
clients:
  - id: %[10]s
    api_keys: ["%[11]s"]
    sender: OTPGATE
    countries: ["*"]
    %[8]s
    custom_texts: {"41": "Acme: login code ####, valid 5 minutes"}
  - id: %[12]s
    api_keys: ["%[13]s"]
    sender: "12345"
    countries: [IN]
carriers:
  - {name: a, address: "%[6]s", system_id: carrier-a, password: pw-a, binds: 2, window: 8}
  - {name: dead, address: "%[7]s", system_id: dead, password: pw}
routes:
  - countries: [GB]
    carriers: [dead]
  - countries: ["*"]
    carriers: [a]
blocked_numbers: ["+1-9990000000"]
`, filepath.Join(o.dir, "data"), filepath.Join(o.dir, "otp.secret"), o.maxAttempts, o.resend, o.perHour,
		o.simAddr, o.deadAddr, rate, o.submitTimout, clientA, daemon.HashKey(keyA), clientB, daemon.HashKey(keyB))
	return y
}

func startGateway(tb testing.TB, cfg *daemon.Config) *gateway {
	tb.Helper()
	d, err := daemon.New(cfg, testLogger(tb))
	if err != nil {
		tb.Fatal(err)
	}
	g := runDaemon(tb, d)
	waitReady(tb, g.url)
	return g
}

// runDaemon runs d and returns once its listener serves, without
// waiting for a carrier to bind.
func runDaemon(tb testing.TB, d *daemon.Server) *gateway {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	g := &gateway{d: d, cancel: cancel, done: make(chan error, 1)}
	go func() { g.done <- d.Run(ctx) }()
	select {
	case <-d.Ready():
	case err := <-g.done:
		tb.Fatalf("daemon exited early: %v", err)
	case <-time.After(20 * time.Second):
		tb.Fatal("daemon not ready after 20s")
	}
	g.url = "http://" + d.Addr().String()
	if a := d.AdminAddr(); a != nil {
		g.admin = "http://" + a.String()
	}
	tb.Cleanup(func() { g.stop(tb) })
	return g
}

// stop cancels the daemon and checks that Run returned nil.
func (g *gateway) stop(tb testing.TB) {
	tb.Helper()
	if g.cancel == nil {
		return
	}
	g.cancel()
	g.cancel = nil
	select {
	case err := <-g.done:
		if err != nil {
			tb.Errorf("Run returned %v, want nil", err)
		}
	case <-time.After(30 * time.Second):
		tb.Error("daemon did not stop within 30s")
	}
}

func waitReady(tb testing.TB, url string) {
	tb.Helper()
	for i := 0; i < 400; i++ {
		resp, err := http.Get(url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
	tb.Fatal("gateway never became ready")
}

var httpClient = &http.Client{Timeout: 15 * time.Second}

func call(tb testing.TB, method, url, key, body string) (int, string) {
	tb.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", key)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func sendBody(client, number, text string) string {
	return fmt.Sprintf(`{"clientId":%q,"phoneNumber":%q,"channel":"smsotp","customTextId":%q}`, client, number, text)
}

func verifyBody(client, number, code string) string {
	return fmt.Sprintf(`{"clientId":%q,"phoneNumber":%q,"otp":%q}`, client, number, code)
}

func send(tb testing.TB, g *gateway, number string) (int, string) {
	tb.Helper()
	return call(tb, "POST", g.url+"/api/v3/otp-verification/send-otp", keyA, sendBody(clientA, number, "6"))
}

func verify(tb testing.TB, g *gateway, number, code string) (int, string) {
	tb.Helper()
	return call(tb, "POST", g.url+"/api/v3/otp-verification/verify-otp", keyA, verifyBody(clientA, number, code))
}

var codeRE = regexp.MustCompile(`\d{4,8}`)

// codeFor waits for the simulator to receive an SMS to e164 (digits) and
// returns the code in its text: the simulator stands in for the handset.
func codeFor(tb testing.TB, sim *smsc.Server, e164 string, nth int) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for n := 1; ; n++ {
		msgs, err := sim.WaitMessages(ctx, n)
		if err != nil {
			tb.Fatalf("no SMS #%d to %s: %v", nth, e164, err)
		}
		seen := 0
		for _, m := range msgs {
			if m.Dst == e164 {
				seen++
				if seen == nth {
					return codeRE.FindString(m.Text)
				}
			}
		}
	}
}

func requestID(tb testing.TB, body string) string {
	tb.Helper()
	var r struct {
		Result struct {
			RequestID string `json:"requestId"`
		} `json:"result"`
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil || r.Result.RequestID == "" {
		tb.Fatalf("no requestId in %s (%v)", body, err)
	}
	return r.Result.RequestID
}

// waitState polls the status endpoint until state is want or 10s passed.
func waitState(tb testing.TB, g *gateway, reqID, want string) string {
	tb.Helper()
	return waitStatus(tb, g, reqID, `"state":"`+want+`"`)
}

// waitStatus polls the status endpoint until its body holds want.
func waitStatus(tb testing.TB, g *gateway, reqID, want string) string {
	tb.Helper()
	var body string
	for i := 0; i < 400; i++ {
		var code int
		code, body = call(tb, "GET", g.url+"/api/v3/otp-verification/status/"+reqID, keyA, "")
		if code == 200 && strings.Contains(body, want) {
			return body
		}
		time.Sleep(25 * time.Millisecond)
	}
	tb.Fatalf("status never held %s: %s", want, body)
	return ""
}

// waitSimBound waits until sim has n sessions bound.
func waitSimBound(tb testing.TB, sim *smsc.Server, n int) {
	tb.Helper()
	for i := 0; sim.Bound() != n; i++ {
		if i > 1000 {
			tb.Fatalf("got %d sessions bound, want %d", sim.Bound(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitCarrierBound waits until the gateway itself reports a bound session
// of carrier (the simulator counts a bind before the gateway has read the
// bind_resp, so its count is no proof that sends can go out).
func waitCarrierBound(tb testing.TB, g *gateway, carrier string) {
	tb.Helper()
	for i := 0; ; i++ {
		_, text := call(tb, "GET", g.admin+"/metrics", "", "")
		for _, l := range strings.Split(text, "\n") {
			if strings.HasPrefix(l, "otpgate_bind_up{") && strings.Contains(l, `carrier="`+carrier+`"`) && strings.HasSuffix(l, " 1") {
				return
			}
		}
		if i > 1000 {
			tb.Fatalf("carrier %s never bound", carrier)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// sendThrough sends to number (+91-98…) through g and checks that the
// simulator got a six-digit code: what got there is on the wire.
func sendThrough(t *testing.T, g *gateway, sim *smsc.Server, number, what string) {
	t.Helper()
	if code, body := send(t, g, number); code != 200 {
		t.Fatalf("send %s: got %d %s", what, code, body)
	}
	if c := codeFor(t, sim, digitsOf(number), 1); len(c) != 6 {
		t.Fatalf("send %s: got code %q", what, c)
	}
}

func digitsOf(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, s)
}

// TestRun_StopWhileStarting: a stop asked for while the gateway still
// reaches its Redis store (SIGTERM during the start) is a clean stop, nil
// for exit 0; a store it cannot reach is an error when nobody asked.
func TestRun_StopWhileStarting(t *testing.T) {
	cfg := testConfig(t, cfgOpts{simAddr: deadAddr(t)})
	cfg.Store.Backend = "redis"
	cfg.Store.Redis.Addrs = []string{deadAddr(t)}
	d, err := daemon.New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := d.Run(ctx); err != nil {
		t.Fatalf("stopped while starting: got %v, want nil", err)
	}
	if !strings.Contains(logsOf(t), `"msg":"otpgate stopped while starting"`) {
		t.Fatalf("no log line of the early stop:\n%s", logsOf(t))
	}
	d, err = daemon.New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := d.Run(ctx); err == nil || ctx.Err() != nil {
		t.Fatalf("store unreachable: got %v (ctx %v), want the store's error before the minute", err, ctx.Err())
	}
}
