package smpp_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otpgate/otpgate/smpp"
	"github.com/otpgate/otpgate/smpp/smsc"
)

// burst submits n SMS of client (weight w) at once, to numbers starting
// with prefix, and returns a channel closed when all were answered.
func burst(t *testing.T, c *smpp.Carrier, client string, w float64, prefix string, n int) <-chan struct{} {
	done := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			sms := testSMS("code")
			sms.ClientID, sms.Weight, sms.To = client, w, fmt.Sprintf("%s%04d", prefix, i)
			if _, err := c.Submit(ctxTimeout(t, 20*time.Second), sms); err != nil {
				t.Errorf("%s submit %d: %v", client, i, err)
			}
		})
	}
	go func() { wg.Wait(); close(done) }()
	return done
}

// TestCarrier_FairShare: clients share a carrier's TPS by weight; one
// client's burst does not make another wait behind it.
func TestCarrier_FairShare(t *testing.T) {
	t.Run("BurstCannotStarve", func(t *testing.T) {
		sim := newSMSC(t, smsc.Options{ReceiptDelay: -1})
		cfg := carrierConfig("a", sim.Addr())
		cfg.TPS, cfg.Burst = 100, 1
		c := runCarrier(t, cfg, nil)
		waitBound(t, c, 1)
		doneA := burst(t, c, "a", 1, "4477001", 150)
		eventually(t, "A's burst under way", func() bool { return sim.Stats().Accepted >= 10 })
		<-burst(t, c, "b", 1, "4477002", 10)
		<-doneA
		msgs := sim.Messages()
		first, last := -1, -1
		for i, m := range msgs {
			if strings.HasPrefix(m.Dst, "4477002") {
				if first < 0 {
					first = i
				}
				last = i
			}
		}
		// Taking turns with A, B's 10 go out within about 20 submits; in
		// arrival order they would wait for A's 140 left.
		if last-first > 25 || len(msgs)-last < 50 {
			t.Fatalf("B's submits at %d..%d of %d, want within 25 of each other, well before A's end", first, last, len(msgs))
		}
	})
	t.Run("Weights", func(t *testing.T) {
		sim := newSMSC(t, smsc.Options{ReceiptDelay: -1})
		cfg := carrierConfig("a", sim.Addr())
		cfg.TPS, cfg.Burst = 200, 1
		c := runCarrier(t, cfg, nil)
		waitBound(t, c, 1)
		doneA := burst(t, c, "a", 3, "4477001", 200)
		doneB := burst(t, c, "b", 1, "4477002", 200)
		<-doneA
		<-doneB
		msgs := sim.Messages()
		a := 0
		for _, m := range msgs[100:180] {
			if strings.HasPrefix(m.Dst, "4477001") {
				a++
			}
		}
		// Weights 3:1 with both queues full: 60 of 80 for A.
		if a < 52 || a > 68 {
			t.Fatalf("A got %d of 80 submits while both waited, want about 60 (weight 3 against 1)", a)
		}
	})
	t.Run("Unlimited", func(t *testing.T) {
		sim := newSMSC(t, smsc.Options{ReceiptDelay: -1})
		c := runCarrier(t, carrierConfig("a", sim.Addr()), nil)
		waitBound(t, c, 1)
		<-burst(t, c, "a", 1, "4477001", 50)
		if n := sim.Stats().Accepted; n != 50 {
			t.Fatalf("accepted %d, want 50", n)
		}
	})
}
