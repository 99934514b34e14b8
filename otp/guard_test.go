package otp_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/otpgate/otpgate/guard"
	"github.com/otpgate/otpgate/otp"
)

// TestService_Guard: the guard is asked before a send is reserved, learns
// what went out and what was verified, and its refusal is a 429 "Too many
// requests" like the other limits.
func TestService_Guard(t *testing.T) {
	cfg := guard.Defaults()
	cfg.Clients = map[string]guard.ClientRules{client: {Budget: guard.Budget{Countries: map[string]guard.Limits{"DE": {PerHour: 3}}}}}
	g, err := guard.New(cfg, guard.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h := newHarnessGuarded(t, otp.Policy{TTL: time.Minute, MaxAttempts: 5, ResendInterval: 30 * time.Second}, nil, g)
	ctx := context.Background()

	// A user of the range verified a code before the attack.
	code := h.send(t, "+91-9876500999")
	// The record names the carrier, for the per-carrier conversion.
	if rec, err := h.db.GetOTP(ctx, otp.RecordKey(client, "919876500999")); err != nil || rec.Carrier != "sim" {
		t.Fatalf("record carrier: got %q %v, want sim", rec.Carrier, err)
	}
	if err := h.verify("+91-9876500999", code); err != nil {
		t.Fatal(err)
	}

	t.Run("Consecutive", func(t *testing.T) {
		before := len(h.sim.Messages())
		var refused error
		for i := 0; i < 100 && refused == nil; i++ {
			_, refused = h.svc.Send(ctx, sendReq(fmt.Sprintf("+91-98765%05d", i)))
		}
		if !errors.Is(refused, otp.ErrGuarded) || !errors.Is(refused, otp.ErrTooManyRequests) || !errors.Is(refused, guard.ErrRefused) {
			t.Fatalf("got %v, want ErrGuarded", refused)
		}
		if n := len(h.sim.Messages()) - before; n != 20 {
			t.Fatalf("%d SMS reached the SMSC, want 20", n)
		}
	})
	t.Run("VerifiedNumberPasses", func(t *testing.T) {
		h.clock.Add(31 * time.Second)
		if _, err := h.svc.Send(ctx, sendReq("+91-9876500999")); err != nil {
			t.Fatalf("the verified user: %v", err)
		}
	})
	t.Run("UnsentGivesBack", func(t *testing.T) {
		// Resends refused by resend_interval do not spend the budget.
		if _, err := h.svc.Send(ctx, sendReq("+49-15112345670")); err != nil {
			t.Fatal(err)
		}
		for range 5 {
			if _, err := h.svc.Send(ctx, sendReq("+49-15112345670")); !errors.Is(err, otp.ErrResendTooSoon) {
				t.Fatalf("got %v, want ErrResendTooSoon", err)
			}
		}
		for _, n := range []string{"+49-15187654321", "+49-16012345678"} {
			if _, err := h.svc.Send(ctx, sendReq(n)); err != nil {
				t.Fatalf("%s: %v", n, err)
			}
		}
		_, err := h.svc.Send(ctx, sendReq("+49-17012345678"))
		var r *guard.Refusal
		if !errors.As(err, &r) || r.Rule != guard.RuleBudget {
			t.Fatalf("4th DE send: got %v, want the budget", err)
		}
	})
}

// TestService_DefaultClientRate: a client without a rate gets the policy's
// default instead of none.
func TestService_DefaultClientRate(t *testing.T) {
	h := newHarness(t, otp.Policy{TTL: time.Minute, MaxAttempts: 5, DefaultRatePerSecond: 0.001, DefaultRateBurst: 2})
	for i := range 2 {
		h.send(t, fmt.Sprintf("+91-98000000%02d", i))
	}
	if _, err := h.svc.Send(context.Background(), sendReq("+91-9800000099")); !errors.Is(err, otp.ErrClientRate) {
		t.Fatalf("3rd send: got %v, want ErrClientRate", err)
	}
}
