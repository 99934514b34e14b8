package smpp

import (
	"bytes"
	"errors"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/fiorix/go-smpp/smpp/pdu"
)

// FuzzInboundPDU feeds the hand-written deliver_sm / data_sm reader, and
// what the session does with its result (receipt parsing, UDH split, text
// decoding), arbitrary bodies: nothing panics, a parsed receipt has an id
// and a state, a split UDH gives back the input, decoded text is UTF-8.
func FuzzInboundPDU(f *testing.F) {
	f.Add(false, deliverBody(0x04, "id:0000000001 sub:001 dlvrd:001 submit date:2501021340 done date:2501021345 stat:DELIVRD err:000 text:x"), byte(0))
	f.Add(false, deliverBody(0x44, "\x05\x00\x03\x2a\x01\x01id:1 stat:DELIVRD"), byte(0))
	f.Add(false, deliverBody(0x44, "id:1 stat:ENROUTE"), byte(0))
	f.Add(false, deliverBody(0x00, "hello \x1b\x65"), byte(0))
	f.Add(false, deliverBody(0x04, "id:1", []byte{0x04, 0x27, 0x00, 0x09, 1}), byte(0))
	f.Add(true, dataSMBody(0x04, 0, tlv(0x001E, cstr("AB12")), tlv(0x0427, []byte{2})), byte(0))
	f.Add(true, dataSMBody(0x00, 8, tlv(0x0424, []byte{0x04, 0x1a, 0xd8})), byte(8))
	f.Add(true, []byte{0, 1, 1}, byte(0))
	f.Fuzz(func(t *testing.T, data bool, body []byte, dc byte) {
		id := pdu.DeliverSMID
		if data {
			id = pdu.DataSMID
		}
		in, err := parseInbound(id, body)
		if err != nil {
			if !errors.Is(err, errTruncated) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		r, _, err := parseReceipt(in.esmClass, in.shortMessage, in.tlvs, time.Unix(1e9, 0), time.UTC)
		if err == nil && (r.MessageID == "" || r.State == "" || r.DoneAt.After(time.Unix(1e9, 0))) {
			t.Fatalf("receipt %+v: empty id or state, or done after arrival", r)
		}
		text := in.text()
		if udh, rest, ok := splitUDH(text); ok {
			if !bytes.Equal(append(append([]byte(nil), udh...), rest...), text) || len(udh) < 3 {
				t.Fatalf("split %q into %q + %q", text, udh, rest)
			}
		}
		for _, c := range []byte{in.dataCoding, dc} {
			if s := decodeText(c, text); !utf8.ValidString(s) {
				t.Fatalf("decodeText(%#x, %q) = %q: not UTF-8", c, text, s)
			}
		}
	})
}
