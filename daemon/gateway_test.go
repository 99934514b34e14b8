package daemon_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otpgate/otpgate/daemon"
	"github.com/otpgate/otpgate/smpp/smsc"
)

// logSink collects the daemon's JSON log lines; at cleanup it checks that
// each one parses and that none holds a secret.
type logSink struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	secrets []string
}

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *logSink) forbid(secret string) {
	s.mu.Lock()
	s.secrets = append(s.secrets, secret)
	s.mu.Unlock()
}

var sinks sync.Map // testing.TB -> *logSink

// sinkFor returns tb's log sink, made on first use with its check at
// cleanup: every line JSON, no forbidden secret in any. forbidInLogs may
// come before the gateway starts, and every gateway a test starts writes
// to the one sink, so a secret forbidden at any point is checked in all
// their lines.
func sinkFor(tb testing.TB) *logSink {
	s, loaded := sinks.LoadOrStore(tb, &logSink{secrets: []string{keyA, keyB, "pw-a"}})
	sink := s.(*logSink)
	if loaded {
		return sink
	}
	tb.Cleanup(func() {
		sinks.Delete(tb)
		sink.mu.Lock()
		defer sink.mu.Unlock()
		for _, line := range strings.Split(strings.TrimSpace(sink.buf.String()), "\n") {
			if line == "" {
				continue
			}
			if !json.Valid([]byte(line)) {
				tb.Errorf("log line is not JSON: %s", line)
			}
			for _, s := range sink.secrets {
				if strings.Contains(line, s) {
					tb.Errorf("log line holds a secret %q: %s", s, line)
				}
			}
		}
		if tb.Failed() { // what the gateway did, for a failure seen only in CI
			lines := strings.Split(strings.TrimSpace(sink.buf.String()), "\n")
			lines = lines[max(0, len(lines)-80):]
			tb.Logf("the gateway's last %d log lines:\n%s", len(lines), strings.Join(lines, "\n"))
		}
	})
	return sink
}

