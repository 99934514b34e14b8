package smpp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/fiorix/go-smpp/smpp/pdu"
)

// errTruncated means a deliver_sm or data_sm body ends inside its
// mandatory fields: the PDU is corrupt, not merely odd.
var errTruncated = errors.New("smpp: pdu body shorter than its mandatory fields")

// inboundPDU is a deliver_sm or data_sm as the SMSC sent it, read from the
// raw frame by hand. go-smpp's decoder is not used here: it cannot decode
// data_sm, it reads the start of short_message as a user data header
// whenever esm_class has the UDHI bit (receipts with esm_class 0x44 whose
// text has no header lose it), and it refuses the whole PDU for one bad
// TLV.
type inboundPDU struct {
	id                 pdu.ID // pdu.DeliverSMID or pdu.DataSMID
	srcTON, srcNPI     byte
	src                string
	dstTON, dstNPI     byte
	dst                string
	esmClass           byte
	registeredDelivery byte
	dataCoding         byte
	shortMessage       []byte            // deliver_sm only; UDH (if any) included
	tlvs               map[uint16][]byte // the first of a repeated tag wins
	badTLV             bool              // the TLV stream ended inside a TLV; the TLVs before it are kept
}

// parseInbound reads the body (the frame after its 16-byte header) of a
// deliver_sm or data_sm. It fails only when the mandatory fields do not fit
// the body; a broken TLV stream after them is tolerated (badTLV), so that a
// carrier that gets one TLV wrong still has its receipts read. It never
// panics, whatever the input.
func parseInbound(id pdu.ID, body []byte) (inboundPDU, error) {
	in := inboundPDU{id: id}
	r := fieldReader{b: body}
	r.cString() // service_type
	in.srcTON, in.srcNPI = r.byte(), r.byte()
	in.src = string(r.cString())
	in.dstTON, in.dstNPI = r.byte(), r.byte()
	in.dst = string(r.cString())
	in.esmClass = r.byte()
	switch id {
	case pdu.DeliverSMID:
		r.byte()    // protocol_id
		r.byte()    // priority_flag
		r.cString() // schedule_delivery_time
		r.cString() // validity_period
		in.registeredDelivery = r.byte()
		r.byte() // replace_if_present_flag
		in.dataCoding = r.byte()
		r.byte() // sm_default_msg_id
		n := int(r.byte())
		in.shortMessage = r.bytes(n)
	case pdu.DataSMID:
		in.registeredDelivery = r.byte()
		in.dataCoding = r.byte()
	default:
		return inboundPDU{}, fmt.Errorf("smpp: parse inbound: command %#08x is neither deliver_sm nor data_sm", uint32(id))
	}
	if r.short {
		return inboundPDU{}, errTruncated
	}
	in.tlvs, in.badTLV = parseTLVs(r.b[r.off:])
	return in, nil
}

// parseTLVs reads tag-length-value triples to the end of b. A TLV whose
// length runs past the end stops the read and sets broken.
func parseTLVs(b []byte) (m map[uint16][]byte, broken bool) {
	for len(b) > 0 {
		if len(b) < 4 {
			return m, true
		}
		tag, n := binary.BigEndian.Uint16(b[0:2]), int(binary.BigEndian.Uint16(b[2:4]))
		if 4+n > len(b) {
			return m, true
		}
		if m == nil {
			m = make(map[uint16][]byte, 4)
		}
		if _, dup := m[tag]; !dup {
			m[tag] = b[4 : 4+n]
		}
		b = b[4+n:]
	}
	return m, false
}

// text is the user data: short_message, or message_payload when
// short_message is empty (always so for data_sm).
func (in *inboundPDU) text() []byte {
	if len(in.shortMessage) > 0 {
		return in.shortMessage
	}
	return in.tlvs[uint16(tagMessagePayload)]
}

// fieldReader reads mandatory fields; past the end it returns zero values
// and sets short.
type fieldReader struct {
	b     []byte
	off   int
	short bool
}

func (r *fieldReader) byte() byte {
	if r.off >= len(r.b) {
		r.short = true
		return 0
	}
	c := r.b[r.off]
	r.off++
	return c
}

// cString returns the bytes up to the next NUL and moves past the NUL.
func (r *fieldReader) cString() []byte {
	if r.off >= len(r.b) {
		r.short = true
		return nil
	}
	i := bytes.IndexByte(r.b[r.off:], 0)
	if i < 0 {
		r.short = true
		r.off = len(r.b)
		return nil
	}
	s := r.b[r.off : r.off+i]
	r.off += i + 1
	return s
}

func (r *fieldReader) bytes(n int) []byte {
	if r.off+n > len(r.b) {
		r.short = true
		r.off = len(r.b)
		return nil
	}
	s := r.b[r.off : r.off+n]
	r.off += n
	return s
}

// splitUDH separates a user data header (its length octet first) from the
// text that follows it. ok is false, and sm comes back whole as the text,
// unless the information elements exactly fill the header's stated length:
// a carrier that sets the UDHI bit over a plain text ("id:…" starts with
// 0x69) is not read as having a 105-byte header.
func splitUDH(sm []byte) (udh, text []byte, ok bool) {
	if len(sm) < 3 { // length octet plus one element of at least two octets
		return nil, sm, false
	}
	n := int(sm[0])
	if n < 2 || 1+n > len(sm) {
		return nil, sm, false
	}
	h := sm[1 : 1+n]
	for len(h) > 0 {
		if len(h) < 2 || 2+int(h[1]) > len(h) {
			return nil, sm, false
		}
		h = h[2+int(h[1]):]
	}
	return sm[:1+n], sm[1+n:], true
}

// encodeResp encodes a deliver_sm_resp or data_sm_resp: the header and an
// empty message_id (SMPP 3.4 §4.6.2, §4.7.2).
func encodeResp(id pdu.ID, status, seq uint32) []byte {
	b := make([]byte, pdu.HeaderLen+1)
	binary.BigEndian.PutUint32(b[0:4], uint32(len(b)))
	binary.BigEndian.PutUint32(b[4:8], uint32(id))
	binary.BigEndian.PutUint32(b[8:12], status)
	binary.BigEndian.PutUint32(b[12:16], seq)
	return b
}
