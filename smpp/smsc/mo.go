package smsc

import (
	"errors"
	"fmt"

	"github.com/fiorix/go-smpp/smpp/encoding"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutext"
)

// MO is a mobile-originated message for SendMO: a handset writing to one
// of the client's senders.
type MO struct {
	// SystemID is the system_id whose session gets the MO; "" means
	// Options.SystemID, or any session when that is empty too.
	SystemID string
	// Src is the handset's number, Dst the sender it wrote to.
	Src, Dst                       string
	SrcTON, SrcNPI, DstTON, DstNPI uint8
	// Text is encoded by DataCoding: 0 GSM 03.38 unpacked (every
	// character must be in it), 3 Latin-1, 8 UCS2; any other value sends
	// the text's UTF-8 bytes.
	Text       string
	DataCoding uint8
	// UDH, when set, is put before the text with the UDHI bit (esm_class
	// 0x40), as a handset's concatenated message would have it.
	UDH []byte
	// DataSM sends the MO as a data_sm, the text in message_payload;
	// otherwise a deliver_sm whose short_message holds it (message_payload
	// when longer than 254 bytes).
	DataSM bool
}

// Response is a deliver_sm_resp or data_sm_resp a client sent.
type Response struct {
	Command  string // "deliver_sm_resp" or "data_sm_resp"
	Status   uint32 // command_status: 0, or e.g. 0x64 ESME_RX_T_APPN
	Seq      uint32
	SystemID string // of the session that answered
	// MO is true for the answer to an MO of SendMO; false for a receipt's
	// (MessageID and State say which) or for a PDU of SendRaw.
	MO        bool
	MessageID string // the receipt's message id as submit_sm_resp gave it
	State     string // the receipt's stat: word
}

// SendMO encodes mo and delivers it like a receipt: on a bound session of
// its system_id that can receive, or queued until one binds. A non-zero
// answer sends it again after ReceiptRetry, up to three sends in all
// (Responses and Stats record each answer). It fails when the text cannot
// be encoded or the Server is closed.
func (s *Server) SendMO(mo MO) error {
	if mo.SystemID == "" {
		mo.SystemID = s.cfg.SystemID
	}
	if mo.DataCoding == 0 && len(encoding.ValidateGSM7String(mo.Text)) > 0 {
		return errors.New("smsc: send mo: text not in GSM 03.38: use data_coding 8")
	}
	mo.UDH = append([]byte(nil), mo.UDH...)
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return fmt.Errorf("smsc: send mo: %w", ErrClosed)
	}
	s.deliver(&receipt{mo: &mo})
	return nil
}

// Responses returns the deliver_sm_resp and data_sm_resp received (the
// newest Options.KeepMessages), in order of arrival.
func (s *Server) Responses() []Response {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Response(nil), s.resps...)
}

// encodeMO encodes mo by hand as a deliver_sm or data_sm.
func encodeMO(mo *MO, seq uint32) []byte {
	var text []byte
	switch mo.DataCoding {
	case 0x00:
		text = pdutext.GSM7(mo.Text).Encode()
	case 0x03:
		text = pdutext.Latin1(mo.Text).Encode()
	case 0x08:
		text = pdutext.UCS2(mo.Text).Encode()
	default:
		text = []byte(mo.Text)
	}
	esm := byte(0)
	if len(mo.UDH) > 0 {
		esm = 0x40
		text = append(append([]byte(nil), mo.UDH...), text...)
	}
	cmd := idDeliverSM
	if mo.DataSM {
		cmd = idDataSM
	}
	b := appendHeader(make([]byte, 0, 64+len(text)), cmd, 0, seq)
	b = append(b, 0) // service_type
	b = append(b, mo.SrcTON, mo.SrcNPI)
	b = appendCString(b, []byte(mo.Src))
	b = append(b, mo.DstTON, mo.DstNPI)
	b = appendCString(b, []byte(mo.Dst))
	if cmd == idDataSM {
		b = append(b, esm, 0, mo.DataCoding) // esm_class, registered_delivery, data_coding
		return finish(appendTLV(b, uint16(tagMessagePayload), text))
	}
	sm := text
	if len(sm) > 254 {
		sm = nil
	}
	b = append(b,
		esm,
		0, // protocol_id
		0, // priority_flag
		0, // schedule_delivery_time
		0, // validity_period
		0, // registered_delivery
		0, // replace_if_present_flag
		mo.DataCoding,
		0, // sm_default_msg_id
		byte(len(sm)),
	)
	b = append(b, sm...)
	if sm == nil {
		b = appendTLV(b, uint16(tagMessagePayload), text)
	}
	return finish(b)
}
