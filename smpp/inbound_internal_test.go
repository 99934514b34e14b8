package smpp

import (
	"context"
	"encoding/binary"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fiorix/go-smpp/smpp/pdu"

	"github.com/otpgate/otpgate/otp"
)

// mos records MO messages; err fails every call.
type mos struct {
	mu  sync.Mutex
	got []otp.MO
	err error
}

func (m *mos) HandleMO(_ context.Context, mo otp.MO) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.got = append(m.got, mo)
	return m.err
}

func (m *mos) all() []otp.MO {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]otp.MO(nil), m.got...)
}

func tlv(tag uint16, v []byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, tag)
	b = binary.BigEndian.AppendUint16(b, uint16(len(v)))
	return append(b, v...)
}

// dataSMBody encodes a data_sm body from 447700900000 to SENDER.
func dataSMBody(esm, dc byte, tlvs ...[]byte) []byte {
	var b []byte
	b = append(b, 0)                       // service_type
	b = append(b, 1, 1)                    // source ton/npi
	b = append(b, cstr("447700900000")...) // source_addr
	b = append(b, 5, 0)                    // dest ton/npi
	b = append(b, cstr("SENDER")...)       // destination_addr
	b = append(b, esm, 0, dc)              // esm_class, registered_delivery, data_coding
	for _, t := range tlvs {
		b = append(b, t...)
	}
	return b
}

// TestSession_Inbound sends deliver_sm and data_sm the way odd carriers do
// and checks the answer (its command and status) and what the handlers got.
func TestSession_Inbound(t *testing.T) {
	longID := strings.Repeat("1", MaxReceiptIDLen+1)
	udh := "\x05\x00\x03\x2a\x01\x01"
	long := strings.Repeat("a", 4000)
	tests := []struct {
		name      string
		id        pdu.ID
		body      []byte
		moErr     error
		resp      pdu.ID
		status    uint32
		receiptID string // the receipt handled, if any
		moText    string // the MO handled, if any
	}{
		{"DataSMReceiptTLVOnly", pdu.DataSMID, dataSMBody(0x04, 0, tlv(0x001E, cstr("AB12")), tlv(0x0427, []byte{2})),
			nil, pdu.DataSMRespID, StatusOK, "AB12", ""},
		{"DataSMReceiptPayload", pdu.DataSMID, dataSMBody(0x04, 0, tlv(0x0424, []byte("id:77 stat:DELIVRD err:000"))),
			nil, pdu.DataSMRespID, StatusOK, "77", ""},
		{"DataSMMO", pdu.DataSMID, dataSMBody(0, 0, tlv(0x0424, []byte("STOP"))),
			nil, pdu.DataSMRespID, StatusOK, "", "STOP"},
		{"DataSMMOHandlerFails", pdu.DataSMID, dataSMBody(0, 0, tlv(0x0424, []byte("STOP"))),
			errors.New("queue down"), pdu.DataSMRespID, StatusRxTApp, "", "STOP"},
		{"DeliverSMMOHandlerFails", pdu.DeliverSMID, deliverBody(0, "hello"),
			errors.New("queue down"), pdu.DeliverSMRespID, StatusRxTApp, "", "hello"},
		{"ReceiptUDHIFlagOnly", pdu.DeliverSMID, deliverBody(0x44, "id:0000000001 sub:001 dlvrd:001 submit date:2501021340 done date:2501021345 stat:DELIVRD err:000 text:Your OTP for verification is"),
			nil, pdu.DeliverSMRespID, StatusOK, "0000000001", ""},
		{"ReceiptUDHIHeader", pdu.DeliverSMID, deliverBody(0x44, udh+"id:0000000002 stat:DELIVRD err:000"),
			nil, pdu.DeliverSMRespID, StatusOK, "0000000002", ""},
		{"ReceiptBadTrailingTLV", pdu.DeliverSMID, deliverBody(0x04, "id:3 stat:DELIVRD", []byte{0x04, 0x27, 0x00, 0x09, 1}),
			nil, pdu.DeliverSMRespID, StatusOK, "3", ""},
		{"ReceiptIDTooLong", pdu.DeliverSMID, deliverBody(0x04, "id:"+longID+" stat:DELIVRD"),
			nil, pdu.DeliverSMRespID, StatusInvMsgID, "", ""},
		{"ReceiptIDTooLongTLV", pdu.DataSMID, dataSMBody(0x04, 0, tlv(0x001E, cstr(longID)), tlv(0x0427, []byte{2})),
			nil, pdu.DataSMRespID, StatusInvMsgID, "", ""},
		{"MOWithUDH", pdu.DeliverSMID, deliverBody(0x40, udh+"part one"),
			nil, pdu.DeliverSMRespID, StatusOK, "", "part one"},
		{"MOBeyondGoSMPPLimit", pdu.DeliverSMID, deliverBody(0, "", tlv(0x0424, []byte(long))),
			nil, pdu.DeliverSMRespID, StatusOK, "", long},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, m := newReceipts(), &mos{err: tt.moErr}
			_, p := startPeer(t, sessionConfig{Handler: h, MO: m, Carrier: "c1"})
			seq := uint32(100 + i)
			p.write(frame(uint32(tt.id), 0, seq, tt.body))
			st, rseq, body := p.readUntil(tt.resp)
			if st != tt.status || rseq != seq {
				t.Fatalf("%s: got status %#x seq %d, want %#x %d", tt.resp, st, rseq, tt.status, seq)
			}
			if string(body) != "\x00" {
				t.Fatalf("response body: got %q, want an empty message_id", body)
			}
			h.mu.Lock()
			got := append([]otp.Receipt(nil), h.got...)
			h.mu.Unlock()
			switch {
			case tt.receiptID == "" && len(got) > 0:
				t.Fatalf("receipts: got %+v, want none", got)
			case tt.receiptID != "" && (len(got) != 1 || got[0].MessageID != tt.receiptID || got[0].Carrier != "c1"):
				t.Fatalf("receipts: got %+v, want one of %s from c1", got, tt.receiptID)
			}
			gotMO := m.all()
			switch {
			case tt.moText == "" && len(gotMO) > 0:
				t.Fatalf("MOs: got %+v, want none", gotMO)
			case tt.moText != "" && (len(gotMO) != 1 || gotMO[0].Text != tt.moText || gotMO[0].From != "447700900000" ||
				gotMO[0].FromTON != 1 || gotMO[0].To != "SENDER" || gotMO[0].Carrier != "c1" || gotMO[0].ReceivedAt.IsZero()):
				t.Fatalf("MOs: got %+v, want one %q from 447700900000 (TON 1) to SENDER", gotMO, tt.moText)
			}
		})
	}
}

