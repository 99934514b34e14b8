package smpp_test

import (
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpgate/otpgate/otp"
	"github.com/otpgate/otpgate/smpp"
	"github.com/otpgate/otpgate/smpp/smsc"
)

func singleRoute(tb testing.TB, name string, c *smpp.Carrier) *smpp.Router {
	tb.Helper()
	r, err := smpp.NewRouter([]smpp.Route{{Countries: []string{"*"}, Carriers: []string{name}}},
		map[string]*smpp.Carrier{name: c}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// TestRouter_ThrottlingCarrierScale: a carrier that throttles at 50/s while
// we are configured for 1000/s; 300 concurrent sends all succeed and the
// SMSC accepts each exactly once.
func TestRouter_ThrottlingCarrierScale(t *testing.T) {
	sim := newSMSC(t, smsc.Options{ReceiptDelay: -1})
	sim.SetThrottle(50, 5)
	cfg := carrierConfig("a", sim.Addr())
	cfg.TPS, cfg.Burst, cfg.Binds, cfg.Window = 1000, 10, 2, 32
	c := runCarrier(t, cfg, nil)
	waitBound(t, c, 2)
	r := singleRoute(t, "a", c)

	const n = 300
	var wg sync.WaitGroup
	var failed atomic.Int64
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sms := testSMS(fmt.Sprintf("msg %03d code 1234", i))
			sms.RequestID = fmt.Sprint(i)
			if _, err := r.Send(ctxTimeout(t, 20*time.Second), sms); err != nil {
				failed.Add(1)
				t.Errorf("send %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatalf("%d of %d sends failed", failed.Load(), n)
	}
	seen := map[string]int{}
	for _, m := range sim.Messages() {
		seen[m.Text]++
	}
	if len(seen) != n {
		t.Fatalf("the SMSC accepted %d distinct messages, want %d", len(seen), n)
	}
	for text, k := range seen {
		if k != 1 {
			t.Fatalf("%q accepted %d times, want once", text, k)
		}
	}
	st := sim.Stats()
	t.Logf("accepted %d, throttled %d", st.Accepted, st.Throttled)
	if st.Throttled == 0 {
		t.Fatal("the simulator never throttled: the test did not test throttling")
	}
}

// TestCarrier_TPSNeverExceeded checks the submits the SMSC saw against the
// configured rate in every one-second window.
func TestCarrier_TPSNeverExceeded(t *testing.T) {
	sim := newSMSC(t, smsc.Options{ReceiptDelay: -1})
	cfg := carrierConfig("a", sim.Addr())
	cfg.TPS, cfg.Burst, cfg.Binds, cfg.Window = 20, 1, 2, 10
	c := runCarrier(t, cfg, nil)
	waitBound(t, c, 2)
	const n = 50
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Submit(ctxTimeout(t, 20*time.Second), testSMS("code 1234")); err != nil {
				t.Errorf("submit: %v", err)
			}
		}()
	}
	wg.Wait()
	msgs := sim.Messages()
	if len(msgs) != n {
		t.Fatalf("got %d messages, want %d", len(msgs), n)
	}
	at := make([]time.Time, len(msgs))
	for i, m := range msgs {
		at[i] = m.At
	}
	sort.Slice(at, func(i, j int) bool { return at[i].Before(at[j]) })
	// A bucket of 20/s and depth 1 lets at most 21 submits start within
	// any second; one more is allowed for network jitter at the edges.
	const limit = 20 + 1 + 1
	worst := 0
	for i := range at {
		j := sort.Search(len(at), func(k int) bool { return at[k].Sub(at[i]) >= time.Second })
		worst = max(worst, j-i)
	}
	if worst > limit {
		t.Fatalf("%d submits within one second, want at most %d", worst, limit)
	}
	t.Logf("busiest second: %d submits", worst)
}

// BenchmarkThrottledCarrier measures the sustained accepted rate against an
// SMSC that throttles at 200/s while we are configured higher, as a
// fraction of 200 (the target is at least 0.95).
func BenchmarkThrottledCarrier(b *testing.B) {
	const n = 200.0
	sim := newSMSC(b, smsc.Options{ReceiptDelay: -1})
	sim.SetThrottle(n, 20)
	cfg := carrierConfig("a", sim.Addr())
	cfg.TPS, cfg.Burst, cfg.Binds, cfg.Window = 2000, 20, 2, 32
	c := runCarrier(b, cfg, nil)
	waitBound(b, c, 2)
	r := singleRoute(b, "a", c)
	var sent atomic.Int64
	b.SetParallelism(32)
	b.ResetTimer()
	start := time.Now()
	before := sim.Stats().Accepted
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := r.Send(ctxTimeout(b, 30*time.Second), testSMS("code 1234")); err == nil {
				sent.Add(1)
			}
		}
	})
	el := time.Since(start)
	b.StopTimer()
	rate := float64(sim.Stats().Accepted-before) / el.Seconds()
	b.ReportMetric(rate, "accepted/s")
	b.ReportMetric(rate/n, "fraction-of-N")
	var _ otp.Sent
}
