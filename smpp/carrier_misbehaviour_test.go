package smpp_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otpgate/otpgate/otp"
	"github.com/otpgate/otpgate/smpp"
	"github.com/otpgate/otpgate/smpp/smsc"
)

// stuckPair returns a router over [stuck, healthy]: two simulators, the
// first of which swallows every submit_sm (it still answers enquire_link).
func stuckPair(t *testing.T, stuckCfg smpp.CarrierOptions) (r *smpp.Router, stuck *smpp.Carrier, simStuck, simOK *smsc.Server) {
	t.Helper()
	simStuck = newSMSC(t, smsc.Options{ReceiptDelay: -1})
	simOK = newSMSC(t, smsc.Options{ReceiptDelay: -1})
	stuckCfg.Name, stuckCfg.Address = "stuck", simStuck.Addr()
	stuckCfg.SystemID, stuckCfg.Password = testSystemID, testPassword
	stuckCfg.ReconnectDelay = 20 * time.Millisecond // the stuck session dies young: redial fast
	stuck = runCarrier(t, stuckCfg, nil)
	ok := runCarrier(t, carrierConfig("healthy", simOK.Addr()), nil)
	waitBound(t, stuck, stuckCfg.Binds)
	waitBound(t, ok, 1)
	r, err := smpp.NewRouter([]smpp.Route{{Countries: []string{"*"}, Carriers: []string{"stuck", "healthy"}}},
		map[string]*smpp.Carrier{"stuck": stuck, "healthy": ok}, nil)
	if err != nil {
		t.Fatal(err)
	}
	simStuck.SetNoAck(true)
	return r, stuck, simStuck, simOK
}

// TestRouter_StuckCarrierFailsOver: a carrier whose SMSC stops answering
// submit_sm (default stall_timeout, window 10) does not block its route:
// 50 concurrent sends all succeed through the next carrier within the
// submit timeout. The sends that were written to the stuck carrier pass
// over after stall_timeout; the rest find its window full of stalled
// submits and pass over without writing.
func TestRouter_StuckCarrierFailsOver(t *testing.T) {
	r, _, simStuck, simOK := stuckPair(t, smpp.CarrierOptions{Binds: 1, Window: 10})
	const n, submitTimeout = 50, 10 * time.Second
	start := time.Now()
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		slowest time.Duration
	)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sent, err := r.Send(ctxTimeout(t, submitTimeout), testSMS(fmt.Sprintf("msg %d code 1234", i)))
			if err != nil {
				t.Errorf("send %d: %v", i, err)
				return
			}
			if sent.Carrier != "healthy" {
				t.Errorf("send %d went through %q, want healthy", i, sent.Carrier)
			}
			mu.Lock()
			slowest = max(slowest, time.Since(start))
			mu.Unlock()
		}()
	}
	wg.Wait()
	if got := simOK.Stats().Accepted; got != n {
		t.Fatalf("healthy carrier accepted %d, want %d", got, n)
	}
	if got := simStuck.Stats().Swallowed; got > 10 {
		t.Fatalf("stuck carrier got %d submits written, want at most its window (10)", got)
	}
	t.Logf("failover from a stuck carrier: %d sends done in %s (stall_timeout default 3s)", n, slowest.Round(time.Millisecond))
}

// TestRouter_StuckCarrierDegraded: after submit_ack_timeout with a submit
// unanswered, the stuck carrier's session is unbound and redialled and the
// carrier is degraded: sends skip it (no stall to wait for) but for one
// probe per submit_ack_timeout, and the first acknowledged probe clears it.
func TestRouter_StuckCarrierDegraded(t *testing.T) {
	r, stuck, simStuck, simOK := stuckPair(t, smpp.CarrierOptions{Binds: 1,
		StallTimeout: 100 * time.Millisecond, SubmitAckTimeout: 600 * time.Millisecond})
	if _, err := r.Send(ctxTimeout(t, 5*time.Second), testSMS("first code 1234")); err != nil {
		t.Fatalf("first send: %v", err)
	}
	eventually(t, "carrier degraded", stuck.Degraded)
	eventually(t, "stuck session unbound and redialled", func() bool {
		st := simStuck.Stats()
		return st.Unbinds >= 1 && st.Binds >= 2 && stuck.Bound() == 1
	})
	// Degraded and just probed (the ack timeout counts as a probe): sends
	// go straight to the healthy carrier.
	before := simStuck.Stats().Submits
	for i := 0; i < 5; i++ {
		t0 := time.Now()
		sent, err := r.Send(ctxTimeout(t, 5*time.Second), testSMS("skip code 1234"))
		if err != nil || sent.Carrier != "healthy" {
			t.Fatalf("send while degraded: got %+v, %v; want healthy", sent, err)
		}
		if d := time.Since(t0); d >= 100*time.Millisecond {
			t.Logf("send while degraded took %s", d) // information only: a probe may have run
		}
	}
	if got := simStuck.Stats().Submits - before; got > 1 {
		t.Fatalf("degraded carrier got %d submits, want at most one probe", got)
	}
	// It recovers: the next probe is acknowledged and clears the state.
	simStuck.SetNoAck(false)
	eventually(t, "probe clears degraded", func() bool {
		r.Send(ctxTimeout(t, 5*time.Second), testSMS("probe code 1234"))
		time.Sleep(50 * time.Millisecond)
		return !stuck.Degraded()
	})
	sent, err := r.Send(ctxTimeout(t, 5*time.Second), testSMS("back code 1234"))
	if err != nil || sent.Carrier != "stuck" {
		t.Fatalf("send after recovery: got %+v, %v; want the first carrier again", sent, err)
	}
	_ = simOK
}

