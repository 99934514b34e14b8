package daemon_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/daemon"

	"github.com/otpgate/otpgate/smpp/smsc"
)

// TestGateway_OneNumberOneLimit: three spellings of one handset (a trunk
// prefix written after the country code, once or twice) share one resend
// limit and one code.
func TestGateway_OneNumberOneLimit(t *testing.T) {
	sim := startSim(t, smsc.Options{})
	g := startGateway(t, testConfig(t, cfgOpts{simAddr: sim.Addr(), resend: "30s"}))
	waitCarrierBound(t, g, "a")
	if code, body := send(t, g, "+91-9876543210"); code != 200 {
		t.Fatalf("send: got %d %s", code, body)
	}
	for _, other := range []string{"+91-09876543210", "+91-009876543210", "+9109876543210"} {
		if code, body := send(t, g, other); code != 429 {
			t.Fatalf("send to %s within resend_interval: got %d %s, want 429", other, code, body)
		}
	}
	otpCode := codeFor(t, sim, "919876543210", 1)
	if code, body := verify(t, g, "+91-09876543210", otpCode); code != 200 {
		t.Fatalf("verify under another spelling: got %d %s, want 200", code, body)
	}
	if code, body := send(t, g, "+91-98765"); code != 400 {
		t.Fatalf("impossible number: got %d %s, want 400", code, body)
	}
}

// TestGateway_SlowClients: 300 connections that send their headers and
// one byte of a body are closed by the server once read_timeout (1 s
// here) has passed, and the gateway answers others meanwhile.
func TestGateway_SlowClients(t *testing.T) {
	t.Cleanup(daemon.SetReadTimeout(time.Second))
	sim := startSim(t, smsc.Options{})
	g := startGateway(t, testConfig(t, cfgOpts{simAddr: sim.Addr()}))
	addr := strings.TrimPrefix(g.url, "http://")
	const n = 300
	conns := make([]net.Conn, 0, n)
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		fmt.Fprintf(c, "POST /api/v3/otp-verification/send-otp HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\n"+
			"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{", keyA)
		conns = append(conns, c)
	}
	if code, _ := call(t, "GET", g.url+"/healthz", "", ""); code != 200 {
		t.Fatalf("healthz while 300 clients stall: %d", code)
	}
	start := time.Now()
	for i, c := range conns {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.Copy(io.Discard, c); err != nil {
			t.Fatalf("connection %d not closed by the server: %v", i, err)
		}
	}
	t.Logf("300 stalled requests closed %s after the last was opened", time.Since(start).Round(time.Millisecond))
}

// TestGateway_MaxConnections: past max_connections a new connection waits
// until one of the others ends.
func TestGateway_MaxConnections(t *testing.T) {
	t.Cleanup(daemon.SetReadTimeout(time.Second))
	sim := startSim(t, smsc.Options{})
	cfg := testConfig(t, cfgOpts{simAddr: sim.Addr()})
	cfg.MaxConnections = 4
	g := startGateway(t, cfg)
	addr := strings.TrimPrefix(g.url, "http://")
	var held []net.Conn
	for i := 0; i < 4; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n") // headers never finished
		held = append(held, c)
	}
	time.Sleep(100 * time.Millisecond) // let the server accept the four
	answered := make(chan time.Time, 1)
	go func() {
		resp, err := http.Get(g.url + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		answered <- time.Now()
	}()
	var closedAt time.Time
	for _, c := range held {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		io.Copy(io.Discard, c) // the read timeout ends it
		closedAt = time.Now()
	}
	if at := <-answered; at.Before(closedAt.Add(-200 * time.Millisecond)) {
		t.Fatalf("a fifth connection was served %s before the four held ones ended", closedAt.Sub(at))
	}
}

// TestGateway_DailyFailureBudget: past otp.max_failures_per_day wrong
// guesses, verify answers 429 even with the right code of a new send.
func TestGateway_DailyFailureBudget(t *testing.T) {
	sim := startSim(t, smsc.Options{})
	cfg := testConfig(t, cfgOpts{simAddr: sim.Addr(), maxAttempts: 10})
	cfg.OTP.MaxFailuresPerDay = 3
	g := startGateway(t, cfg)
	waitCarrierBound(t, g, "a")
	const number = "+91-9876543210"
	if code, body := send(t, g, number); code != 200 {
		t.Fatalf("send: %d %s", code, body)
	}
	good := codeFor(t, sim, "919876543210", 1)
	for i := 0; i < 3; i++ {
		if code, _ := verify(t, g, number, flip(good)); code != 400 {
			t.Fatalf("wrong guess %d: got %d, want 400", i+1, code)
		}
	}
	if code, body := verify(t, g, number, good); code != 429 || !strings.Contains(body, "Maximum verification attempts exceeded") {
		t.Fatalf("right code past the daily budget: got %d %s, want 429", code, body)
	}
	if code, body := send(t, g, number); code != 200 {
		t.Fatalf("resend: %d %s", code, body)
	}
	if code, _ := verify(t, g, number, codeFor(t, sim, "919876543210", 2)); code != 429 {
		t.Fatalf("a new code does not reset the daily budget: got %d, want 429", code)
	}
}

// TestConfig_MinDigits: check-config refuses a template shorter than
// otp.min_digits, and send-otp refuses such a default text.
func TestConfig_MinDigits(t *testing.T) {
	cfg := testConfig(t, cfgOpts{simAddr: "127.0.0.1:1"})
	cfg.OTP.MinDigits = 5
	ps := cfg.Validate()
	if len(ps) != 1 || ps[0].Path != "clients[0].custom_texts.41" {
		t.Fatalf("got %v, want one problem at clients[0].custom_texts.41", ps)
	}
	sim := startSim(t, smsc.Options{})
	cfg = testConfig(t, cfgOpts{simAddr: sim.Addr()})
	cfg.OTP.MinDigits = 5
	delete(cfg.Clients[0].CustomTexts, "41")
	g := startGateway(t, cfg)
	code, body := call(t, "POST", g.url+"/api/v3/otp-verification/send-otp", keyA, sendBody(clientA, "+91-9876543210", "4"))
	if code != 400 || !strings.Contains(body, "Custom text does not exist") {
		t.Fatalf("4-digit default text with min_digits 5: got %d %s, want 400 Custom text does not exist", code, body)
	}
}
