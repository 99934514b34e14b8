package otp_test

import (
	"testing"
	"time"

	"github.com/otpgate/otpgate/otp"
)

func TestCallbackDelay(t *testing.T) {
	const base, maxI = otp.CallbackRetryBase, otp.CallbackMaxInterval
	tests := []struct {
		attempts int
		jitter   float64
		want     time.Duration
	}{
		{1, 0, 2500 * time.Millisecond},
		{1, 0.999999, 5 * time.Second},
		{2, 0, 5 * time.Second},
		{2, 0.5, 7500 * time.Millisecond},
		{3, 0, 10 * time.Second},
		{7, 0, 160 * time.Second},
		{8, 0, 5 * time.Minute},  // 640 s capped to 10 min, halved
		{8, 1, 10 * time.Minute}, // never more than the cap
		{1000, 0.999999, 10 * time.Minute},
		{1, -3, 2500 * time.Millisecond}, // jitter is clamped
		{1, 7, 5 * time.Second},
		{0, 0, 2500 * time.Millisecond},
	}
	for _, tt := range tests {
		got := otp.CallbackDelay(tt.attempts, base, maxI, tt.jitter)
		if got.Round(time.Millisecond) != tt.want {
			t.Errorf("CallbackDelay(%d, jitter %v): got %v, want %v", tt.attempts, tt.jitter, got, tt.want)
		}
	}
	// Within 24 hours there is room for many tries: the waits add up to
	// 24 h only after more than 140 of them.
	var total time.Duration
	n := 0
	for total < otp.CallbackMaxAge {
		n++
		total += otp.CallbackDelay(n, base, maxI, 1)
	}
	if n < 140 {
		t.Errorf("got %d tries in 24 h, want at least 140", n)
	}
}

func TestSettings_Callback(t *testing.T) {
	s, err := otp.NewSettings(otp.Policy{TTL: time.Minute, MaxAttempts: 3, SubmitTimeout: time.Second},
		[]otp.Client{{ID: "a", CallbackURL: "https://a.example/cb", CallbackSecret: "sa"}, {ID: "b"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if u, sec, ok := s.Callback("a"); !ok || u != "https://a.example/cb" || sec != "sa" {
		t.Fatalf("a: got %q %q %v", u, sec, ok)
	}
	for _, id := range []string{"b", "unknown"} {
		if _, _, ok := s.Callback(id); ok {
			t.Fatalf("%s: got ok, want none", id)
		}
	}
}
