package smpp_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpgate/otpgate/internal/syncbuf"

	"github.com/otpgate/otpgate/otp"
	"github.com/otpgate/otpgate/smpp"
	"github.com/otpgate/otpgate/smpp/smsc"
)

func TestCarrier_Bind(t *testing.T) {
	t.Run("Transceiver", func(t *testing.T) {
		sim := newSMSC(t, smsc.Options{})
		cfg := carrierConfig("a", sim.Addr())
		cfg.Binds = 2
		c := runCarrier(t, cfg, nil)
		waitBound(t, c, 2)
		eventually(t, "simulator sees 2 binds", func() bool { return sim.Bound() == 2 })
	})
	t.Run("TransmitterReceiver", func(t *testing.T) {
		sim := newSMSC(t, smsc.Options{ReceiptDelay: time.Millisecond})
		cfg := carrierConfig("a", sim.Addr())
		cfg.Mode = smpp.ModeTransmitterReceiver
		cfg.Binds = 2
		h := newHandler()
		c := runCarrier(t, cfg, h)
		waitBound(t, c, 2) // transmitters only
		eventually(t, "simulator sees 4 binds", func() bool { return sim.Bound() == 4 })
		ids, err := c.Submit(ctxTimeout(t, 5*time.Second), testSMS("code 1234"))
		if err != nil {
			t.Fatalf("Submit: %v", err)
		}
		// The receipt comes back on a receiver session.
		if got := h.wait(t, 1); got[0].MessageID != ids[0] {
			t.Fatalf("receipt id: got %q, want %q", got[0].MessageID, ids[0])
		}
	})
}

func TestCarrier_BindRejected(t *testing.T) {
	// A wrong password: TestCarrier_CredentialsRefused.
	t.Run("RecoversAfterRejection", func(t *testing.T) {
		sim := newSMSC(t, smsc.Options{})
		sim.SetBindStatus(smpp.StatusBindFail)
		c := runCarrier(t, carrierConfig("a", sim.Addr()), nil)
		eventually(t, "2 rejected binds", func() bool { return sim.Stats().BindsRejected >= 2 })
		sim.SetBindStatus(0)
		waitBound(t, c, 1)
	})
}

func TestCarrier_Submit(t *testing.T) {
	sim := newSMSC(t, smsc.Options{ReceiptDelay: -1})
	c := runCarrier(t, carrierConfig("a", sim.Addr()), nil)
	waitBound(t, c, 1)
	tests := []struct {
		name, source, text string
		srcTON, srcNPI     uint8
		wantSrc            string
		dc                 uint8
	}{
		{"Alphanumeric", "OTPGATE", "Your OTP for verification is 123456", 5, 0, "OTPGATE", 0},
		{"ShortCode", "12345678", "Your code: 9999 {ok} €", 3, 0, "12345678", 0},
		{"LongNumber", "447700900999", "Your code 1", 1, 1, "447700900999", 0},
		{"PlusNumber", "+1234", "Your code 2", 1, 1, "1234", 0},
		{"UCS2", "OTPGATE", "Ваш код: 4321 ✓", 5, 0, "OTPGATE", 8},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sms := testSMS(tt.text)
			sms.Source = tt.source
			ids, err := c.Submit(ctxTimeout(t, 5*time.Second), sms)
			if err != nil {
				t.Fatalf("Submit: %v", err)
			}
			msgs, err := sim.WaitMessages(ctxTimeout(t, 5*time.Second), i+1)
			if err != nil {
				t.Fatal(err)
			}
			m := msgs[i]
			if len(ids) != 1 || ids[0] != m.ID || m.ID == "" {
				t.Fatalf("ids: got %q, want [%q]", ids, m.ID)
			}
			if m.Src != tt.wantSrc || m.SrcTON != tt.srcTON || m.SrcNPI != tt.srcNPI {
				t.Fatalf("source: got %q %d/%d, want %q %d/%d", m.Src, m.SrcTON, m.SrcNPI, tt.wantSrc, tt.srcTON, tt.srcNPI)
			}
			if m.Dst != "447700900123" || m.DstTON != 1 || m.DstNPI != 1 {
				t.Fatalf("destination: got %q %d/%d, want 447700900123 1/1", m.Dst, m.DstTON, m.DstNPI)
			}
			if m.DataCoding != tt.dc || m.Text != tt.text || m.RegisteredDelivery != 1 || m.ESMClass != 0 {
				t.Fatalf("got dc %d text %q rd %d esm %#x, want dc %d text %q rd 1 esm 0",
					m.DataCoding, m.Text, m.RegisteredDelivery, m.ESMClass, tt.dc, tt.text)
			}
		})
	}
}

