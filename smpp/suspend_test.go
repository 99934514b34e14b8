package smpp_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/otpgate/otpgate/smpp"
	"github.com/otpgate/otpgate/smpp/smsc"
)

// TestCarrier_Suspend: a suspended carrier unbinds (the SMSC sees the
// unbind), stays unbound while suspended, refuses submits, and the
// route's next carrier takes its traffic; Resume binds it again.
func TestCarrier_Suspend(t *testing.T) {
	sim1 := newSMSC(t, smsc.Options{ReceiptDelay: -1})
	sim2 := newSMSC(t, smsc.Options{ReceiptDelay: -1})
	cfg := carrierConfig("one", sim1.Addr())
	cfg.Binds = 2
	one := runCarrier(t, cfg, nil)
	two := runCarrier(t, carrierConfig("two", sim2.Addr()), nil)
	waitBound(t, one, 2)
	waitBound(t, two, 1)
	r, err := smpp.NewRouter([]smpp.Route{{Countries: []string{"*"}, Carriers: []string{"one", "two"}}},
		map[string]*smpp.Carrier{"one": one, "two": two}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sent, err := r.Send(ctxTimeout(t, 5*time.Second), testSMS("code 1234")); err != nil || sent.Carrier != "one" {
		t.Fatalf("before suspend: got %+v, %v; want carrier one", sent, err)
	}

	if !one.Suspend() || one.Suspend() {
		t.Fatal("Suspend: want true the first time, false the second")
	}
	if one.Bound() != 0 || !one.Suspended() {
		t.Fatalf("suspended: Bound %d, Suspended %v; want 0, true", one.Bound(), one.Suspended())
	}
	eventually(t, "the SMSC to see both unbinds", func() bool { return sim1.Stats().Unbinds == 2 && sim1.Bound() == 0 })
	if _, err := one.Submit(ctxTimeout(t, time.Second), testSMS("code 1234")); !errors.Is(err, smpp.ErrNotBound) {
		t.Fatalf("submit while suspended: got %v, want ErrNotBound", err)
	}
	before := sim1.Stats().Submits
	if sent, err := r.Send(ctxTimeout(t, 5*time.Second), testSMS("code 1234")); err != nil || sent.Carrier != "two" {
		t.Fatalf("while suspended: got %+v, %v; want carrier two", sent, err)
	}
	// It stays unbound: no redial, whatever the reconnect delay (20ms).
	time.Sleep(200 * time.Millisecond)
	if st := sim1.Stats(); st.Binds != 2 || sim1.Bound() != 0 || st.Submits != before {
		t.Fatalf("suspended carrier: %d binds in all, %d bound, %d submits; want 2, 0, %d", st.Binds, sim1.Bound(), st.Submits, before)
	}

	if !one.Resume() || one.Resume() {
		t.Fatal("Resume: want true the first time, false the second")
	}
	waitBound(t, one, 2)
	if sent, err := r.Send(ctxTimeout(t, 5*time.Second), testSMS("code 1234")); err != nil || sent.Carrier != "one" {
		t.Fatalf("after resume: got %+v, %v; want carrier one", sent, err)
	}
}

// TestCarrier_SuspendBeforeRun: a carrier suspended before Run never
// binds until resumed, and Run still returns at its context's end.
func TestCarrier_SuspendBeforeRun(t *testing.T) {
	sim := newSMSC(t, smsc.Options{ReceiptDelay: -1})
	c := smpp.NewCarrier(carrierConfig("one", sim.Addr()), nil, nil)
	c.Suspend()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	time.Sleep(100 * time.Millisecond)
	if sim.Stats().Binds != 0 {
		t.Fatal("a carrier suspended before Run bound")
	}
	c.Resume()
	waitBound(t, c, 1)
	c.Suspend()
	eventually(t, "the unbind", func() bool { return sim.Bound() == 0 })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run of a suspended carrier did not return")
	}
}