// TestSession_InboundQueueFull: with every worker stuck in the handler and
// the queue full, the next receipt is answered at once with a temporary
// error, and the reader goes on (enquire_link is still answered).
func TestSession_InboundQueueFull(t *testing.T) {
	release := make(chan struct{})
	h := ReceiptHandlerFunc(func(ctx context.Context, _ otp.Receipt) error {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	})
	_, p := startPeer(t, sessionConfig{Handler: h, EnquireLink: time.Hour})
	defer close(release)
	n := receiptQueueLen + receiptWorkers + 1
	var b []byte
	for i := 1; i <= n; i++ {
		b = append(b, frame(uint32(pdu.DeliverSMID), 0, uint32(i), deliverBody(0x04, "id:1 stat:DELIVRD"))...)
	}
	go p.conn.Write(b)
	// Workers may take their first receipt late, so the refused one is one
	// of the last few; exactly those beyond the capacity are refused.
	st, seq, _ := p.readUntil(pdu.DeliverSMRespID)
	if st != StatusRxTApp || seq < uint32(receiptQueueLen) {
		t.Fatalf("got status %#x seq %d, want %#x for one of the last", st, seq, StatusRxTApp)
	}
	p.write(frame(uint32(pdu.EnquireLinkID), 0, 9999, nil))
	if _, seq, _ := p.readUntil(pdu.EnquireLinkRespID); seq != 9999 {
		t.Fatalf("enquire_link_resp: got seq %d, want 9999", seq)
	}
}

