package smsc

import (
	"encoding/binary"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/fiorix/go-smpp/smpp/pdu"
	"github.com/fiorix/go-smpp/smpp/pdu/pdufield"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutext"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutlv"
)

// smscSystemID is the system_id the simulator gives in bind responses.
const smscSystemID = "otpgate-smsc"

const respBit = 0x80000000

// Command ids (SMPP 3.4 §5.1.2.1).
const (
	idGenericNack       = uint32(pdu.GenericNACKID)
	idBindReceiver      = uint32(pdu.BindReceiverID)
	idBindTransmitter   = uint32(pdu.BindTransmitterID)
	idBindTransceiver   = uint32(pdu.BindTransceiverID)
	idSubmitSM          = uint32(pdu.SubmitSMID)
	idSubmitSMResp      = uint32(pdu.SubmitSMRespID)
	idDeliverSM         = uint32(pdu.DeliverSMID)
	idDeliverSMResp     = uint32(pdu.DeliverSMRespID)
	idUnbind            = uint32(pdu.UnbindID)
	idUnbindResp        = uint32(pdu.UnbindRespID)
	idEnquireLink       = uint32(pdu.EnquireLinkID)
	idEnquireLinkResp   = uint32(pdu.EnquireLinkRespID)
	idAlertNotification = uint32(pdu.AlertNotificationID)
	idDataSM            = uint32(pdu.DataSMID)
	idDataSMResp        = uint32(pdu.DataSMRespID)
)

// Command statuses (SMPP 3.4 §5.1.3).
const (
	statusInvCmdLen = 0x02 // ESME_RINVCMDLEN
	statusInvCmdID  = 0x03 // ESME_RINVCMDID
	statusInvBndSts = 0x04 // ESME_RINVBNDSTS
	statusAlyBnd    = 0x05 // ESME_RALYBND
	statusInvDstAdr = 0x0B // ESME_RINVDSTADR
	statusBindFail  = 0x0D // ESME_RBINDFAIL
	statusInvPaswd  = 0x0E // ESME_RINVPASWD
	statusInvSysID  = 0x0F // ESME_RINVSYSID
	statusThrottled = 0x58 // ESME_RTHROTTLED
	statusInvSrcTON = 0x48 // ESME_RINVSRCTON
	statusInvSrcNPI = 0x49 // ESME_RINVSRCNPI
	statusInvDstTON = 0x50 // ESME_RINVDSTTON
	statusInvDstNPI = 0x51 // ESME_RINVDSTNPI
	statusInvExpiry = 0x62 // ESME_RINVEXPIRY
)

// TLV tags read or written by the simulator.
const (
	tagReceiptedMessageID = uint16(pdutlv.TagReceiptedMessageID)
	tagMessageState       = uint16(pdutlv.TagMessageStateOption)
	tagMessagePayload     = pdutlv.TagMessagePayload
	tagSarMsgRefNum       = pdutlv.TagSarMsgRefNum
	tagSarTotalSegments   = pdutlv.TagSarTotalSegments
	tagSarSegmentSeqnum   = pdutlv.TagSarSegmentSeqnum
)

// known reports whether id is an SMPP 3.4 command id (request or response).
func known(id uint32) bool {
	if id == idAlertNotification || id == idGenericNack {
		return true
	}
	return pdu.ID(id).String() != ""
}

// encodeHeaderOnly encodes a PDU with an empty body.
func encodeHeaderOnly(id, status, seq uint32) []byte {
	return appendHeader(make([]byte, 0, pdu.HeaderLen), id, status, seq)
}

// encodeResp encodes a response whose body is one C-octet string (system_id
// or message_id).
func encodeResp(id, status, seq uint32, s []byte) []byte {
	b := appendHeader(make([]byte, 0, pdu.HeaderLen+len(s)+1), id, status, seq)
	b = appendCString(b, s)
	return finish(b)
}

// appendHeader appends a header whose length finish fills in; for a body-less
// PDU it is already right.
func appendHeader(b []byte, id, status, seq uint32) []byte {
	b = binary.BigEndian.AppendUint32(b, pdu.HeaderLen)
	b = binary.BigEndian.AppendUint32(b, id)
	b = binary.BigEndian.AppendUint32(b, status)
	return binary.BigEndian.AppendUint32(b, seq)
}

// finish writes the command_length of the PDU that b holds.
func finish(b []byte) []byte {
	binary.BigEndian.PutUint32(b[0:4], uint32(len(b)))
	return b
}

// appendCString appends s up to its first NUL, then a NUL.
func appendCString(b, s []byte) []byte {
	if i := strings.IndexByte(string(s), 0); i >= 0 {
		s = s[:i]
	}
	return append(append(b, s...), 0)
}

func appendTLV(b []byte, tag uint16, v []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, tag)
	b = binary.BigEndian.AppendUint16(b, uint16(len(v)))
	return append(b, v...)
}

func fieldString(f pdufield.Map, k pdufield.Name) string {
	if v := f[k]; v != nil {
		return v.String()
	}
	return ""
}

