package smpp_test

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpgate/otpgate/otp"
	"github.com/otpgate/otpgate/smpp/smsc"
)

// TestRouter_DropUnderLoad drops every connection while 32 senders keep
// sending: no send reports success for an SMS the SMSC did not accept, no
// SMS is accepted more than twice, and duplicates are bounded by what was
// in flight (binds x window).
func TestRouter_DropUnderLoad(t *testing.T) {
	sim := newSMSC(t, smsc.Options{ReceiptDelay: -1})
	sim.SetAckDelay(2 * time.Millisecond) // keep submits in flight
	cfg := carrierConfig("a", sim.Addr())
	cfg.Binds, cfg.Window = 2, 8
	c := runCarrier(t, cfg, nil)
	waitBound(t, c, 2)
	r := singleRoute(t, "a", c)

	const n, workers = 600, 32
	var (
		mu     sync.Mutex
		ok     = map[string]bool{}
		failed int
	)
	// phase sends messages from..to-1 with 32 workers and waits for all.
	phase := func(from, to int) {
		next := make(chan int)
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range next {
					text := fmt.Sprintf("msg %04d code 1234", i)
					_, err := r.Send(ctxTimeout(t, 5*time.Second), testSMS(text))
					mu.Lock()
					if err == nil {
						ok[text] = true
					} else {
						if !errors.Is(err, otp.ErrUpstreamDown) {
							t.Errorf("send %d: got %v, want nil or ErrUpstreamDown", i, err)
						}
						failed++
					}
					mu.Unlock()
				}
			}()
		}
		for i := from; i < to; i++ {
			next <- i
		}
		close(next)
		wg.Wait()
	}
	// The drop comes once a third of the messages are in, during the first
	// half; should that half end short of a third, the wait ends with it
	// (it has no deadline of its own to miss on a slow machine).
	var firstHalfDone atomic.Bool
	dropped := make(chan bool, 1)
	go func() {
		for sim.Stats().Accepted < n/3 {
			if firstHalfDone.Load() && sim.Stats().Accepted < n/3 {
				dropped <- false
				return
			}
			time.Sleep(time.Millisecond)
		}
		sim.DropConnections()
		dropped <- true
	}()
	phase(0, n/2) // the drop happens in this half
	firstHalfDone.Store(true)
	if !<-dropped {
		t.Fatalf("the SMSC accepted %d of the first %d sends, never %d: nothing was dropped under load",
			sim.Stats().Accepted, n/2, n/3)
	}
	// While it rebinds, sends get ErrUpstreamDown at once (no session is
	// bound); once it is back, every send must succeed.
	waitBound(t, c, 2)
	failedBefore := failed
	phase(n/2, n)

	seen := map[string]int{}
	for _, m := range sim.Messages() {
		seen[m.Text]++
	}
	dups := 0
	for text := range ok {
		if seen[text] == 0 {
			t.Errorf("%q got a success but the SMSC never accepted it", text)
		}
	}
	for text, k := range seen {
		if k > 2 {
			t.Errorf("%q accepted %d times, want at most twice", text, k)
		}
		if k == 2 {
			dups++
		}
	}
	if max := cfg.Binds * cfg.Window; dups > max {
		t.Fatalf("%d duplicates, want at most %d (submits in flight at the drop)", dups, max)
	}
	t.Logf("ok %d, failed %d (while rebinding), duplicates %d", len(ok), failed, dups)
	if failed > failedBefore {
		t.Fatalf("%d sends failed after the carrier rebound, want none", failed-failedBefore)
	}
}

// TestRouter_SlowAcksFillWindow: acks slower than the senders fill every
// window; sends wait for a slot instead of failing.
func TestRouter_SlowAcksFillWindow(t *testing.T) {
	sim := newSMSC(t, smsc.Options{ReceiptDelay: -1})
	sim.SetAckDelay(100 * time.Millisecond)
	cfg := carrierConfig("a", sim.Addr())
	cfg.Binds, cfg.Window = 1, 2
	c := runCarrier(t, cfg, nil)
	waitBound(t, c, 1)
	r := singleRoute(t, "a", c)
	const n = 30 // 15 windows of 100 ms: well within the deadline
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			_, err := r.Send(ctxTimeout(t, 10*time.Second), testSMS(fmt.Sprintf("msg %d code 1234", i)))
			errs <- err
		}()
	}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Fatalf("send: %v", err)
		}
	}
	if got := sim.Stats().Accepted; got != n {
		t.Fatalf("accepted %d, want %d", got, n)
	}
}
