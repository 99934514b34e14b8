package smsc_test

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/fiorix/go-smpp/smpp/pdu"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutext"

	"github.com/otpgate/otpgate/smpp/smsc"
)

// rawPDU is a deliver_sm or data_sm read by hand (go-smpp's decoder reads
// neither data_sm nor a UDHI text right).
type rawPDU struct {
	id, seq  uint32
	src, dst string
	esm, dc  byte
	sm       []byte
	tlvs     map[uint16][]byte
}

func (c *client) readInbound() rawPDU {
	c.tb.Helper()
	id, _, seq, body := c.readRaw()
	p := rawPDU{id: id, seq: seq, tlvs: map[uint16][]byte{}}
	cstr := func() string {
		i := bytes.IndexByte(body, 0)
		s := string(body[:i])
		body = body[i+1:]
		return s
	}
	cstr() // service_type
	body = body[2:]
	p.src = cstr()
	body = body[2:]
	p.dst = cstr()
	p.esm = body[0]
	if id == uint32(pdu.DataSMID) {
		p.dc = body[2]
		body = body[3:]
	} else {
		body = body[3:] // esm_class, protocol_id, priority_flag
		cstr()
		cstr()
		p.dc = body[2]
		n := int(body[4])
		p.sm = body[5 : 5+n]
		body = body[5+n:]
	}
	for len(body) >= 4 {
		n := int(binary.BigEndian.Uint16(body[2:4]))
		p.tlvs[binary.BigEndian.Uint16(body[0:2])] = body[4 : 4+n]
		body = body[4+n:]
	}
	return p
}

func (c *client) respond(p rawPDU, status uint32) {
	c.tb.Helper()
	b := make([]byte, 17)
	binary.BigEndian.PutUint32(b[0:], 17)
	binary.BigEndian.PutUint32(b[4:], p.id|0x80000000)
	binary.BigEndian.PutUint32(b[8:], status)
	binary.BigEndian.PutUint32(b[12:], p.seq)
	c.sendRaw(b)
}

func TestServer_ReceiptShapes(t *testing.T) {
	kolkata, err := time.LoadLocation("Asia/Kolkata")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		cfg   smsc.Options
		check func(t *testing.T, p rawPDU, id string)
	}{
		{"UDHIHeader", smsc.Options{ReceiptUDHI: "header"}, func(t *testing.T, p rawPDU, id string) {
			if p.esm != 0x44 || !bytes.HasPrefix(p.sm, []byte{5, 0, 3}) || !bytes.HasPrefix(p.sm[6:], []byte("id:"+id)) {
				t.Fatalf("got esm %#x sm %q, want 0x44 and a UDH before the text", p.esm, p.sm)
			}
		}},
		{"UDHIFlag", smsc.Options{ReceiptUDHI: "flag"}, func(t *testing.T, p rawPDU, id string) {
			if p.esm != 0x44 || !bytes.HasPrefix(p.sm, []byte("id:"+id)) {
				t.Fatalf("got esm %#x sm %q, want 0x44 over the plain text", p.esm, p.sm)
			}
		}},
		{"DataSM", smsc.Options{ReceiptDataSM: true, ReceiptTLV: true}, func(t *testing.T, p rawPDU, id string) {
			if p.id != uint32(pdu.DataSMID) || p.esm != 0x04 || !bytes.HasPrefix(p.tlvs[0x0424], []byte("id:"+id)) ||
				string(p.tlvs[0x001E]) != id+"\x00" || !bytes.Equal(p.tlvs[0x0427], []byte{2}) {
				t.Fatalf("got %+v, want a data_sm with the text in message_payload and both TLVs", p)
			}
		}},
		{"NoText", smsc.Options{ReceiptNoText: true, ReceiptState: "EXPIRED"}, func(t *testing.T, p rawPDU, id string) {
			if len(p.sm) != 0 || string(p.tlvs[0x001E]) != id+"\x00" || !bytes.Equal(p.tlvs[0x0427], []byte{3}) {
				t.Fatalf("got %+v, want only the TLVs", p)
			}
		}},
		{"LongID", smsc.Options{ReceiptID: "long"}, func(t *testing.T, p rawPDU, _ string) {
			if !bytes.HasPrefix(p.sm, []byte("id:"+strings.Repeat("0", 69)+"1 ")) {
				t.Fatalf("got %q, want a 70-character id", p.sm)
			}
		}},
		{"ZoneAndShift", smsc.Options{ReceiptLocation: kolkata, ReceiptDoneShift: 3 * time.Hour}, func(t *testing.T, p rawPDU, _ string) {
			want := time.Now().Add(3 * time.Hour).In(kolkata).Format("0601021504")
			if !strings.Contains(string(p.sm), "done date:"+want[:8]) { // to the hour: the minute may turn
				t.Fatalf("got %q, want done date %s", p.sm, want)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.ReceiptDelay = time.Millisecond
			s := newServer(t, tt.cfg)
			c := bound(t, s)
			_, id := c.submit(sm{text: pdutext.GSM7("code 1234"), registered: 1})
			p := c.readInbound()
			tt.check(t, p, id)
			c.respond(p, 0)
			c.sync()
			rs := s.Responses()
			want := "deliver_sm_resp"
			if tt.cfg.ReceiptDataSM {
				want = "data_sm_resp"
			}
			if len(rs) != 1 || rs[0].Command != want || rs[0].Status != 0 || rs[0].MessageID != id || rs[0].MO {
				t.Fatalf("Responses: got %+v, want one %s for %s", rs, want, id)
			}
		})
	}
}

