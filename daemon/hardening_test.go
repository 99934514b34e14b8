package daemon_test

import (
	"testing"

	"github.com/otpgate/otpgate/smpp/smsc"
)

// TestGateway_OneNumberOneLimit: three spellings of one handset (a trunk
// prefix written after the country code, once or twice) share one resend
// limit and one code.
func TestGateway_OneNumberOneLimit(t *testing.T) {
	sim := startSim(t, smsc.Config{})
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