func TestCarrier_SubmitLong(t *testing.T) {
	for _, text := range []string{
		strings.Repeat("0123456789", 20),           // GSM7, 200 septets
		strings.Repeat("Ваш код 1234. ", 6) + "OK", // UCS2, 86 units
	} {
		sim := newSMSC(t, smsc.Options{ReceiptDelay: -1})
		c := runCarrier(t, carrierConfig("a", sim.Addr()), nil)
		waitBound(t, c, 1)
		ids, err := c.Submit(ctxTimeout(t, 5*time.Second), testSMS(text))
		if err != nil {
			t.Fatalf("Submit: %v", err)
		}
		msgs, err := sim.WaitMessages(ctxTimeout(t, 5*time.Second), 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(ids) != 2 || ids[0] != msgs[0].ID || ids[1] != msgs[1].ID {
			t.Fatalf("ids: got %q, want %q and %q", ids, msgs[0].ID, msgs[1].ID)
		}
		for i, m := range msgs {
			if m.Parts != 2 || m.Part != i+1 || m.Ref != msgs[0].Ref || m.ESMClass&0x40 == 0 {
				t.Fatalf("part %d: got %d/%d ref %d esm %#x, want %d/2 ref %d esm 0x40", i, m.Part, m.Parts, m.Ref, m.ESMClass, i+1, msgs[0].Ref)
			}
		}
		if got := msgs[0].Text + msgs[1].Text; got != text {
			t.Fatalf("text: got %q, want %q", got, text)
		}
	}
}

// TestCarrier_Receipts: receipts in the forms carriers write come to the
// handler, matched to their submit's id in some form; those that spell the
// submit's id in its own base (its canonical form: case and leading zeros
// aside) are marked Exact, those in the other base are not.
func TestCarrier_Receipts(t *testing.T) {
	tests := []struct {
		name  string
		cfg   smsc.Options
		exact bool
	}{
		{"Text", smsc.Options{}, true},
		{"TLV", smsc.Options{ReceiptTLV: true, ReceiptState: "UNDELIV"}, true},
		{"DecimalIDs", smsc.Options{IDFormat: "decimal"}, true},
		{"HexSubmitDecimalReceipt", smsc.Options{ReceiptID: "decimal", FirstID: 0x16}, false},
		{"HexSubmitShortHexReceipt", smsc.Options{ReceiptID: "hex", ReceiptTLV: true, FirstID: 0x16}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim, ids, r, want := submitForReceipt(t, tt.cfg, "carrier-x")
			if r.Carrier != "carrier-x" || r.State != want || r.DoneAt.IsZero() {
				t.Fatalf("receipt: got %+v, want carrier-x %s", r, want)
			}
			if r.Exact != tt.exact {
				t.Fatalf("receipt %q of submit %q: Exact %v, want %v", r.MessageID, ids[0], r.Exact, tt.exact)
			}
			if !sameID(ids[0], r.MessageID) {
				t.Fatalf("receipt id %q does not match submit id %q in any form", r.MessageID, ids[0])
			}
			eventually(t, "receipt acked", func() bool { return sim.Stats().ReceiptsAcked == 1 })
		})
	}
}

