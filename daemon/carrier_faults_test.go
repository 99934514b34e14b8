package daemon_test

import (
	"testing"
	"time"

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
	sim := startSim(t, smsc.Config{ReceiptTLV: true})
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
