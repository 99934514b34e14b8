package smpp

// PDU framing: reading one whole PDU off a stream, its header fields, and
// encoding go-smpp's PDU bodies. The session layer (session.go) and the
// inbound parser (inbound_pdu.go) build on these.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/fiorix/go-smpp/smpp/pdu"
)

// readFrame reads one PDU. It fails only on I/O errors and on a
// command_length below 16 or above 64 KiB, after which the stream cannot
// be resynchronised.
func readFrame(r io.Reader) ([]byte, error) {
	var h [pdu.HeaderLen]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(h[0:4])
	if n < pdu.HeaderLen || n > maxPDULen {
		return nil, fmt.Errorf("%w: %d", errBadLength, n)
	}
	frame := make([]byte, n)
	copy(frame, h[:])
	if _, err := io.ReadFull(r, frame[pdu.HeaderLen:]); err != nil {
		return nil, err
	}
	return frame, nil
}

// header returns the command id, command_status and sequence number of a
// whole PDU (at least pdu.HeaderLen bytes, as readFrame guarantees).
func header(frame []byte) (id pdu.ID, status, seq uint32) {
	return pdu.ID(binary.BigEndian.Uint32(frame[4:8])),
		binary.BigEndian.Uint32(frame[8:12]),
		binary.BigEndian.Uint32(frame[12:16])
}

// cString returns the C-string at the start of b (the message_id of a
// submit_sm_resp), without its NUL.
func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// withSeq sets p's sequence number and command_status.
func withSeq(p pdu.Body, seq, status uint32) pdu.Body {
	p.Header().Seq = seq
	p.Header().Status = pdu.Status(status)
	return p
}

// encodePDU serialises p, header included.
func encodePDU(p pdu.Body) ([]byte, error) {
	var b bytes.Buffer
	if err := p.SerializeTo(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