// TestCarrier_ReceiptsOtherBaseNotExact: a carrier answering submits in
// hex and writing receipts in decimal. The receipt of 0x10 reads "16",
// which is also the hex id of a message sent just after: it must not be
// marked Exact (it would then wait for 0x16 and be applied to it), nor
// must any of the others.
func TestCarrier_ReceiptsOtherBaseNotExact(t *testing.T) {
	sim := newSMSC(t, smsc.Options{ReceiptID: "decimal", FirstID: 0x10, ReceiptDelay: 300 * time.Millisecond})
	h := newHandler()
	c := runCarrier(t, carrierConfig("a", sim.Addr()), h)
	waitBound(t, c, 1)
	for range 7 { // 0x10 to 0x16, all answered before the first receipt
		if _, err := c.Submit(ctxTimeout(t, 5*time.Second), testSMS("code 1234")); err != nil {
			t.Fatalf("Submit: %v", err)
		}
	}
	for _, r := range h.wait(t, 7) {
		if r.Exact {
			t.Errorf("receipt %q: marked Exact, want not (a decimal receipt of a hex id)", r.MessageID)
		}
	}
}

// sameID reports whether two carrier ids name the same message (otp.IDForms).
func sameID(a, b string) bool {
	ca, alts := otp.IDForms(a)
	cb, _ := otp.IDForms(b)
	return ca == cb || slices.Contains(alts, cb)
}

func TestCarrier_ReceiptBeforeSubmitResp(t *testing.T) {
	sim := newSMSC(t, smsc.Options{ReceiptDelay: time.Millisecond})
	sim.SetAckDelay(200 * time.Millisecond)
	h := newHandler()
	c := runCarrier(t, carrierConfig("a", sim.Addr()), h)
	waitBound(t, c, 1)
	ids, err := c.Submit(ctxTimeout(t, 5*time.Second), testSMS("code 1234"))
	if err != nil {
		t.Fatalf("Submit: %v", err)
	}
	if r := h.wait(t, 1)[0]; r.MessageID != ids[0] {
		t.Fatalf("receipt id: got %q, want %q", r.MessageID, ids[0])
	}
}

func TestCarrier_ReceiptHandlerErrorResent(t *testing.T) {
	sim := newSMSC(t, smsc.Options{ReceiptDelay: time.Millisecond, ReceiptRetry: 20 * time.Millisecond})
	h := newHandler()
	h.fail = 1
	c := runCarrier(t, carrierConfig("a", sim.Addr()), h)
	waitBound(t, c, 1)
	if _, err := c.Submit(ctxTimeout(t, 5*time.Second), testSMS("code 1234")); err != nil {
		t.Fatalf("Submit: %v", err)
	}
	h.wait(t, 1)
	st := sim.Stats()
	if st.ReceiptsNacked != 1 || st.ReceiptsSent < 2 {
		t.Fatalf("stats: got %d nacked, %d sent; want 1 nacked, >=2 sent", st.ReceiptsNacked, st.ReceiptsSent)
	}
	eventually(t, "receipt acked", func() bool { return sim.Stats().ReceiptsAcked == 1 })
	// The failure was answered as temporary (ESME_RX_T_APPN), not RSYSERR.
	if rs := sim.Responses(); len(rs) != 2 || rs[0].Status != smpp.StatusRxTApp || rs[1].Status != 0 {
		t.Fatalf("responses: got %+v, want 0x64 then 0", rs)
	}
}

