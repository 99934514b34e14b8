package daemon_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/daemon"
	"github.com/otpgate/otpgate/smpp/smsc"
)

// TestGateway_LateAckAndUnknownOutcome: the SMSC answers a submit after
// submit_timeout. The send-otp answers 409, but the code is kept (the
// handset got the SMS and verifies with it), the late submit_sm_resp gives
// the message its carrier id, and the receipt then matches it: the
// client's callback reports it DELIVERED through carrier a.
func TestGateway_LateAckAndUnknownOutcome(t *testing.T) {
	fastRetries(t)
	h := newHook(t, cbSecretA, nil)
	sim := startSim(t, smsc.Options{ReceiptTLV: true})
	g := startGateway(t, callbackConfig(t, cfgOpts{simAddr: sim.Addr(), submitTimout: "300ms"}, h.srv.URL+"/cb", ""))
	waitCarrierBound(t, g, "a")
	sim.SetAckDelay(800 * time.Millisecond)
	code, body := send(t, g, "+91-9876543210")
	if code != 409 {
		t.Fatalf("send: got %d %s, want 409", code, body)
	}
	cb := h.next(t) // the receipt of the late-acknowledged message
	if cb.State != "DELIVERED" || cb.Carrier != "a" || cb.ClientID != clientA || cb.RequestID == "" {
		t.Fatalf("callback %+v: want DELIVERED through a", cb)
	}
	status := waitState(t, g, cb.RequestID, "DELIVERED")
	t.Logf("status after the late ack: %s", status)
	otpCode := codeFor(t, sim, "919876543210", 1)
	if code, body := verify(t, g, "+91-9876543210", otpCode); code != 200 {
		t.Fatalf("verify the code of the unknown-outcome send: got %d %s, want 200", code, body)
	}
}

// TestGateway_HugeMessageID: the SMSC accepts the submit but answers a
// 65,000-byte message_id. The SMS has gone out: send-otp answers 200 and
// the code verifies (the id, which no receipt could match, is not
// indexed; indexing it made badger refuse the key, and the send answered
// 503 with its code lost).
func TestGateway_HugeMessageID(t *testing.T) {
	sim := startSim(t, smsc.Options{})
	g := startGateway(t, testConfig(t, cfgOpts{simAddr: sim.Addr()}))
	waitCarrierBound(t, g, "a")
	sim.SetAckID(strings.Repeat("A", 65000), true)
	if code, body := send(t, g, "+91-9876543210"); code != 200 {
		t.Fatalf("send: got %d %s, want 200", code, body)
	}
	otpCode := codeFor(t, sim, "919876543210", 1)
	if code, body := verify(t, g, "+91-9876543210", otpCode); code != 200 {
		t.Fatalf("verify: got %d %s, want 200", code, body)
	}
}

// retryConfig is testConfig with a second carrier, b at simB, after a on
// the route that takes every country but GB.
func retryConfig(t *testing.T, simA, simB *smsc.Server) *daemon.Config {
	t.Helper()
	cfg := testConfig(t, cfgOpts{simAddr: simA.Addr()})
	cfg.Carriers = append(cfg.Carriers, daemon.CarrierConfig{Name: "b", Address: simB.Addr(), SystemID: "carrier-a",
		Password: "pw-a", Mode: "transceiver", Binds: 1, Burst: 1, Window: 10})
	cfg.Routes[1].Carriers = []string{"a", "b"}
	if ps := cfg.Validate(); len(ps) > 0 {
		t.Fatal(ps)
	}
	return cfg
}

// TestGateway_RetryUndelivered: carrier a reports the SMS UNDELIV while
// its code is live; the same text goes once through b, the status shows
// both attempts, and the code the client was told about still verifies.
// The same when a's receipt comes before its submit_sm_resp, so that the
// gateway keeps it pending and its save of the send applies it (the
// receipt overtook the save in a loaded CI run, and the retry was lost).
func TestGateway_RetryUndelivered(t *testing.T) {
	for _, tt := range []struct {
		name  string
		first bool
	}{{"ReceiptAfterResponse", false}, {"ReceiptBeforeResponse", true}} {
		t.Run(tt.name, func(t *testing.T) {
			testRetryUndelivered(t, smsc.Options{ReceiptState: "UNDELIV", ReceiptFirst: tt.first})
		})
	}
}

func testRetryUndelivered(t *testing.T, optsA smsc.Options) {
	simA := startSim(t, optsA)
	simB := startSim(t, smsc.Options{})
	g := startGateway(t, retryConfig(t, simA, simB))
	waitCarrierBound(t, g, "a")
	waitCarrierBound(t, g, "b")
	code, body := send(t, g, "+91-9876543210")
	if code != 200 {
		t.Fatalf("send: got %d %s", code, body)
	}
	reqID := requestID(t, body)
	if simA.Stats().Accepted != 1 {
		t.Fatalf("carrier a accepted %d SMS, want the send's", simA.Stats().Accepted)
	}
	first := codeFor(t, simA, "919876543210", 1)
	again := codeFor(t, simB, "919876543210", 1)
	if first != again {
		t.Fatal("the retry carried another code than the one sent first")
	}
	status := waitStatus(t, g, reqID, `"carrier":"b","state":"DELIVERED"`)
	var st struct {
		Result struct {
			Attempts []struct{ Carrier, State string } `json:"attempts"`
		} `json:"result"`
	}
	if err := json.Unmarshal([]byte(status), &st); err != nil {
		t.Fatal(err)
	}
	if a := st.Result.Attempts; len(a) != 2 || a[0].Carrier != "a" || a[0].State != "UNDELIVERABLE" || a[1].Carrier != "b" || a[1].State != "DELIVERED" {
		t.Fatalf("attempts %+v, want a UNDELIVERABLE then b DELIVERED (status %s)", a, status)
	}
	// The answer with its attempts conforms to openapi.yaml.
	newAPIChecker(t, loadOpenAPI(t), g.url).do(t, exchange{name: "retried", method: "GET",
		path: "/api/v3/otp-verification/status/" + reqID, key: keyA, status: 200})
	if code, body := verify(t, g, "+91-9876543210", first); code != 200 {
		t.Fatalf("verify: got %d %s", code, body)
	}
	if n := len(simB.Messages()) + len(simA.Messages()); n != 2 {
		t.Fatalf("%d SMS in all, want 2 (one retry)", n)
	}
}