// TestServer_ReceiptStates: the states of a sequence go out one at a time,
// the next only once the previous one is acknowledged; a refused one is
// sent again first.
func TestServer_ReceiptStates(t *testing.T) {
	s := newServer(t, smsc.Options{ReceiptDelay: time.Millisecond, ReceiptRetry: time.Millisecond,
		ReceiptStates: []string{"enroute", "BUFFRED", "DELIVRD"}})
	c := bound(t, s)
	_, id := c.submit(sm{text: pdutext.GSM7("code 1234"), registered: 1})
	for i, want := range []struct {
		stat   string
		status uint32
	}{{"ENROUTE", 0x64}, {"ENROUTE", 0}, {"BUFFRED", 0}, {"DELIVRD", 0}} {
		p := c.readInbound()
		if !strings.Contains(string(p.sm), "id:"+id+" ") || !strings.Contains(string(p.sm), " stat:"+want.stat+" ") {
			t.Fatalf("receipt %d: got %q, want stat %s", i, p.sm, want.stat)
		}
		c.respond(p, want.status)
	}
	c.sync()
	if st := s.Stats(); st.ReceiptsSent != 4 || st.ReceiptsAcked != 3 || st.ReceiptsNacked != 1 {
		t.Fatalf("Stats: got %+v", st)
	}
	rs := s.Responses()
	if len(rs) != 4 || rs[0].Status != 0x64 || rs[0].State != "ENROUTE" || rs[3].State != "DELIVRD" {
		t.Fatalf("Responses: got %+v", rs)
	}
}

func TestServer_SendMO(t *testing.T) {
	tests := []struct {
		name string
		mo   smsc.MO
		id   pdu.ID
		esm  byte
		dc   byte
		data []byte // short_message, or message_payload
	}{
		{"GSM7", smsc.MO{Src: "919800000001", SrcTON: 1, Dst: "OTPGATE", Text: "hi €"}, pdu.DeliverSMID, 0, 0, []byte("hi \x1b\x65")},
		{"UCS2", smsc.MO{Src: "919800000001", Dst: "OTPGATE", Text: "Код", DataCoding: 8}, pdu.DeliverSMID, 0, 8, []byte{4, 0x1a, 4, 0x3e, 4, 0x34}},
		{"UDH", smsc.MO{Src: "1", Dst: "2", Text: "a", UDH: []byte{5, 0, 3, 1, 2, 1}}, pdu.DeliverSMID, 0x40, 0, []byte{5, 0, 3, 1, 2, 1, 'a'}},
		{"DataSM", smsc.MO{Src: "1", Dst: "2", Text: "é", DataCoding: 3, DataSM: true}, pdu.DataSMID, 0, 3, []byte{0xe9}},
		{"LongInPayload", smsc.MO{Src: "1", Dst: "2", Text: strings.Repeat("x", 300)}, pdu.DeliverSMID, 0, 0, []byte(strings.Repeat("x", 300))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, smsc.Options{})
			c := bound(t, s)
			if err := s.SendMO(tt.mo); err != nil {
				t.Fatal(err)
			}
			p := c.readInbound()
			data := p.sm
			if len(data) == 0 {
				data = p.tlvs[0x0424]
			}
			if p.id != uint32(tt.id) || p.esm != tt.esm || p.dc != tt.dc || !bytes.Equal(data, tt.data) ||
				p.src != tt.mo.Src || p.dst != tt.mo.Dst {
				t.Fatalf("got %+v, want command %#x esm %#x dc %d data %q", p, uint32(tt.id), tt.esm, tt.dc, tt.data)
			}
			c.respond(p, 0)
			c.sync()
			if rs := s.Responses(); len(rs) != 1 || !rs[0].MO || rs[0].Status != 0 {
				t.Fatalf("Responses: got %+v", rs)
			}
			if st := s.Stats(); st.MOSent != 1 || st.MOAcked != 1 || st.ReceiptsSent != 0 {
				t.Fatalf("Stats: got %+v", st)
			}
		})
	}
	s := newServer(t, smsc.Options{})
	if err := s.SendMO(smsc.MO{Text: "Код"}); err == nil {
		t.Fatal("GSM7 MO with Cyrillic: got nil error")
	}
}