func TestCarrier_UnknownPDUsKeepBind(t *testing.T) {
	sim := newSMSC(t, smsc.Options{ReceiptDelay: -1})
	c := runCarrier(t, carrierConfig("a", sim.Addr()), nil)
	waitBound(t, c, 1)
	if n := sim.SendRaw(rawPDU(0x00000777, 0, 900, []byte{1, 2, 3})); n != 1 {
		t.Fatalf("SendRaw: wrote to %d sessions, want 1", n)
	}
	dataSM := append([]byte{0, 1, 1}, "4477\x00"...)
	dataSM = append(dataSM, 5, 0)
	dataSM = append(dataSM, "X\x00"...)
	dataSM = append(dataSM, 0, 0, 0)
	sim.SendRaw(rawPDU(0x00000103, 0, 901, dataSM))
	sim.SendRaw(rawPDU(0x00000103, 0, 902, dataSM[:5])) // truncated
	eventually(t, "2 generic_nacks", func() bool { return sim.Stats().GenericNacks == 2 })
	// A well-formed data_sm gets its data_sm_resp, never a generic_nack.
	eventually(t, "data_sm_resp", func() bool {
		rs := sim.Responses()
		return len(rs) == 1 && rs[0].Command == "data_sm_resp" && rs[0].Seq == 901 && rs[0].Status == 0
	})
	if _, err := c.Submit(ctxTimeout(t, 5*time.Second), testSMS("code 1234")); err != nil {
		t.Fatalf("Submit after unknown PDUs: %v", err)
	}
	if st := sim.Stats(); st.Binds != 1 {
		t.Fatalf("binds: got %d, want 1 (the bind was kept)", st.Binds)
	}
}

func TestCarrier_Rebind(t *testing.T) {
	sim := newSMSC(t, smsc.Options{ReceiptDelay: -1})
	cfg := carrierConfig("a", sim.Addr())
	cfg.Binds = 2
	c := runCarrier(t, cfg, nil)
	waitBound(t, c, 2)
	for round := 1; round <= 2; round++ {
		if n := sim.DropConnections(); n != 2 {
			t.Fatalf("DropConnections: got %d, want 2", n)
		}
		eventually(t, "rebind", func() bool { return sim.Stats().Binds == uint64(2+2*round) && c.Bound() == 2 })
		if _, err := c.Submit(ctxTimeout(t, 5*time.Second), testSMS("code 1234")); err != nil {
			t.Fatalf("Submit after rebind: %v", err)
		}
	}
}

func TestCarrier_Window(t *testing.T) {
	sim := newSMSC(t, smsc.Options{ReceiptDelay: -1})
	sim.SetAckDelay(20 * time.Millisecond)
	cfg := carrierConfig("a", sim.Addr())
	cfg.Window = 2
	c := runCarrier(t, cfg, nil)
	waitBound(t, c, 1)
	const n = 40
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Go(func() {
			_, err := c.Submit(ctxTimeout(t, 10*time.Second), testSMS(fmt.Sprintf("code %d", i)))
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Submit: %v", err)
		}
	}
	if st := sim.Stats(); st.Accepted != n {
		t.Fatalf("accepted: got %d, want %d", st.Accepted, n)
	}
}