// TestGateway_RetryAfterLateAck: carrier a answers the submit after
// submit_timeout (409, outcome unknown) and sends its UNDELIV receipt
// before that answer. The receipt is kept pending, the late ack applies
// it, and the code, still live, goes once through b.
func TestGateway_RetryAfterLateAck(t *testing.T) {
	simA := startSim(t, smsc.Options{ReceiptState: "UNDELIV", ReceiptFirst: true})
	simB := startSim(t, smsc.Options{})
	cfg := retryConfig(t, simA, simB)
	cfg.SubmitTimeout = daemon.Duration(300 * time.Millisecond)
	g := startGateway(t, cfg)
	waitCarrierBound(t, g, "a")
	waitCarrierBound(t, g, "b")
	simA.SetAckDelay(800 * time.Millisecond)
	if code, body := send(t, g, "+91-9876543210"); code != 409 {
		t.Fatalf("send: got %d %s, want 409", code, body)
	}
	first := codeFor(t, simA, "919876543210", 1)
	if again := codeFor(t, simB, "919876543210", 1); again != first {
		t.Fatal("the retry carried another code than the one sent first")
	}
	if code, body := verify(t, g, "+91-9876543210", first); code != 200 {
		t.Fatalf("verify: got %d %s", code, body)
	}
	if n := len(simB.Messages()) + len(simA.Messages()); n != 2 {
		t.Fatalf("%d SMS in all, want 2 (one retry)", n)
	}
}

// TestGateway_NoRetry: no retry when retry_undelivered is off, nor when
// the code was verified before the failure's receipt came.
func TestGateway_NoRetry(t *testing.T) {
	for _, tt := range []struct {
		name        string
		off         bool
		verifyFirst bool
	}{{"Off", true, false}, {"AlreadyVerified", false, true}} {
		t.Run(tt.name, func(t *testing.T) {
			simA := startSim(t, smsc.Options{ReceiptState: "UNDELIV", ReceiptDelay: 400 * time.Millisecond})
			simB := startSim(t, smsc.Options{})
			cfg := retryConfig(t, simA, simB)
			cfg.OTP.RetryUndelivered = !tt.off
			g := startGateway(t, cfg)
			waitCarrierBound(t, g, "a")
			code, body := send(t, g, "+91-9876543210")
			if code != 200 {
				t.Fatalf("send: got %d %s", code, body)
			}
			if tt.verifyFirst {
				if code, body := verify(t, g, "+91-9876543210", codeFor(t, simA, "919876543210", 1)); code != 200 {
					t.Fatalf("verify: got %d %s", code, body)
				}
			}
			waitState(t, g, requestID(t, body), "UNDELIVERABLE")
			time.Sleep(300 * time.Millisecond) // a retry, if one were made, would be on its way
			if n := len(simB.Messages()); n != 0 {
				t.Fatalf("carrier b got %d SMS, want none", n)
			}
		})
	}
}

// TestGateway_StuckCarrier: the route's first carrier stops answering
// submit_sm (it still answers enquire_link). 50 concurrent send-otp all
// succeed through the second carrier within submit_timeout (3s here),
// each after at most stall_timeout (300ms) on the stuck one.
func TestGateway_StuckCarrier(t *testing.T) {
	simA := startSim(t, smsc.Options{})
	simB := startSim(t, smsc.Options{})
	cfg := retryConfig(t, simA, simB)
	stall := daemon.Duration(300 * time.Millisecond)
	cfg.Carriers[0].StallTimeout = &stall
	cfg.Carriers[0].SubmitAckTimeout = daemon.Duration(time.Second)
	// 50 sends at once to consecutive numbers: past the default client
	// rate, and a pumping pattern the guard would stop.
	cfg.Clients[0].Rate = daemon.RateConfig{PerSecond: 1000, Burst: 1000}
	cfg.Guard.Mode = "monitor"
	g := startGateway(t, cfg)
	waitCarrierBound(t, g, "a")
	waitCarrierBound(t, g, "b")
	simA.SetNoAck(true)
	const n = 50
	start := time.Now()
	errs := make(chan string, n)
	for i := 0; i < n; i++ {
		go func() {
			code, body := send(t, g, fmt.Sprintf("+91-98765%05d", i))
			if code != 200 {
				errs <- fmt.Sprintf("send %d: got %d %s", i, code, body)
				return
			}
			errs <- ""
		}()
	}
	for i := 0; i < n; i++ {
		if e := <-errs; e != "" {
			t.Error(e)
		}
	}
	t.Logf("%d sends through the next carrier in %s", n, time.Since(start).Round(time.Millisecond))
	if got := len(simB.Messages()); got != n {
		t.Fatalf("carrier b accepted %d, want %d", got, n)
	}
	// After submit_ack_timeout the NOC sees carrier a degraded.
	waitMetric(t, g, `otpgate_carrier_degraded{carrier="a"}`, 1)
}
