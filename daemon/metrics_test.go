package daemon_test

import (
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/smpp/smsc"
)

// TestGateway_Metrics checks the README's series ("Operations") after real traffic,
// and that no label holds a number, key or code.
func TestGateway_Metrics(t *testing.T) {
	sim := startSim(t, smsc.Options{ReceiptTLV: true})
	g := startGateway(t, testConfig(t, cfgOpts{simAddr: sim.Addr(), resend: "1h"}))
	if code, body := send(t, g, "+91-9870000001"); code != 200 {
		t.Fatalf("send: %d %s", code, body)
	}
	otpCode := codeFor(t, sim, "919870000001", 1)
	send(t, g, "+91-9870000001") // 429: resend too soon
	verify(t, g, "+91-9870000001", flip(otpCode))
	if code, _ := verify(t, g, "+91-9870000001", otpCode); code != 200 {
		t.Fatal("verify failed")
	}
	send(t, g, "+44-7400123456") // 409 from the dead route
	reqID := requestID(t, mustSend(t, g, "+91-9870000002"))
	waitState(t, g, reqID, "DELIVERED")

	code, text := call(t, "GET", g.admin+"/metrics", "", "")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{
		`otpgate_http_requests_total{code="200",route="/api/v3/otp-verification/send-otp"} 2`,
		`otpgate_http_requests_total{code="429",route="/api/v3/otp-verification/send-otp"} 1`,
		`otpgate_http_requests_total{code="409",route="/api/v3/otp-verification/send-otp"} 1`,
		`otpgate_http_request_duration_seconds_count{route="/api/v3/otp-verification/verify-otp"} 2`,
		`otpgate_sms_submits_total{carrier="a",result="ok"} 2`,
		`otpgate_submit_duration_seconds_count{carrier="a"} 2`,
		`otpgate_bind_up{bind="transceiver-0",carrier="a"} 1`,
		`otpgate_bind_up{bind="transceiver-0",carrier="dead"} 0`,
		`otpgate_receipts_total{carrier="a",state="DELIVERED"}`,
		`otpgate_ratelimited_total{scope="resend"} 1`,
		`otpgate_verifications_total{result="invalid"} 1`,
		`otpgate_verifications_total{result="ok"} 1`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// Every commit carries at least one write (the heartbeat counts as one).
	writes := metricValue(t, text, "otpgate_store_commit_writes_sum")
	commits := metricValue(t, text, "otpgate_store_commit_writes_count")
	if commits < 1 || writes < commits {
		t.Errorf("otpgate_store_commit_writes: %v writes in %v commits; want at least one write per commit", writes, commits)
	}
	for _, secret := range []string{"9870000001", "98700", otpCode, keyA, "pw-a"} {
		for _, line := range strings.Split(text, "\n") {
			if strings.HasPrefix(line, "otpgate_") && strings.Contains(line[:strings.LastIndexByte(line+" ", ' ')], secret) {
				t.Errorf("metric line holds %q: %s", secret, line)
			}
		}
	}
}

func mustSend(t *testing.T, g *gateway, number string) string {
	t.Helper()
	code, body := send(t, g, number)
	if code != 200 {
		t.Fatalf("send %s: %d %s", number, code, body)
	}
	return body
}

// TestGateway_UnknownReceipt: a receipt for an id nobody sent is acked,
// kept pending, counted, and crashes nothing.
func TestGateway_UnknownReceipt(t *testing.T) {
	sim := startSim(t, smsc.Options{ReceiptDelay: -1})
	g := startGateway(t, testConfig(t, cfgOpts{simAddr: sim.Addr()}))
	if n := sim.SendRaw(rawReceipt("DEADBEEF", "919870000000", "OTPGATE")); n == 0 {
		t.Fatal("no bound connection to send the receipt on")
	}
	for i := 0; ; i++ {
		_, text := call(t, "GET", g.admin+"/metrics", "", "")
		if strings.Contains(text, `otpgate_receipts_total{carrier="a",state="pending"}`) {
			break
		}
		if i > 400 {
			t.Fatalf("the unknown receipt was not counted: %s", grepLines(text, "otpgate_receipts_total"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if code, body := send(t, g, "+91-9870000009"); code != 200 {
		t.Fatalf("send after an unknown receipt: %d %s", code, body)
	}
}
