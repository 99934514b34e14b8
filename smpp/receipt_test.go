package smpp_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fiorix/go-smpp/smpp/pdu/pdutlv"

	"github.com/otpgate/otpgate/otp"
	"github.com/otpgate/otpgate/smpp"
)

func TestParseReceipt(t *testing.T) {
	now := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	done := time.Date(2025, 1, 2, 13, 45, 0, 0, time.UTC)
	doneSec := time.Date(2025, 1, 2, 13, 45, 59, 0, time.UTC)
	tlv := func(kv ...any) pdutlv.Map {
		m := pdutlv.Map{}
		for i := 0; i < len(kv); i += 2 {
			m.Set(kv[i].(pdutlv.Tag), kv[i+1])
		}
		return m
	}
	tests := []struct {
		name string
		esm  byte
		text string
		tlvs pdutlv.Map
		want otp.Receipt
	}{
		{"OK", 0x04, "id:0000000001 sub:001 dlvrd:001 submit date:2501021340 done date:2501021345 stat:DELIVRD err:000 text:Your OTP for",
			nil, otp.Receipt{MessageID: "0000000001", State: otp.StateDelivered, Error: "000", DoneAt: done}},
		{"Seconds", 0x04, "id:7 submit date:250102134500 done date:250102134559 stat:UNDELIV err:001",
			nil, otp.Receipt{MessageID: "7", State: otp.StateUndeliverable, Error: "001", DoneAt: doneSec}},
		{"UpperCaseKeys", 0x04, "ID:AbC12 SUB:001 DLVRD:001 SUBMIT DATE:2501021340 DONE DATE:2501021345 STAT:expired ERR:005 TEXT:x",
			nil, otp.Receipt{MessageID: "AbC12", State: otp.StateExpired, Error: "005", DoneAt: done}},
		{"Reordered", 0x04, "stat:REJECTD err:0x12 done date:2501021345 id:ff-01",
			nil, otp.Receipt{MessageID: "ff-01", State: otp.StateRejected, Error: "0x12", DoneAt: done}},
		{"MissingDatesAndErr", 0x04, "id:55 stat:DELETED",
			nil, otp.Receipt{MessageID: "55", State: otp.StateDeleted, DoneAt: now}},
		{"BadDate", 0x04, "id:55 done date:99999999 stat:UNKNOWN",
			nil, otp.Receipt{MessageID: "55", State: otp.StateUnknown, DoneAt: now}},
		{"Accepted", 0x04, "id:1 stat:ACCEPTD", nil, otp.Receipt{MessageID: "1", State: otp.StateAccepted, DoneAt: now}},
		{"Enroute", 0x04, "id:1 stat:ENROUTE", nil, otp.Receipt{MessageID: "1", State: otp.StateAccepted, DoneAt: now}},
		// An unknown word is intermediate: a later known one decides.
		{"OddStat", 0x04, "id:1 stat:WEIRD", nil, otp.Receipt{MessageID: "1", State: otp.StateAccepted, DoneAt: now}},
		{"Buffered", 0x04, "id:1 stat:BUFFRED", nil, otp.Receipt{MessageID: "1", State: otp.StateAccepted, DoneAt: now}},
		{"BufferedOtherSpelling", 0x04, "id:1 stat:BUFFERD", nil, otp.Receipt{MessageID: "1", State: otp.StateAccepted, DoneAt: now}},
		{"Acked", 0x04, "id:1 stat:ACKED", nil, otp.Receipt{MessageID: "1", State: otp.StateAccepted, DoneAt: now}},
		{"UnknownIsFinal", 0x04, "id:1 stat:UNKNOWN", nil, otp.Receipt{MessageID: "1", State: otp.StateUnknown, DoneAt: now}},
		{"FutureDoneDateClamped", 0x04, "id:1 done date:2503040606 stat:DELIVRD", nil,
			otp.Receipt{MessageID: "1", State: otp.StateDelivered, DoneAt: now}},
		{"FutureDoneDateWithSecondsClamped", 0x04, "id:1 done date:250304050608 stat:DELIVRD", nil,
			otp.Receipt{MessageID: "1", State: otp.StateDelivered, DoneAt: now}},
		// With the UDHI bit, a text that starts with "id:" is never read as
		// a header, even when its bytes happen to parse as one ('i' = 105
		// octets of two well-formed elements).
		{"UDHIFlagTextThatParsesAsHeader", 0x44, "id:1 stat:DELIVRD err:000 text:" + strings.Repeat("a", 30) + "x+" + strings.Repeat("b", 50),
			nil, otp.Receipt{MessageID: "1", State: otp.StateDelivered, Error: "000", DoneAt: now}},
		{"UDHIWithHeader", 0x44, "\x05\x00\x03\x2a\x01\x01id:8 stat:DELIVRD err:000", nil,
			otp.Receipt{MessageID: "8", State: otp.StateDelivered, Error: "000", DoneAt: now}},
		{"UDHIFlagOnly", 0x44, "id:0000000001 sub:001 dlvrd:001 submit date:2501021340 done date:2501021345 stat:DELIVRD err:000 text:Your OTP for verification is 1234 and more text to pass 105 bytes",
			nil, otp.Receipt{MessageID: "0000000001", State: otp.StateDelivered, Error: "000", DoneAt: done}},
		{"TextWithoutReceiptESM", 0x00, "id:5 sub:001 dlvrd:001 stat:EXPIRED err:000", nil,
			otp.Receipt{MessageID: "5", State: otp.StateExpired, Error: "000", DoneAt: now}},
		{"IntermediateNotification", 0x20, "id:5 stat:ENROUTE", nil, otp.Receipt{MessageID: "5", State: otp.StateAccepted, DoneAt: now}},
		{"TLVWithoutReceiptESM", 0x00, "",
			tlv(pdutlv.TagReceiptedMessageID, pdutlv.CString("9"), pdutlv.TagMessageStateOption, uint8(3)),
			otp.Receipt{MessageID: "9", State: otp.StateExpired, DoneAt: now}},
		{"TextQuotesFields", 0x04, "id:9 stat:DELIVRD err:000 text:id:666 stat:REJECTD",
			nil, otp.Receipt{MessageID: "9", State: otp.StateDelivered, Error: "000", DoneAt: now}},
		{"KeyInsideWordIgnored", 0x04, "xid:3 id:4 stat:DELIVRD", nil, otp.Receipt{MessageID: "4", State: otp.StateDelivered, DoneAt: now}},
		{"TLVPreferred", 0x04, "id:123 stat:DELIVRD err:000",
			tlv(pdutlv.TagReceiptedMessageID, pdutlv.CString("7B"), pdutlv.TagMessageStateOption, uint8(5)),
			otp.Receipt{MessageID: "7B", State: otp.StateUndeliverable, Error: "000", DoneAt: now}},
		{"TLVOnly", 0x04, "",
			tlv(pdutlv.TagReceiptedMessageID, pdutlv.CString(" 00A1 "), pdutlv.TagMessageStateOption, uint8(2),
				pdutlv.TagNetworkErrorCode, []byte{3, 0, 7}),
			otp.Receipt{MessageID: "00A1", State: otp.StateDelivered, Error: "007", DoneAt: now}},
		{"TLVStates", 0x04, "", tlv(pdutlv.TagReceiptedMessageID, "1", pdutlv.TagMessageStateOption, uint8(6)),
			otp.Receipt{MessageID: "1", State: otp.StateAccepted, DoneAt: now}},
		{"TLVStateUnknownValueFallsBack", 0x04, "id:1 stat:DELIVRD",
			tlv(pdutlv.TagMessageStateOption, uint8(99)), otp.Receipt{MessageID: "1", State: otp.StateDelivered, DoneAt: now}},
		{"MessagePayload", 0x04, "", tlv(pdutlv.TagMessagePayload, "id:77 stat:EXPIRED err:000"),
			otp.Receipt{MessageID: "77", State: otp.StateExpired, Error: "000", DoneAt: now}},
		{"OtherESMBits", 0x04 | 0x80, "id:1 stat:DELIVRD", nil, otp.Receipt{MessageID: "1", State: otp.StateDelivered, DoneAt: now}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := smpp.ParseReceipt(tt.esm, []byte(tt.text), tt.tlvs, now)
			if err != nil {
				t.Fatalf("ParseReceipt: %v", err)
			}
			if got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseReceipt_Errors(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name string
		esm  byte
		text string
	}{
		{"ErrNotReceiptMO", 0x00, "hello id:1 stat:DELIVRD"},
		{"ErrNotReceiptNoStat", 0x00, "id:1 is my id"},
		{"ErrNotReceiptUDHI", 0x40, "\x05\x00\x03\x2a\x02\x01hello"},
		{"NoID", 0x04, "sub:001 stat:DELIVRD"},
		{"NoState", 0x04, "id:1 err:000"},
		{"Empty", 0x04, ""},
		{"Garbage", 0x04, "\x00\xff::::"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := smpp.ParseReceipt(tt.esm, []byte(tt.text), nil, now)
			if err == nil {
				t.Fatal("got nil error, want one")
			}
			if strings.HasPrefix(tt.name, "ErrNotReceipt") != errors.Is(err, smpp.ErrNotReceipt) {
				t.Fatalf("got %v, want ErrNotReceipt", err)
			}
		})
	}
}

// TestParseReceipt_TLVMarksReceipt: either receipt TLV alone makes a
// plain-looking PDU a receipt (an incomplete one here: an error, not
// ErrNotReceipt).
func TestParseReceipt_TLVMarksReceipt(t *testing.T) {
	for _, m := range []pdutlv.Map{
		{pdutlv.TagReceiptedMessageID: pdutlv.NewTLV(pdutlv.TagReceiptedMessageID, []byte("9\x00"))},
		{pdutlv.TagMessageStateOption: pdutlv.NewTLV(pdutlv.TagMessageStateOption, []byte{2})},
	} {
		_, err := smpp.ParseReceipt(0x00, []byte("hello"), m, time.Now())
		if err == nil || errors.Is(err, smpp.ErrNotReceipt) {
			t.Fatalf("%v: got %v, want an incomplete receipt's error", m, err)
		}
	}
}

func FuzzParseReceipt(f *testing.F) {
	f.Add(byte(4), []byte("id:0000000001 sub:001 dlvrd:001 submit date:2501021340 done date:2501021345 stat:DELIVRD err:000 text:x"), []byte{})
	f.Add(byte(4), []byte("ID:1 STAT:undeliv"), []byte{0x00, 0x1e, 0x00, 0x03, '1', '2', 0, 0x04, 0x27, 0x00, 0x01, 0x02})
	f.Add(byte(0), []byte(""), []byte{0x04, 0x23, 0x00, 0x03, 1, 2, 3})
	f.Fuzz(func(t *testing.T, esm byte, sm, rawTLV []byte) {
		m := pdutlv.Map{}
		for len(rawTLV) >= 4 {
			tag := pdutlv.Tag(uint16(rawTLV[0])<<8 | uint16(rawTLV[1]))
			n := min(int(rawTLV[2])<<8|int(rawTLV[3]), len(rawTLV)-4)
			m.Set(tag, rawTLV[4:4+n])
			rawTLV = rawTLV[4+n:]
		}
		r, err := smpp.ParseReceipt(esm, sm, m, time.Unix(0, 0))
		if err == nil && (r.MessageID == "" || r.State == "") {
			t.Fatalf("nil error with empty id or state: %+v", r)
		}
	})
}

func TestParseReceipt_DoneDatePrecision(t *testing.T) {
	now := time.Date(2026, 11, 25, 20, 43, 26, 0, time.UTC)
	parse := func(done string) time.Time {
		t.Helper()
		r, err := smpp.ParseReceipt(0x04, []byte("id:1 sub:001 dlvrd:001 submit date:2611252043 done date:"+done+" stat:DELIVRD err:000"), nil, now)
		if err != nil {
			t.Fatal(err)
		}
		return r.DoneAt
	}
	if got := parse("2611252043"); !got.Equal(now) {
		t.Fatalf("done in the current minute: got %v, want the arrival %v", got, now)
	}
	if got, want := parse("2611252041"), time.Date(2026, 11, 25, 20, 41, 0, 0, time.UTC); !got.Equal(want) {
		t.Fatalf("done two minutes ago: got %v, want %v", got, want)
	}
	if got, want := parse("261125204301"), time.Date(2026, 11, 25, 20, 43, 1, 0, time.UTC); !got.Equal(want) {
		t.Fatalf("done date with seconds: got %v, want %v", got, want)
	}
}
