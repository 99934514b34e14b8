package smpp_test

import (
	"testing"
	"time"

	"github.com/otpgate/otpgate/otp"
	"github.com/otpgate/otpgate/smpp"
	"github.com/otpgate/otpgate/smpp/smsc"
)

// waitResponses waits until the simulator recorded n responses.
func waitResponses(tb testing.TB, sim *smsc.Server, n int) []smsc.Response {
	tb.Helper()
	var rs []smsc.Response
	eventually(tb, "responses", func() bool {
		rs = sim.Responses()
		return len(rs) >= n
	})
	return rs
}

// TestCarrier_ReceiptShapes: receipts in the shapes real SMSCs send them
// are read, matched to the submit and answered with status 0 by the
// command's own response.
func TestCarrier_ReceiptShapes(t *testing.T) {
	tests := []struct {
		name string
		cfg  smsc.Options
		resp string
	}{
		{"UDHIWithHeader", smsc.Options{ReceiptUDHI: "header"}, "deliver_sm_resp"},
		{"UDHIFlagOverPlainText", smsc.Options{ReceiptUDHI: "flag"}, "deliver_sm_resp"},
		{"DataSM", smsc.Options{ReceiptDataSM: true}, "data_sm_resp"},
		{"DataSMUDHIHeader", smsc.Options{ReceiptDataSM: true, ReceiptUDHI: "header"}, "data_sm_resp"},
		{"DataSMTLVsOnly", smsc.Options{ReceiptDataSM: true, ReceiptNoText: true}, "data_sm_resp"},
		{"TLVsOnly", smsc.Options{ReceiptNoText: true, ReceiptState: "UNDELIV"}, "deliver_sm_resp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim, ids, r, want := submitForReceipt(t, tt.cfg, "a")
			if r.MessageID != ids[0] || r.State != want {
				t.Fatalf("receipt: got %+v, want %s %s", r, ids[0], want)
			}
			rs := waitResponses(t, sim, 1)
			if len(rs) != 1 || rs[0].Command != tt.resp || rs[0].Status != 0 || rs[0].MessageID != ids[0] {
				t.Fatalf("responses: got %+v, want one %s with status 0", rs, tt.resp)
			}
			if st := sim.Stats(); st.GenericNacks != 0 || st.Binds != 1 {
				t.Fatalf("stats: got %+v, want no generic_nack and the bind kept", st)
			}
		})
	}
}

// TestCarrier_IntermediateStates: intermediate receipts (ENROUTE, BUFFRED,
// ACKED, ACCEPTD) come through as ACCEPTED, in order, before the final one.
func TestCarrier_IntermediateStates(t *testing.T) {
	sim := newSMSC(t, smsc.Options{ReceiptDelay: time.Millisecond, ReceiptTLV: true,
		ReceiptStates: []string{"ENROUTE", "BUFFRED", "ACKED", "ACCEPTD", "DELIVRD"}})
	h := newHandler()
	c := runCarrier(t, carrierConfig("a", sim.Addr()), h)
	waitBound(t, c, 1)
	if _, err := c.Submit(ctxTimeout(t, 5*time.Second), testSMS("code 1234")); err != nil {
		t.Fatalf("Submit: %v", err)
	}
	got := h.wait(t, 5)
	for i, r := range got {
		want := otp.StateAccepted
		if i == 4 {
			want = otp.StateDelivered
		}
		if r.State != want || r.State.Final() != (i == 4) {
			t.Fatalf("receipt %d: got %s, want %s", i, r.State, want)
		}
	}
}

// TestCarrier_ReceiptTimezone: a done date written in local time is read
// in the carrier's receipt_timezone; one in the future is clamped to the
// arrival.
func TestCarrier_ReceiptTimezone(t *testing.T) {
	kolkata, err := time.LoadLocation("Asia/Kolkata")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		shift    time.Duration
		carrier  *time.Location
		wantBack time.Duration // done date this long before the submit (0: the arrival)
	}{
		{"ReadInZone", -10 * time.Minute, kolkata, 10 * time.Minute},
		{"WrongZoneIsFutureClamped", -10 * time.Minute, nil, 0},
		{"FutureClamped", 2 * time.Hour, kolkata, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim := newSMSC(t, smsc.Options{ReceiptDelay: time.Millisecond, ReceiptLocation: kolkata, ReceiptDoneShift: tt.shift})
			h := newHandler()
			cfg := carrierConfig("a", sim.Addr())
			cfg.ReceiptLocation = tt.carrier
			c := runCarrier(t, cfg, h)
			waitBound(t, c, 1)
			before := time.Now()
			if _, err := c.Submit(ctxTimeout(t, 5*time.Second), testSMS("code 1234")); err != nil {
				t.Fatalf("Submit: %v", err)
			}
			r := h.wait(t, 1)[0]
			after := time.Now()
			if tt.wantBack == 0 {
				if r.DoneAt.Before(before) || r.DoneAt.After(after) {
					t.Fatalf("done at %v, want the arrival, between %v and %v", r.DoneAt, before, after)
				}
				return
			}
			// The text has minutes only.
			lo, hi := before.Add(-tt.wantBack).Truncate(time.Minute), after.Add(-tt.wantBack)
			if r.DoneAt.Before(lo) || r.DoneAt.After(hi) {
				t.Fatalf("done at %v, want between %v and %v", r.DoneAt, lo, hi)
			}
		})
	}
}