func testLogger(tb testing.TB) *slog.Logger {
	return slog.New(slog.NewJSONHandler(sinkFor(tb), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// forbidInLogs fails tb at its end if any line logged through
// testLogger(tb), before or after this call, holds secret.
func forbidInLogs(tb testing.TB, secret string) {
	sinkFor(tb).forbid(secret)
}

// logsOf returns what the gateways of tb logged so far; tb must have
// started one.
func logsOf(tb testing.TB) string {
	tb.Helper()
	s, ok := sinks.Load(tb)
	if !ok {
		tb.Fatal("no log sink: no gateway started with testLogger")
	}
	sink := s.(*logSink)
	sink.mu.Lock()
	defer sink.mu.Unlock()
	return sink.buf.String()
}

func TestGateway_SendVerify(t *testing.T) {
	sim := startSim(t, smsc.Options{ReceiptTLV: true})
	g := startGateway(t, testConfig(t, cfgOpts{simAddr: sim.Addr()}))

	code, body := send(t, g, "+91-9876543210")
	if code != 200 {
		t.Fatalf("send: got %d %s, want 200", code, body)
	}
	if !strings.HasPrefix(body, `{"result":{"status":200,"statusDescription":"Success OTP sent","requestId":"`) {
		t.Fatalf("send body: got %s", body)
	}
	reqID := requestID(t, body)
	otpCode := codeFor(t, sim, "919876543210", 1)
	forbidInLogs(t, otpCode)
	if len(otpCode) != 6 {
		t.Fatalf("got code %q, want 6 digits", otpCode)
	}
	msgs := sim.Messages()
	m := msgs[len(msgs)-1]
	if m.Text != "Your OTP for verification is "+otpCode {
		t.Fatalf("SMS text: got %q", m.Text)
	}
	if m.DstTON != 1 || m.DstNPI != 1 || m.Src != "OTPGATE" || m.SrcTON != 5 || m.DataCoding != 0 || m.RegisteredDelivery&1 != 1 {
		t.Fatalf("submit fields: got %+v", m)
	}

	waitState(t, g, reqID, "DELIVERED")

	code, body = verify(t, g, "+91-9876543210", otpCode)
	if code != 200 || body != `{"result":{"status":200,"statusDescription":"OTP verified"}}` {
		t.Fatalf("verify: got %d %s", code, body)
	}
	code, body = verify(t, g, "+91-9876543210", otpCode)
	if code != 404 || !strings.Contains(body, `"message":"OTP not found or expired"`) {
		t.Fatalf("second verify: got %d %s, want 404", code, body)
	}
	status := waitStatus(t, g, reqID, `"verified":true`) // marked in the background, just after the 200
	for _, want := range []string{`"state":"DELIVERED"`, `"phoneNumber":"+91-98******10"`, `"carrier":"a"`, `"clientId":"` + clientA + `"`} {
		if !strings.Contains(status, want) {
			t.Fatalf("status %s lacks %s", status, want)
		}
	}
	// Another client's request id is not found.
	code, body = call(t, "GET", g.url+"/api/v3/otp-verification/status/"+reqID, keyB, "")
	if code != 404 || !strings.Contains(body, `"message":"Request not found"`) {
		t.Fatalf("status by other client: got %d %s", code, body)
	}
}

func TestGateway_CustomTextAndFormats(t *testing.T) {
	sim := startSim(t, smsc.Options{})
	g := startGateway(t, testConfig(t, cfgOpts{simAddr: sim.Addr()}))
	for i, number := range []string{"+1-2025550123", "+44 7400123456", "+4915112345678"} {
		code, body := call(t, "POST", g.url+"/api/v3/otp-verification/send-otp", "Bearer "+keyA, sendBody(clientA, number, "41"))
		if i == 1 {
			// GB routes to the dead carrier.
			if code != 409 {
				t.Fatalf("%s: got %d %s, want 409", number, code, body)
			}
			continue
		}
		if code != 200 {
			t.Fatalf("%s: got %d %s", number, code, body)
		}
	}
	c := codeFor(t, sim, "4915112345678", 1)
	if len(c) != 4 {
		t.Fatalf("custom text 41 has 4 '#', got code %q", c)
	}
	msgs := sim.Messages()
	if got := msgs[len(msgs)-1].Text; got != "Acme: login code "+c+", valid 5 minutes" {
		t.Fatalf("got text %q", got)
	}
	if code, body := verify(t, g, "+49-15112345678", c); code != 200 {
		t.Fatalf("verify in another format: got %d %s", code, body)
	}
}

func TestGateway_RestartKeepsCodesAndReceipts(t *testing.T) {
	// Receipts come 3 s after the submit: after the first gateway stopped.
	sim := startSim(t, smsc.Options{ReceiptDelay: 3 * time.Second})
	dir := t.TempDir()
	cfg := testConfig(t, cfgOpts{dir: dir, simAddr: sim.Addr()})

	g1 := startGateway(t, cfg)
	code, body := send(t, g1, "+91-9876500001")
	if code != 200 {
		t.Fatalf("send: got %d %s", code, body)
	}
	reqID := requestID(t, body)
	otpCode := codeFor(t, sim, "919876500001", 1)
	g1.stop(t)
	if st := sim.Stats(); st.ReceiptsAcked != 0 {
		t.Fatalf("receipt acked before the restart (%d); the test needs it after", st.ReceiptsAcked)
	}

	g2 := startGateway(t, testConfig(t, cfgOpts{dir: dir, simAddr: sim.Addr()}))
	waitState(t, g2, reqID, "DELIVERED")
	if code, body := verify(t, g2, "+91-9876500001", otpCode); code != 200 {
		t.Fatalf("verify after restart: got %d %s", code, body)
	}
}

func TestGateway_Rebind(t *testing.T) {
	sim := startSim(t, smsc.Options{})
	// The binds are young when dropped: they wait reconnect_delay.
	y := strings.Replace(configYAML(t, cfgOpts{simAddr: sim.Addr()}), "binds: 2, window: 8}", "binds: 2, window: 8, reconnect_delay: 100ms}", 1)
	cfg, err := daemon.ParseConfig(strings.NewReader(y))
	if err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, cfg)
	waitSimBound(t, sim, 2)
	if code, body := send(t, g, "+91-9000000001"); code != 200 {
		t.Fatalf("send before drop: %d %s", code, body)
	}
	if n := sim.DropConnections(); n == 0 {
		t.Fatal("no connection to drop")
	}
	// Sends may fail while the carrier rebinds; they must succeed again.
	ok := false
	for i := 2; i < 200 && !ok; i++ {
		code, body := send(t, g, "+91-90000000"+twoDigits(i))
		switch code {
		case 200:
			ok = true
		case 409:
			time.Sleep(50 * time.Millisecond)
		default:
			t.Fatalf("send after drop: got %d %s, want 200 or 409", code, body)
		}
	}
	if !ok {
		t.Fatal("sends never succeeded after the connection dropped")
	}
	if st := sim.Stats(); st.Binds < 3 {
		t.Fatalf("got %d binds, want the 2 first and at least 1 rebind", st.Binds)
	}
}

func twoDigits(i int) string { return string([]byte{byte('0' + i/10%10), byte('0' + i%10)}) }

func TestGateway_CarrierDown(t *testing.T) {
	sim := startSim(t, smsc.Options{})
	g := startGateway(t, testConfig(t, cfgOpts{simAddr: sim.Addr(), submitTimout: "5s"}))
	// The GB route has only the dead carrier: 409 at once, not after the
	// 5 s submit_timeout (half of it is a bound no scheduler can miss).
	start := time.Now()
	code, body := send(t, g, "+44-7400123456")
	if code != 409 || body != `{"error":{"name":"Error","message":"Upstream down","status":409,"reason":"Error","type":"Conflict","statusCode":409}}` {
		t.Fatalf("got %d %s, want 409 Upstream down", code, body)
	}
	if el := time.Since(start); el > 2500*time.Millisecond {
		t.Fatalf("409 after %v: the gateway waited for the submit timeout", el)
	}

	// The whole carrier goes away: 409 within the submit timeout, never a hang.
	sim.Close()
	start = time.Now()
	code, body = send(t, g, "+91-9000000099")
	if code != 409 {
		t.Fatalf("with the simulator closed: got %d %s, want 409", code, body)
	}
	if el := time.Since(start); el > 5*time.Second+2*time.Second {
		t.Fatalf("409 after %v, want within submit_timeout (5s)", el)
	}
}

// TestGateway_DrainOnShutdown: a send in flight when the daemon is told to
// stop still gets its 200; then the carrier unbinds and Run returns nil.
func TestGateway_DrainOnShutdown(t *testing.T) {
	sim := startSim(t, smsc.Options{})
	sim.SetAckDelay(700 * time.Millisecond)
	g := startGateway(t, testConfig(t, cfgOpts{simAddr: sim.Addr()}))
	waitSimBound(t, sim, 2)
	type result struct {
		code int
		body string
	}
	res := make(chan result, 1)
	go func() {
		code, body := send(t, g, "+91-9876512345")
		res <- result{code, body}
	}()
	for i := 0; sim.Stats().Submits == 0; i++ {
		if i > 500 {
			t.Fatal("the submit never reached the simulator")
		}
		time.Sleep(5 * time.Millisecond)
	}
	unbindsBefore := sim.Stats().Unbinds
	g.stop(t) // cancels Run and waits for it: nil expected
	r := <-res
	if r.code != 200 {
		t.Fatalf("in-flight send during shutdown: got %d %s, want 200", r.code, r.body)
	}
	if got := sim.Stats().Unbinds - unbindsBefore; got < 2 {
		t.Fatalf("got %d unbinds, want both sessions unbound", got)
	}
}

// TestGateway_SharedCodeRoutes: +1 numbers of Canada and the US take
// different routes, told apart by libphonenumber data.
func TestGateway_SharedCodeRoutes(t *testing.T) {
	simUS := startSim(t, smsc.Options{})
	simCA := startSim(t, smsc.Options{SystemID: "carrier-ca", Password: "pw-ca"})
	y := configYAML(t, cfgOpts{simAddr: simUS.Addr()})
	y = strings.Replace(y, "routes:\n", "routes:\n  - countries: [CA]\n    carriers: [ca]\n", 1)
	y = strings.Replace(y, "carriers:\n  - {name: a,", "carriers:\n  - {name: ca, address: \""+simCA.Addr()+"\", system_id: carrier-ca, password: pw-ca}\n  - {name: a,", 1)
	cfg, err := daemon.ParseConfig(strings.NewReader(y))
	if err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, cfg)
	// /readyz needs only one carrier bound; this test needs both.
	waitCarrierBound(t, g, "ca")
	if code, body := send(t, g, "+1-4165550123"); code != 200 { // Toronto
		t.Fatalf("CA: %d %s", code, body)
	}
	if code, body := send(t, g, "+1-2025550123"); code != 200 { // Washington
		t.Fatalf("US: %d %s", code, body)
	}
	if n := len(simCA.Messages()); n != 1 || simCA.Messages()[0].Dst != "14165550123" {
		t.Fatalf("CA carrier got %+v, want the Toronto number only", simCA.Messages())
	}
	for _, m := range simUS.Messages() {
		if m.Dst == "14165550123" {
			t.Fatal("the Canadian number went to the default route")
		}
	}
}