// TestRouter_SingleStuckCarrierWaits: with no other carrier to take it, a
// send to a stuck carrier waits for its deadline and reports the outcome
// as unknown (the SMSC may deliver it).
func TestRouter_SingleStuckCarrierWaits(t *testing.T) {
	sim := newSMSC(t, smsc.Options{ReceiptDelay: -1})
	cfg := carrierConfig("a", sim.Addr())
	cfg.StallTimeout = 50 * time.Millisecond
	c := runCarrier(t, cfg, nil)
	waitBound(t, c, 1)
	r := singleRoute(t, "a", c)
	sim.SetNoAck(true)
	ctx := ctxTimeout(t, 400*time.Millisecond)
	_, err := r.Send(ctx, testSMS("code 1234"))
	if !errors.Is(err, otp.ErrOutcomeUnknown) || ctx.Err() == nil {
		t.Fatalf("got %v (ctx %v), want ErrOutcomeUnknown at the deadline", err, ctx.Err())
	}
}

// TestRouter_AddressingRefusals: a carrier that refuses our TON/NPI
// settings passes the message on; "invalid number" only when every carrier
// of the route refused the number itself.
func TestRouter_AddressingRefusals(t *testing.T) {
	e := newRouterEnv(t)
	r := e.router(t, smpp.Route{Countries: []string{"*"}, Carriers: []string{"up1", "up2"}})
	tests := []struct {
		name       string
		st1, st2   uint32
		wantErr    error
		wantSentBy string
	}{
		{"DestTONRefusedFailsOver", smpp.StatusInvDstTON, 0, nil, "up2"},
		{"DestNPIRefusedFailsOver", smpp.StatusInvDstNPI, 0, nil, "up2"},
		{"SourceTONRefusedFailsOver", smpp.StatusInvSrcTON, 0, nil, "up2"},
		{"SourceNPIRefusedFailsOver", smpp.StatusInvSrcNPI, 0, nil, "up2"},
		{"NumberRefusedByOneFailsOver", smpp.StatusInvDstAdr, 0, nil, "up2"},
		{"NumberRefusedByAll", smpp.StatusInvDstAdr, smpp.StatusInvDstAdr, otp.ErrInvalidNumber, ""},
		{"SettingsRefusedByAll", smpp.StatusInvDstTON, smpp.StatusInvDstAdr, otp.ErrUpstreamDown, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.sim1.SetSubmitStatus(tt.st1)
			e.sim2.SetSubmitStatus(tt.st2)
			t.Cleanup(func() { e.sim1.SetSubmitStatus(0); e.sim2.SetSubmitStatus(0) })
			sent, err := r.Send(ctxTimeout(t, 5*time.Second), testSMS("code 1234"))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("got %v, want %v", err, tt.wantErr)
				}
				if tt.wantErr != otp.ErrInvalidNumber && errors.Is(err, otp.ErrInvalidNumber) {
					t.Fatalf("got %v: a refusal of our settings is not an invalid number", err)
				}
				return
			}
			if err != nil || sent.Carrier != tt.wantSentBy {
				t.Fatalf("got %+v, %v; want sent by %s", sent, err, tt.wantSentBy)
			}
		})
	}
}