func TestParseReceipt_Location(t *testing.T) {
	kolkata, err := time.LoadLocation("Asia/Kolkata")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 2, 12, 0, 0, 0, time.UTC)
	text := []byte("id:1 sub:001 dlvrd:001 submit date:2601021720 done date:2601021721 stat:DELIVRD err:000")
	r, _, err := parseReceipt(0x04, text, nil, now, kolkata)
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 1, 2, 11, 51, 0, 0, time.UTC); !r.DoneAt.Equal(want) {
		t.Fatalf("done date 17:21 in Kolkata: got %v, want %v", r.DoneAt, want)
	}
	// Read as UTC, the same date is five and a half hours ahead: clamped
	// to the arrival.
	if r, _, _ := parseReceipt(0x04, text, nil, now, nil); !r.DoneAt.Equal(now) {
		t.Fatalf("done date in the future: got %v, want the arrival %v", r.DoneAt, now)
	}
}

func TestParseReceipt_UnknownStatReported(t *testing.T) {
	_, stat, err := parseReceipt(0x04, []byte("id:1 stat:SENT"), nil, time.Now(), nil)
	if err != nil || stat != "SENT" {
		t.Fatalf("got stat %q err %v, want SENT", stat, err)
	}
	for _, w := range []string{"ENROUTE", "ACCEPTD", "BUFFRED", "BUFFERD", "ACKED", "DELIVRD", "UNKNOWN"} {
		if _, stat, err := parseReceipt(0x04, []byte("id:1 stat:"+w), nil, time.Now(), nil); err != nil || stat != "" {
			t.Fatalf("%s: got stat %q err %v, want a known word", w, stat, err)
		}
	}
	_, stat, _ = parseReceipt(0x04, []byte("id:1 stat:WEIRD"), map[uint16][]byte{0x0427: {2}}, time.Now(), nil)
	if stat != "" {
		t.Fatalf("message_state decides: got stat %q, want none", stat)
	}
}

func TestSplitUDH(t *testing.T) {
	tests := []struct {
		name, in, text string
		ok             bool
	}{
		{"Concat8", "\x05\x00\x03\x2a\x02\x01hi", "hi", true},
		{"TwoElements", "\x08\x00\x03\x2a\x02\x01\x70\x01\x00hi", "hi", true},
		{"ReceiptText", "id:1 stat:DELIVRD", "id:1 stat:DELIVRD", false},
		{"ElementOverruns", "\x05\x00\x05\x2a\x02\x01hi", "\x05\x00\x05\x2a\x02\x01hi", false},
		{"HeaderBeyondText", "\x09\x00\x03", "\x09\x00\x03", false},
		{"Empty", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, text, ok := splitUDH([]byte(tt.in))
			if string(text) != tt.text || ok != tt.ok {
				t.Fatalf("got %q %v, want %q %v", text, ok, tt.text, tt.ok)
			}
		})
	}
}

func TestDecodeText(t *testing.T) {
	tests := []struct {
		name string
		dc   byte
		in   []byte
		want string
	}{
		{"GSM7", 0x00, []byte("Hello @ \x1b\x65 \x11"), "Hello ¡ € _"},
		{"GSM7UnknownEscape", 0x00, []byte("a\x1bAb"), "aAb"},
		{"GSM7HighByte", 0x00, []byte("a\xffb"), "a\uFFFDb"},
		{"GSM7Class", 0xF1, []byte("ok"), "ok"},
		{"ASCII", 0x01, []byte("a\x80"), "a\uFFFD"},
		{"Latin1", 0x03, []byte("caf\xe9"), "café"},
		{"UCS2", 0x08, []byte{0x04, 0x1a, 0x04, 0x3e, 0x04, 0x34}, "Код"},
		{"UCS2Surrogates", 0x08, []byte{0xd8, 0x3d, 0xde, 0x00}, "😀"},
		{"UCS2OddLength", 0x08, []byte{0x00, 0x41, 0x00}, "A\uFFFD"},
		{"UCS2GeneralGroup", 0x18, []byte{0x00, 0x41}, "A"},
		{"Binary", 0x04, []byte("ok\xff"), "ok\uFFFD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := decodeText(tt.dc, tt.in); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}
