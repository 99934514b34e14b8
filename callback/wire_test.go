package callback_test

import (
	"testing"
	"time"

	"github.com/otpgate/otpgate/callback"
	"github.com/otpgate/otpgate/otp"
)

func TestCallback_BodyAndSignature(t *testing.T) {
	m := otp.Message{RequestID: "r1", ClientID: "c1", Display: "+91-98******10", Carrier: "a",
		Parts: []otp.Part{{MessageID: "1", State: otp.StateRejected, Error: "0x0B",
			DoneAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("IST", 5*3600+1800))}}}
	cb := otp.NewCallback(m, "id1", time.Unix(0, 0))
	want := `{"requestId":"r1","clientId":"c1","phoneNumber":"+91-98******10","carrier":"a","state":"REJECTED",` +
		`"error":"0x0B","doneAt":"2026-01-01T21:34:05Z"}`
	if got := string(callback.Body(cb)); got != want {
		t.Fatalf("Body: got %s, want %s", got, want)
	}
	// HMAC-SHA256("key", `1700000000.{"a":1}`), computed with Python's hmac
	// module and with openssl dgst -sha256 -hmac key.
	const wantSig = "t=1700000000,v1=a438e398bfafc57e4396bb7fc2304422f0f768e965d073ca313cb52e22e6ad03"
	if got := callback.Sign("key", time.Unix(1700000000, 999e6), []byte(`{"a":1}`)); got != wantSig {
		t.Fatalf("Sign: got %s, want %s", got, wantSig)
	}
	// No done time from the carrier: the time it was queued.
	m.Parts[0].DoneAt = time.Time{}
	if cb := otp.NewCallback(m, "id2", time.Unix(100, 0)); !cb.DoneAt.Equal(time.Unix(100, 0)) {
		t.Fatalf("DoneAt: got %v, want the queue time", cb.DoneAt)
	}
}