// TestCarrier_LaterPartRetried: an SMSC that takes part 1 of a long message
// and throttles (or fails for now) part 2 gets part 2 again, with the same
// concatenation reference, until it takes it.
func TestCarrier_LaterPartRetried(t *testing.T) {
	for _, st := range []uint32{smpp.StatusThrottled, smpp.StatusSysErr, smpp.StatusRxTApp} {
		t.Run(fmt.Sprintf("%#x", st), func(t *testing.T) {
			sim := newSMSC(t, smsc.Options{ReceiptDelay: -1})
			c := runCarrier(t, carrierConfig("a", sim.Addr()), nil)
			waitBound(t, c, 1)
			sim.FailPart(2, st, 3)
			text := strings.Repeat("long text ", 20) + "code 1234" // two parts
			ids, err := c.Submit(ctxTimeout(t, 10*time.Second), testSMS(text))
			if err != nil {
				t.Fatalf("Submit: %v", err)
			}
			msgs := sim.Messages()
			if len(ids) != 2 || len(msgs) != 2 {
				t.Fatalf("got %d ids, %d accepted parts; want 2 and 2", len(ids), len(msgs))
			}
			if msgs[0].Ref != msgs[1].Ref || msgs[0].Part != 1 || msgs[1].Part != 2 {
				t.Fatalf("parts %+v / %+v: want one reference, parts 1 and 2", msgs[0], msgs[1])
			}
			if got := sim.Stats().Submits; got != 5 {
				t.Fatalf("SMSC saw %d submits, want 5 (part 2 three times refused)", got)
			}
		})
	}
}

// TestCarrier_LaterPartGivesUpAtDeadline: a later part refused until the
// deadline fails the send as partial (never moved to another carrier).
func TestCarrier_LaterPartGivesUpAtDeadline(t *testing.T) {
	sim := newSMSC(t, smsc.Options{ReceiptDelay: -1})
	c := runCarrier(t, carrierConfig("a", sim.Addr()), nil)
	waitBound(t, c, 1)
	sim.FailPart(2, smpp.StatusThrottled, 1<<30)
	_, err := c.Submit(ctxTimeout(t, 500*time.Millisecond), testSMS(strings.Repeat("long text ", 20)))
	if !errors.Is(err, smpp.ErrPartial) {
		t.Fatalf("got %v, want ErrPartial", err)
	}
}

// TestCarrier_LateAck: a submit_sm_resp that comes after the send's
// deadline still reaches OnLateAck with the request, part and message id.
func TestCarrier_LateAck(t *testing.T) {
	sim := newSMSC(t, smsc.Options{ReceiptDelay: -1})
	late := make(chan smpp.LateAck, 3)
	cfg := carrierConfig("a", sim.Addr())
	cfg.OnLateAck = func(a smpp.LateAck) { late <- a }
	c := runCarrier(t, cfg, nil)
	waitBound(t, c, 1)
	sim.SetAckDelay(300 * time.Millisecond)
	_, err := c.Submit(ctxTimeout(t, 100*time.Millisecond), testSMS("code 1234"))
	if !errors.Is(err, smpp.ErrUnanswered) {
		t.Fatalf("got %v, want ErrUnanswered", err)
	}
	select {
	case a := <-late:
		msgs := sim.Messages()
		if len(msgs) != 1 || a.MessageID != msgs[0].ID || a.RequestID != "req-1" || a.Carrier != "a" || a.Part != 0 || a.Parts != 1 {
			t.Fatalf("late ack %+v, accepted %+v", a, msgs)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no late ack")
	}
	// A late id no receipt could match (over 64 characters) is not
	// reported: the next late ack is the one after it.
	sim.SetAckID(strings.Repeat("A", 65000), true)
	if _, err := c.Submit(ctxTimeout(t, 100*time.Millisecond), testSMS("code 2345")); !errors.Is(err, smpp.ErrUnanswered) {
		t.Fatalf("got %v, want ErrUnanswered", err)
	}
	eventually(t, "the second late ack sent", func() bool { return sim.Stats().Accepted == 2 }) // its id is taken when it goes
	sim.SetAckID("", false)
	if _, err := c.Submit(ctxTimeout(t, 100*time.Millisecond), testSMS("code 3456")); !errors.Is(err, smpp.ErrUnanswered) {
		t.Fatalf("got %v, want ErrUnanswered", err)
	}
	select {
	case a := <-late:
		if msgs := sim.Messages(); len(msgs) != 3 || a.MessageID != msgs[2].ID {
			t.Fatalf("late ack %q, want the third message's id", a.MessageID[:min(len(a.MessageID), 20)])
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no late ack for the third submit")
	}
}