func fieldByte(f pdufield.Map, k pdufield.Name) uint8 {
	if v := f[k]; v != nil {
		if b := v.Bytes(); len(b) > 0 {
			return b[0]
		}
	}
	return 0
}

// parseSubmit reads a decoded submit_sm into a Message (no ID, SystemID or
// At yet), reading data_coding 0 as dcs0 (see Options.DCS0Charset).
func parseSubmit(p pdu.Body, dcs0 string) Message {
	f := p.Fields()
	m := Message{
		Src:                fieldString(f, pdufield.SourceAddr),
		Dst:                fieldString(f, pdufield.DestinationAddr),
		SrcTON:             fieldByte(f, pdufield.SourceAddrTON),
		SrcNPI:             fieldByte(f, pdufield.SourceAddrNPI),
		DstTON:             fieldByte(f, pdufield.DestAddrTON),
		DstNPI:             fieldByte(f, pdufield.DestAddrNPI),
		ESMClass:           fieldByte(f, pdufield.ESMClass),
		RegisteredDelivery: fieldByte(f, pdufield.RegisteredDelivery),
		DataCoding:         fieldByte(f, pdufield.DataCoding),
		ServiceType:        fieldString(f, pdufield.ServiceType),
		ValidityPeriod:     fieldString(f, pdufield.ValidityPeriod),
	}
	var sm []byte
	if v := f[pdufield.ShortMessage]; v != nil {
		sm = v.Bytes()
	}
	tlv := p.TLVFields()
	if len(tlv) > 0 {
		m.TLVs = make(map[uint16][]byte, len(tlv))
		for tag, v := range tlv {
			m.TLVs[uint16(tag)] = append([]byte{}, v.Bytes()...)
		}
	}
	if len(sm) == 0 {
		if v := tlv[tagMessagePayload]; v != nil {
			sm = v.Bytes()
		}
	}
	if m.ESMClass&0x40 != 0 {
		sm, m.Ref, m.Part, m.Parts = stripUDH(sm)
	} else if ref, total, seq := tlv[tagSarMsgRefNum], tlv[tagSarTotalSegments], tlv[tagSarSegmentSeqnum]; ref != nil && total != nil && seq != nil {
		m.Ref, m.Parts, m.Part = beInt(ref.Bytes()), beInt(total.Bytes()), beInt(seq.Bytes())
	}
	switch {
	case m.DataCoding == 0x00 && dcs0 == "latin1":
		m.Text = decodeText(0x03, sm)
	case m.DataCoding == 0x00 && dcs0 == "ascii":
		m.Text = strings.Map(func(r rune) rune {
			if r > 0x7F {
				return utf8.RuneError
			}
			return r
		}, decodeText(0x03, sm))
	default:
		m.Text = decodeText(m.DataCoding, sm)
	}
	return m
}

func beInt(b []byte) int {
	n := 0
	for _, c := range b[:min(len(b), 4)] {
		n = n<<8 | int(c)
	}
	return n
}

// stripUDH removes the user data header at the start of sm and returns the
// concatenation reference, part and total from an IEI 0x00 (8-bit reference)
// or 0x08 (16-bit reference) element, 0 when there is none. A header longer
// than sm leaves an empty text.
func stripUDH(sm []byte) (text []byte, ref, part, parts int) {
	if len(sm) == 0 {
		return sm, 0, 0, 0
	}
	n := int(sm[0])
	if 1+n > len(sm) {
		return nil, 0, 0, 0
	}
	udh := sm[1 : 1+n]
	for len(udh) >= 2 {
		iei, l := udh[0], int(udh[1])
		if 2+l > len(udh) {
			break
		}
		v := udh[2 : 2+l]
		switch {
		case iei == 0x00 && l == 3:
			ref, parts, part = int(v[0]), int(v[1]), int(v[2])
		case iei == 0x08 && l == 4:
			ref, parts, part = int(v[0])<<8|int(v[1]), int(v[2]), int(v[3])
		}
		udh = udh[2+l:]
	}
	return sm[1+n:], ref, part, parts
}

// decodeText decodes a short_message by its data_coding: GSM 03.38 unpacked
// (0 and the GSM7 message-class codings), IA5 (1), Latin-1 (3), ISO-8859-5
// (6), UCS2 (8, UTF-16BE); anything else is taken as UTF-8 with invalid
// sequences replaced.
func decodeText(dc uint8, b []byte) string {
	switch {
	case dc == 0x00 || dc&0xF4 == 0xF0:
		return strings.ToValidUTF8(string(pdutext.GSM7(b).Decode()), "\uFFFD")
	case dc == 0x03:
		r := make([]rune, len(b))
		for i, c := range b {
			r[i] = rune(c)
		}
		return string(r)
	case dc == 0x06:
		return strings.ToValidUTF8(string(pdutext.ISO88595(b).Decode()), "\uFFFD")
	case dc == 0x08:
		u := make([]uint16, len(b)/2)
		for i := range u {
			u[i] = binary.BigEndian.Uint16(b[2*i:])
		}
		return string(utf16.Decode(u))
	}
	if utf8.Valid(b) {
		return string(b)
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}