func TestCarrier_TokenBucket(t *testing.T) {
	sim := newSMSC(t, smsc.Options{ReceiptDelay: -1})
	cfg := carrierConfig("a", sim.Addr())
	cfg.TPS, cfg.Burst, cfg.Binds = 20, 1, 2
	c := runCarrier(t, cfg, nil)
	waitBound(t, c, 2)
	const n = 30
	start := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Go(func() {
			if _, err := c.Submit(ctxTimeout(t, 10*time.Second), testSMS("code")); err != nil {
				t.Errorf("Submit: %v", err)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if st := sim.Stats(); st.Accepted != n {
		t.Fatalf("accepted: got %d, want %d", st.Accepted, n)
	}
	// 1 token at once, then one per 50ms: 29 waits.
	if min := 1400 * time.Millisecond; elapsed < min {
		t.Fatalf("%d submits at 20/s took %s, want >= %s", n, elapsed, min)
	}
}

func TestCarrier_TokenBeyondDeadlineIsThrottled(t *testing.T) {
	sim := newSMSC(t, smsc.Options{ReceiptDelay: -1})
	cfg := carrierConfig("a", sim.Addr())
	cfg.TPS = 0.1 // one token per 10s
	c := runCarrier(t, cfg, nil)
	waitBound(t, c, 1)
	if _, err := c.Submit(ctxTimeout(t, 5*time.Second), testSMS("code")); err != nil {
		t.Fatalf("first Submit: %v", err)
	}
	ctx := ctxTimeout(t, time.Second)
	_, err := c.Submit(ctx, testSMS("code"))
	if !errors.Is(err, smpp.ErrThrottled) || ctx.Err() != nil {
		t.Fatalf("second Submit: got %v (ctx %v), want ErrThrottled before the deadline", err, ctx.Err())
	}
}

func TestCarrier_SubmitStatus(t *testing.T) {
	tests := []struct {
		name      string
		status    uint32
		throttled bool
		permanent bool
	}{
		{"Throttled", smpp.StatusThrottled, true, false},
		{"QueueFull", smpp.StatusMsgQFul, true, false},
		{"InvalidDestination", smpp.StatusInvDstAdr, false, true},
		{"SystemError", smpp.StatusSysErr, false, false},
	}
	sim := newSMSC(t, smsc.Options{ReceiptDelay: -1})
	c := runCarrier(t, carrierConfig("a", sim.Addr()), nil)
	waitBound(t, c, 1)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim.SetSubmitStatus(tt.status)
			_, err := c.Submit(ctxTimeout(t, 5*time.Second), testSMS("code"))
			var se *smpp.StatusError
			if !errors.As(err, &se) || se.Status != tt.status {
				t.Fatalf("got %v, want StatusError %#x", err, tt.status)
			}
			if errors.Is(err, smpp.ErrThrottled) != tt.throttled || se.Permanent() != tt.permanent {
				t.Fatalf("got throttled %v permanent %v, want %v %v", errors.Is(err, smpp.ErrThrottled), se.Permanent(), tt.throttled, tt.permanent)
			}
		})
	}
}

func TestCarrier_SessionLostWritten(t *testing.T) {
	sim := newSMSC(t, smsc.Options{ReceiptDelay: -1})
	sim.SetNoAck(true)
	c := runCarrier(t, carrierConfig("a", sim.Addr()), nil)
	waitBound(t, c, 1)
	done := make(chan error, 1)
	go func() {
		_, err := c.Submit(ctxTimeout(t, 10*time.Second), testSMS("code"))
		done <- err
	}()
	eventually(t, "submit swallowed", func() bool { return sim.Stats().Swallowed == 1 })
	sim.DropConnections()
	err := <-done
	var lost *smpp.SessionLostError
	if !errors.As(err, &lost) || !lost.Written || !errors.Is(err, smpp.ErrSessionLost) {
		t.Fatalf("got %v, want a written SessionLostError", err)
	}
}

func TestCarrier_NotBoundAtOnce(t *testing.T) {
	c := runCarrier(t, carrierConfig("a", deadAddr(t)), nil)
	ctx := ctxTimeout(t, 10*time.Second)
	_, err := c.Submit(ctx, testSMS("code"))
	if !errors.Is(err, smpp.ErrNotBound) || ctx.Err() != nil {
		t.Fatalf("got %v, want ErrNotBound at once", err)
	}
}

func TestCarrier_ShutdownUnbinds(t *testing.T) {
	sim := newSMSC(t, smsc.Options{ReceiptDelay: -1})
	cfg := carrierConfig("a", sim.Addr())
	cfg.Binds = 2
	c := smpp.NewCarrier(cfg, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	waitBound(t, c, 2)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: got %v, want nil", err)
	}
	if st := sim.Stats(); st.Unbinds != 2 {
		t.Fatalf("unbinds: got %d, want 2", st.Unbinds)
	}
	if _, err := c.Submit(context.Background(), testSMS("code")); !errors.Is(err, smpp.ErrNotBound) {
		t.Fatalf("Submit after Run: got %v, want ErrNotBound", err)
	}
	if err := c.Run(context.Background()); err == nil {
		t.Fatal("second Run: got nil, want an error")
	}
}