// TestCarrier_ReceiptIDTooLong: a receipt whose id is longer than SMPP
// allows is refused with ESME_RINVMSGID, and not handled.
func TestCarrier_ReceiptIDTooLong(t *testing.T) {
	sim := newSMSC(t, smsc.Options{ReceiptDelay: time.Millisecond, ReceiptID: "long", ReceiptTLV: true})
	h := newHandler()
	c := runCarrier(t, carrierConfig("a", sim.Addr()), h)
	waitBound(t, c, 1)
	if _, err := c.Submit(ctxTimeout(t, 5*time.Second), testSMS("code 1234")); err != nil {
		t.Fatalf("Submit: %v", err)
	}
	rs := waitResponses(t, sim, 1)
	if rs[0].Status != smpp.StatusInvMsgID {
		t.Fatalf("response: got %+v, want status %#x", rs[0], smpp.StatusInvMsgID)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.got) != 0 {
		t.Fatalf("handled %+v, want nothing", h.got)
	}
}

// TestCarrier_MO: MO messages as deliver_sm and data_sm, in each coding,
// reach the MO handler decoded and are acknowledged by the command's own
// response.
func TestCarrier_MO(t *testing.T) {
	tests := []struct {
		name string
		mo   smsc.MO
		want otp.MO
		resp string
	}{
		{"GSM7", smsc.MO{Src: "919876543210", SrcTON: 1, SrcNPI: 1, Dst: "OTPGATE", DstTON: 5, Text: "STOP @ 10€"},
			otp.MO{From: "919876543210", FromTON: 1, To: "OTPGATE", Text: "STOP @ 10€"}, "deliver_sm_resp"},
		{"Latin1", smsc.MO{Src: "4915112345678", SrcTON: 1, Dst: "12345", Text: "Grüße", DataCoding: 3},
			otp.MO{From: "4915112345678", FromTON: 1, To: "12345", Text: "Grüße"}, "deliver_sm_resp"},
		{"UCS2", smsc.MO{Src: "79161234567", Dst: "OTPGATE", Text: "Код 😀", DataCoding: 8},
			otp.MO{From: "79161234567", To: "OTPGATE", Text: "Код 😀"}, "deliver_sm_resp"},
		{"UDH", smsc.MO{Src: "919876543210", SrcTON: 1, Dst: "OTPGATE", Text: "part one", UDH: []byte{5, 0, 3, 7, 2, 1}},
			otp.MO{From: "919876543210", FromTON: 1, To: "OTPGATE", Text: "part one"}, "deliver_sm_resp"},
		{"DataSM", smsc.MO{Src: "919876543210", SrcTON: 1, Dst: "OTPGATE", Text: "HELP", DataSM: true},
			otp.MO{From: "919876543210", FromTON: 1, To: "OTPGATE", Text: "HELP"}, "data_sm_resp"},
		{"DataSMUCS2", smsc.MO{Src: "919876543210", SrcTON: 1, Dst: "OTPGATE", Text: "नमस्ते", DataCoding: 8, DataSM: true},
			otp.MO{From: "919876543210", FromTON: 1, To: "OTPGATE", Text: "नमस्ते"}, "data_sm_resp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim := newSMSC(t, smsc.Options{})
			mo := &moHandler{}
			cfg := carrierConfig("a", sim.Addr())
			cfg.MO = mo
			c := runCarrier(t, cfg, newHandler())
			waitBound(t, c, 1)
			if err := sim.SendMO(tt.mo); err != nil {
				t.Fatal(err)
			}
			got := mo.wait(t, 1)[0]
			if got.ReceivedAt.IsZero() {
				t.Fatal("no ReceivedAt")
			}
			got.ReceivedAt = time.Time{}
			tt.want.Carrier = "a"
			if got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			rs := waitResponses(t, sim, 1)
			if len(rs) != 1 || !rs[0].MO || rs[0].Command != tt.resp || rs[0].Status != 0 {
				t.Fatalf("responses: got %+v, want one %s of an MO with status 0", rs, tt.resp)
			}
		})
	}
}

// TestCarrier_MOHandlerErrorTemporary: an MO that cannot be queued is
// answered ESME_RX_T_APPN; the SMSC sends it again and it gets through.
func TestCarrier_MOHandlerErrorTemporary(t *testing.T) {
	sim := newSMSC(t, smsc.Options{ReceiptRetry: 20 * time.Millisecond})
	mo := &moHandler{calls[otp.MO]{fail: 1}}
	cfg := carrierConfig("a", sim.Addr())
	cfg.MO = mo
	c := runCarrier(t, cfg, nil)
	waitBound(t, c, 1)
	if err := sim.SendMO(smsc.MO{Src: "919876543210", SrcTON: 1, Dst: "OTPGATE", Text: "STOP", DataSM: true}); err != nil {
		t.Fatal(err)
	}
	mo.wait(t, 1)
	rs := waitResponses(t, sim, 2)
	if rs[0].Status != smpp.StatusRxTApp || rs[1].Status != 0 || rs[0].Command != "data_sm_resp" {
		t.Fatalf("responses: got %+v, want data_sm_resp 0x64 then 0", rs)
	}
	if st := sim.Stats(); st.MONacked != 1 || st.MOAcked != 1 {
		t.Fatalf("stats: got %d nacked, %d acked; want 1 and 1", st.MONacked, st.MOAcked)
	}
}

// TestCarrier_MOWithoutHandler: with no MO handler, MOs are acked.
func TestCarrier_MOWithoutHandler(t *testing.T) {
	sim := newSMSC(t, smsc.Options{})
	c := runCarrier(t, carrierConfig("a", sim.Addr()), nil)
	waitBound(t, c, 1)
	if err := sim.SendMO(smsc.MO{Src: "919876543210", Dst: "OTPGATE", Text: "hi"}); err != nil {
		t.Fatal(err)
	}
	if rs := waitResponses(t, sim, 1); rs[0].Status != 0 {
		t.Fatalf("responses: got %+v, want status 0", rs)
	}
}
