package otp_test

import (
	"testing"
	"time"

	"github.com/otpgate/otpgate/otp"
)

// TestPart_Apply: a receipt changes a part in flight, a final state is
// never replaced, and the same state again changes nothing.
func TestPart_Apply(t *testing.T) {
	at := time.Unix(1_700_000_000, 0).UTC()
	p := otp.Part{MessageID: "1A", State: otp.StateAccepted}
	if !p.Apply(otp.Receipt{State: otp.StateDelivered, Error: "000", DoneAt: at}) {
		t.Fatal("ACCEPTED → DELIVERED: no change")
	}
	if p.State != otp.StateDelivered || p.Error != "000" || !p.DoneAt.Equal(at) {
		t.Fatalf("got %+v", p)
	}
	if p.Apply(otp.Receipt{State: otp.StateUndeliverable, Error: "011"}) || p.State != otp.StateDelivered {
		t.Fatalf("a final state was replaced: %+v", p)
	}
	q := otp.Part{State: otp.StateAccepted}
	if q.Apply(otp.Receipt{State: otp.StateAccepted}) {
		t.Fatal("the same state reported as a change")
	}
}