func TestCarrier_LogsNoSecrets(t *testing.T) {
	var buf syncbuf.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	sim := newSMSC(t, smsc.Options{ReceiptDelay: time.Millisecond})
	bad := carrierConfig("bad", sim.Addr())
	bad.Password = "wrong-pw-do-not-log"
	cb := smpp.NewCarrier(bad, nil, logger)
	cg := smpp.NewCarrier(carrierConfig("good", sim.Addr()), newHandler(), logger)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { cb.Run(ctx) })
	wg.Go(func() { cg.Run(ctx) })
	waitBound(t, cg, 1)
	sms := testSMS("Your OTP for verification is 918273")
	sms.Masked = "Your OTP for verification is ******"
	if _, err := cg.Submit(ctxTimeout(t, 5*time.Second), sms); err != nil {
		t.Fatalf("Submit: %v", err)
	}
	eventually(t, "receipt acked", func() bool { return sim.Stats().ReceiptsAcked == 1 })
	cancel()
	wg.Wait()
	logs := buf.String()
	for _, secret := range []string{"918273", testPassword, bad.Password, sms.To} {
		if strings.Contains(logs, secret) {
			t.Fatalf("logs contain %q:\n%s", secret, logs)
		}
	}
	// Whole messages: "bound" is also a substring of the "unbound" line
	// every session writes at shutdown.
	recs := textRecords(t, logs)
	if !hasRecord(recs, map[string]string{"level": "ERROR", "msg": "bind refused: credentials rejected", "carrier": "bad"}) ||
		!hasRecord(recs, map[string]string{"level": "INFO", "msg": "bound", "carrier": "good"}) {
		t.Fatalf("logs miss the bind lines (bind refused of carrier bad, bound of carrier good):\n%s", logs)
	}
}

// TestCarrier_RetryOnAnotherSession: a submit whose session dies after it
// was written is retried on the other session only under
// WithDuplicateAllowed.
func TestCarrier_RetryOnAnotherSession(t *testing.T) {
	for _, dup := range []bool{false, true} {
		t.Run(fmt.Sprintf("dup=%v", dup), func(t *testing.T) {
			sim1 := newSMSC(t, smsc.Options{ReceiptDelay: -1})
			sim2 := newSMSC(t, smsc.Options{ReceiptDelay: -1})
			var dials atomic.Int32
			var d net.Dialer
			cfg := carrierConfig("a", "ignored:1")
			cfg.Binds = 2
			cfg.Dial = func(ctx context.Context, network, _ string) (net.Conn, error) {
				if dials.Add(1) == 1 {
					return d.DialContext(ctx, network, sim1.Addr())
				}
				return d.DialContext(ctx, network, sim2.Addr())
			}
			c := runCarrier(t, cfg, nil)
			waitBound(t, c, 2)
			sim1.SetNoAck(true)
			ctx := ctxTimeout(t, 10*time.Second)
			if dup {
				ctx = smpp.WithDuplicateAllowed(ctx)
			}
			// Submit until one lands on sim1, which swallows it.
			var stuck chan error
			for i := 0; i < 50 && sim1.Stats().Swallowed == 0; i++ {
				done := make(chan error, 1)
				go func() {
					_, err := c.Submit(ctx, testSMS("code"))
					done <- err
				}()
				eventually(t, "submit answered or swallowed", func() bool {
					if sim1.Stats().Swallowed == 1 {
						stuck = done
						return true
					}
					select {
					case err := <-done:
						if err != nil {
							t.Fatalf("Submit: %v", err)
						}
						return true
					default:
						return false
					}
				})
			}
			if stuck == nil {
				t.Fatal("no submit reached sim1")
			}
			before := sim2.Stats().Accepted
			sim1.DropConnections()
			err := <-stuck
			var lost *smpp.SessionLostError
			switch {
			case dup && err != nil:
				t.Fatalf("with duplicates allowed: got %v, want a retry on sim2", err)
			case dup && sim2.Stats().Accepted != before+1:
				t.Fatal("the retry did not reach sim2")
			case !dup && (!errors.As(err, &lost) || !lost.Written):
				t.Fatalf("without duplicates: got %v, want a written SessionLostError", err)
			}
		})
	}
}
