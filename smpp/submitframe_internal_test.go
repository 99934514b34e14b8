package smpp

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/fiorix/go-smpp/smpp/pdu"
	"github.com/fiorix/go-smpp/smpp/pdu/pdufield"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutlv"
	"github.com/otpgate/otpgate/otp"
)

// goSMPPSubmit is the submit_sm that go-smpp's SubmitSM builds from the same
// inputs as submitOptions.frame: the oracle the frame is checked against.
func goSMPPSubmit(o *submitOptions, m *outgoing, i int, vp string) pdu.Body {
	p := pdu.NewSubmitSM(nil)
	f := p.Fields()
	f.Set(pdufield.ServiceType, o.serviceType)
	f.Set(pdufield.SourceAddrTON, m.srcTON)
	f.Set(pdufield.SourceAddrNPI, m.srcNPI)
	f.Set(pdufield.SourceAddr, m.src)
	f.Set(pdufield.DestAddrTON, o.dstTON)
	f.Set(pdufield.DestAddrNPI, o.dstNPI)
	f.Set(pdufield.DestinationAddr, m.dst)
	f.Set(pdufield.ESMClass, m.ESMClass)
	f.Set(pdufield.ValidityPeriod, vp)
	f.Set(pdufield.RegisteredDelivery, o.registered)
	f.Set(pdufield.DataCoding, m.DataCoding)
	t := p.TLVFields()
	for _, tlv := range m.tlvs {
		t.Set(pdutlv.Tag(tlv.Tag), tlv.Value)
	}
	part := m.Parts[i]
	switch {
	case m.Long == LongPayload:
		f.Set(pdufield.ShortMessage, []byte{})
		t.Set(pdutlv.TagMessagePayload, part)
	case m.Long == LongSAR && len(m.Parts) > 1:
		t.Set(pdutlv.TagSarMsgRefNum, binary.BigEndian.AppendUint16(nil, m.Ref))
		t.Set(pdutlv.TagSarTotalSegments, uint8(len(m.Parts)))
		t.Set(pdutlv.TagSarSegmentSeqnum, uint8(i+1))
		f.Set(pdufield.ShortMessage, part)
	default:
		f.Set(pdufield.ShortMessage, part)
	}
	return p
}

// splitTLVs cuts the TLVs off a submit_sm whose mandatory part ends at
// end, and returns them sorted (go-smpp writes them in map order).
func splitTLVs(t *testing.T, b []byte, end int) []string {
	t.Helper()
	var out []string
	for rest := b[end:]; len(rest) > 0; {
		if len(rest) < 4 {
			t.Fatalf("truncated TLV % x", rest)
		}
		n := 4 + int(binary.BigEndian.Uint16(rest[2:]))
		if len(rest) < n {
			t.Fatalf("TLV longer than the PDU: % x", rest)
		}
		out = append(out, fmt.Sprintf("% x", rest[:n]))
		rest = rest[n:]
	}
	slices.Sort(out)
	return out
}

// mandatoryEnd is where the mandatory fields of submit_sm b end.
func mandatoryEnd(t *testing.T, b []byte) int {
	t.Helper()
	at := pdu.HeaderLen
	cstr := func() {
		i := bytes.IndexByte(b[at:], 0)
		if i < 0 {
			t.Fatalf("unterminated C string at %d: % x", at, b)
		}
		at += i + 1
	}
	cstr()  // service_type
	at += 2 // source TON, NPI
	cstr()  // source_addr
	at += 2 // dest TON, NPI
	cstr()  // destination_addr
	at += 3 // esm_class, protocol_id, priority_flag
	cstr()  // schedule_delivery_time
	cstr()  // validity_period
	at += 4 // registered_delivery, replace_if_present, data_coding, sm_default_msg_id
	return at + 1 + int(b[at])
}

// TestSubmitFrame: the hand-written submit_sm is go-smpp's, byte for byte
// up to the TLVs, and carries the same TLVs.
func TestSubmitFrame(t *testing.T) {
	long := strings.Repeat("Your otpgate code is 123456. ", 8)
	dlt := []otp.TLV{{Tag: 0x1400, Value: []byte("1101234567890")}, {Tag: 0x1401, Value: []byte("1107000000000000001")}, {Tag: 0x0501, Value: []byte{0x0a, 0x0b}}}
	cases := []struct {
		name string
		opt  *submitOptions
		text string
		long string
		tlvs []otp.TLV
		vp   string
	}{
		{name: "Plain", opt: &submitOptions{dstTON: 1, dstNPI: 1, registered: 1}, text: "Your code is 123456", vp: "000000000500000R"},
		{name: "NoValidity", opt: &submitOptions{dstTON: 1, dstNPI: 1, registered: 1}, text: "Your code is 123456"},
		{name: "ServiceType", opt: &submitOptions{dstTON: 2, dstNPI: 1, registered: 0, serviceType: "OTP"}, text: "code 1", vp: "260309183330800+"},
		{name: "UCS2", opt: &submitOptions{dstTON: 1, dstNPI: 1, registered: 1}, text: "Ваш код 123456", vp: "000000000500000R"},
		{name: "TLVs", opt: &submitOptions{dstTON: 1, dstNPI: 1, registered: 1}, text: "Your code is 123456", tlvs: dlt},
		{name: "UDH", opt: &submitOptions{dstTON: 1, dstNPI: 1, registered: 1}, text: long, long: LongUDH, tlvs: dlt[:1]},
		{name: "SAR", opt: &submitOptions{dstTON: 1, dstNPI: 1, registered: 1}, text: long, long: LongSAR, tlvs: dlt},
		{name: "SAROnePart", opt: &submitOptions{dstTON: 1, dstNPI: 1, registered: 1}, text: "short", long: LongSAR},
		{name: "Payload", opt: &submitOptions{dstTON: 1, dstNPI: 1, registered: 1}, text: long, long: LongPayload, tlvs: dlt[1:]},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			enc, err := EncodeWith(c.text, 0x1234, EncodeOptions{Long: c.long})
			if err != nil {
				t.Fatal(err)
			}
			m := &outgoing{Encoded: enc, src: "OTPGATE", dst: "919876543210", srcTON: 5, srcNPI: 0, tlvs: c.tlvs}
			if c.long != "" && c.long != LongPayload && c.text == long && len(enc.Parts) < 2 {
				t.Fatalf("%d parts, want several", len(enc.Parts))
			}
			for i := range enc.Parts {
				got := c.opt.frame(m, i, c.vp)
				want, err := encodePDU(goSMPPSubmit(c.opt, m, i, c.vp))
				if err != nil {
					t.Fatal(err)
				}
				clear(want[12:16]) // go-smpp numbers its PDUs; requestLate sets the sequence
				end := mandatoryEnd(t, want)
				if int(binary.BigEndian.Uint32(got)) != len(got) || len(got) != len(want) {
					t.Fatalf("part %d: length %d (field %d), want %d", i, len(got), binary.BigEndian.Uint32(got), len(want))
				}
				if !bytes.Equal(got[:end], want[:end]) {
					t.Fatalf("part %d:\n got % x\nwant % x", i, got[:end], want[:end])
				}
				if g, w := splitTLVs(t, got, end), splitTLVs(t, want, end); !slices.Equal(g, w) {
					t.Fatalf("part %d TLVs:\n got %q\nwant %q", i, g, w)
				}
			}
		})
	}
}
