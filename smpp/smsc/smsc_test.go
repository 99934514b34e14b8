package smsc_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/internal/syncbuf"

	"github.com/fiorix/go-smpp/smpp/pdu"
	"github.com/fiorix/go-smpp/smpp/pdu/pdufield"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutext"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutlv"

	"github.com/otpgate/otpgate/smpp/smsc"
)

func TestServer_SubmitAndReceipt(t *testing.T) {
	var logs syncbuf.Buffer
	s := newServer(t, smsc.Options{
		ReceiptDelay: time.Millisecond,
		ReceiptTLV:   true,
		Logger:       slog.New(slog.NewJSONHandler(&logs, nil)),
	})
	c := bound(t, s)
	if got := s.Bound(); got != 1 {
		t.Errorf("Bound: got %d, want 1", got)
	}

	st, id := c.submit(sm{dst: "919800000001", text: pdutext.GSM7("Your code is 123456 @£"), registered: 1})
	if st != 0 || id != "0000000001" {
		t.Fatalf("submit: got status %#x id %q, want 0 and 0000000001", st, id)
	}
	p := c.read()
	if p.Header().ID != pdu.DeliverSMID {
		t.Fatalf("got %v, want DeliverSM", p.Header().ID)
	}
	f := p.Fields()
	if got := f[pdufield.ESMClass].Bytes()[0]; got != 0x04 {
		t.Errorf("esm_class: got %#x, want 0x04", got)
	}
	if got := f[pdufield.SourceAddr].String(); got != "919800000001" {
		t.Errorf("receipt source: got %q, want the submit's destination", got)
	}
	if got := f[pdufield.DestinationAddr].String(); got != "OTPGATE" {
		t.Errorf("receipt destination: got %q, want the submit's source", got)
	}
	text := f[pdufield.ShortMessage].String()
	for _, want := range []string{"id:0000000001 ", "sub:001 dlvrd:001 submit date:", " stat:DELIVRD err:000 text:Your code is 123456"} {
		if !strings.Contains(text, want) {
			t.Errorf("receipt text %q lacks %q", text, want)
		}
	}
	tlv := p.TLVFields()
	if v := tlv[pdutlv.TagReceiptedMessageID]; v == nil || v.String() != id {
		t.Errorf("receipted_message_id: got %v, want %q", v, id)
	}
	if v := tlv[pdutlv.TagMessageStateOption]; v == nil || len(v.Bytes()) != 1 || v.Bytes()[0] != 2 {
		t.Errorf("message_state: got %v, want [2]", v)
	}
	c.send(pdu.NewDeliverSMRespSeq(p.Header().Seq))
	c.sync()

	st2 := s.Stats()
	if st2.ReceiptsSent != 1 || st2.ReceiptsAcked != 1 || st2.Accepted != 1 || st2.Submits != 1 || st2.Binds != 1 {
		t.Errorf("Stats: got %+v", st2)
	}
	ms := s.Messages()
	want := smsc.Message{ID: id, Src: "OTPGATE", Dst: "919800000001", SrcTON: 5, DstTON: 1, DstNPI: 1,
		RegisteredDelivery: 1, Text: "Your code is 123456 @£", SystemID: "sys"}
	if len(ms) != 1 {
		t.Fatalf("Messages: got %d, want 1", len(ms))
	}
	ms[0].At = time.Time{}
	if !reflect.DeepEqual(ms[0], want) {
		t.Errorf("Messages[0]: got %+v, want %+v", ms[0], want)
	}
	if !strings.Contains(logs.String(), `"msg":"sms received"`) {
		t.Fatalf("no sms received log line in %s", logs.String())
	}
	for line := range strings.Lines(logs.String()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec["msg"] != "sms received" {
			continue
		}
		if rec["text"] != want.Text || rec["message_id"] != id || rec["system_id"] != "sys" || rec["dst"] != want.Dst {
			t.Errorf("sms received log: got %v", rec)
		}
	}
}

func TestServer_Encodings(t *testing.T) {
	s := newServer(t, smsc.Options{ReceiptDelay: -1})
	c := bound(t, s)
	tests := []struct {
		name string
		m    sm
		want smsc.Message
	}{
		{"UCS2", sm{text: pdutext.UCS2("Код 123456 😀")}, smsc.Message{Text: "Код 123456 😀", DataCoding: 8}},
		{"Latin1", sm{raw: []byte{'c', 0xE9, ' ', '1'}, dc: 3}, smsc.Message{Text: "cé 1", DataCoding: 3}},
		{"UDH8", sm{raw: append([]byte{5, 0, 3, 0x2A, 2, 1}, "Hello "...), esm: 0x40},
			smsc.Message{Text: "Hello ", ESMClass: 0x40, Ref: 0x2A, Part: 1, Parts: 2}},
		{"UDH8Part2", sm{raw: append([]byte{5, 0, 3, 0x2A, 2, 2}, "world"...), esm: 0x40},
			smsc.Message{Text: "world", ESMClass: 0x40, Ref: 0x2A, Part: 2, Parts: 2}},
		{"UDH16UCS2", sm{raw: []byte{6, 8, 4, 0x12, 0x34, 3, 3, 0x04, 0x1A}, dc: 8, esm: 0x40},
			smsc.Message{Text: "К", DataCoding: 8, ESMClass: 0x40, Ref: 0x1234, Part: 3, Parts: 3}},
		{"UDHTooLong", sm{raw: []byte{9, 0, 3}, esm: 0x40}, smsc.Message{ESMClass: 0x40}},
	}
	ids := map[string]bool{}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, id := c.submit(tt.m)
			if st != 0 {
				t.Fatalf("status: got %#x, want 0", st)
			}
			if ids[id] {
				t.Errorf("message id %q reused", id)
			}
			ids[id] = true
			got := waitMessages(t, s, i+1)[i]
			if got.ID != id {
				t.Errorf("ID: got %q, want %q", got.ID, id)
			}
			got.ID, got.At, got.Src, got.Dst, got.SrcTON, got.DstTON, got.DstNPI, got.SystemID = "", time.Time{}, "", "", 0, 0, 0, ""
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestServer_RegisteredDelivery(t *testing.T) {
	t.Run("FailureOnly", func(t *testing.T) {
		s := newServer(t, smsc.Options{ReceiptDelay: time.Millisecond})
		c := bound(t, s)
		c.submit(sm{text: pdutext.GSM7("a"), registered: 2}) // DELIVRD is no failure: no receipt
		_, id := c.submit(sm{text: pdutext.GSM7("b"), registered: 1})
		p := c.read()
		if got := p.Fields()[pdufield.ShortMessage].String(); !strings.HasPrefix(got, "id:"+id+" ") {
			t.Errorf("first receipt %q, want the one for %s only", got, id)
		}
	})
	t.Run("FailureOnlyUndeliv", func(t *testing.T) {
		s := newServer(t, smsc.Options{ReceiptDelay: time.Millisecond, ReceiptState: "undeliv"})
		c := bound(t, s)
		_, id := c.submit(sm{text: pdutext.GSM7("a"), registered: 2})
		p := c.read()
		if got := p.Fields()[pdufield.ShortMessage].String(); !strings.HasPrefix(got, "id:"+id+" ") || !strings.Contains(got, "stat:UNDELIV err:001") {
			t.Errorf("receipt %q, want an UNDELIV one for %s", got, id)
		}
	})
	t.Run("Off", func(t *testing.T) {
		s := newServer(t, smsc.Options{ReceiptDelay: -1})
		c := bound(t, s)
		c.submit(sm{text: pdutext.GSM7("a"), registered: 1})
		c.sync()
		if got := s.Stats().ReceiptsSent; got != 0 {
			t.Errorf("ReceiptsSent: got %d, want 0", got)
		}
	})
}

func TestServer_Bind(t *testing.T) {
	s := newServer(t, smsc.Options{})
	tests := []struct {
		name, systemID, password string
		script                   uint32
		want                     uint32
	}{
		{"InvalidPassword", "sys", "wrong", 0, 0x0E},    // ESME_RINVPASWD
		{"InvalidSystemID", "other", "secret", 0, 0x0F}, // ESME_RINVSYSID
		{"ScriptedStatus", "sys", "secret", 0x0D, 0x0D}, // SetBindStatus: ESME_RBINDFAIL
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.SetBindStatus(tt.script)
			defer s.SetBindStatus(0)
			c := dial(t, s)
			if got := c.bind(pdu.NewBindTransmitter(), tt.systemID, tt.password); got != tt.want {
				t.Fatalf("status: got %#x, want %#x", got, tt.want)
			}
			c.expectEOF()
		})
	}
	t.Run("OK", func(t *testing.T) {
		c := dial(t, s)
		if got := c.bind(pdu.NewBindReceiver(), "sys", "secret"); got != 0 {
			t.Fatalf("status: got %#x, want 0", got)
		}
		if got := c.bind(pdu.NewBindReceiver(), "sys", "secret"); got != 0x05 {
			t.Errorf("second bind: got %#x, want 0x05 ESME_RALYBND", got)
		}
		if st, _ := c.submit(sm{text: pdutext.GSM7("x")}); st != 0x04 {
			t.Errorf("submit on a receiver: got %#x, want 0x04 ESME_RINVBNDSTS", st)
		}
	})
	if got := s.Stats(); got.BindsRejected != 3 || got.Binds != 1 {
		t.Errorf("Stats: got %+v, want 3 rejected and 1 bind", got)
	}
}

func TestServer_BeforeBind(t *testing.T) {
	s := newServer(t, smsc.Options{})
	c := dial(t, s)
	seq := c.sendSubmit(sm{text: pdutext.GSM7("x")})
	p := c.read()
	if p.Header().ID != pdu.GenericNACKID || p.Header().Status != 0x04 || p.Header().Seq != seq {
		t.Fatalf("got %v status %#x seq %d, want GenericNACK 0x04 seq %d", p.Header().ID, p.Header().Status, p.Header().Seq, seq)
	}
	if got := c.bind(pdu.NewBindTransceiver(), "sys", "secret"); got != 0 {
		t.Fatalf("bind after the nack: got %#x, want 0", got)
	}
}

func TestServer_Throttle(t *testing.T) {
	s := newServer(t, smsc.Options{ReceiptDelay: -1})
	c := bound(t, s)
	s.SetThrottle(0.001, 2) // no token comes back during the test
	var got []uint32
	for range 3 {
		st, _ := c.submit(sm{text: pdutext.GSM7("x")})
		got = append(got, st)
	}
	if want := []uint32{0, 0, 0x58}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("statuses: got %#x, want %#x", got, want)
	}
	s.SetThrottle(0, 0)
	if st, _ := c.submit(sm{text: pdutext.GSM7("x")}); st != 0 {
		t.Errorf("after throttle off: got %#x, want 0", st)
	}
	if st := s.Stats(); st.Throttled != 1 || st.Accepted != 3 || st.Submits != 4 {
		t.Errorf("Stats: got %+v", st)
	}
}

func TestServer_SetSubmitStatus(t *testing.T) {
	s := newServer(t, smsc.Options{ReceiptDelay: -1})
	c := bound(t, s)
	s.SetSubmitStatus(0x0B)
	if st, id := c.submit(sm{text: pdutext.GSM7("x")}); st != 0x0B || id != "" {
		t.Errorf("got %#x %q, want 0x0B and no id", st, id)
	}
	s.SetSubmitStatus(0)
	if st, _ := c.submit(sm{text: pdutext.GSM7("x")}); st != 0 {
		t.Errorf("after reset: got %#x, want 0", st)
	}
	if got := len(s.Messages()); got != 1 {
		t.Errorf("Messages: got %d, want only the accepted one", got)
	}
}

func TestServer_SubmitFields(t *testing.T) {
	s := newServer(t, smsc.Options{ReceiptDelay: -1})
	c := bound(t, s)
	tlvs := map[uint16][]byte{0x1400: []byte("1101234567890"), 0x1401: {0x00, 0xFF}}
	if st, _ := c.submit(sm{text: pdutext.GSM7("x"), validity: "000000000500000R", service: "OTP", tlvs: tlvs}); st != 0 {
		t.Fatalf("submit: got %#x, want 0", st)
	}
	c.submit(sm{text: pdutext.GSM7("y")})
	ms := waitMessages(t, s, 2)
	if m := ms[0]; m.ValidityPeriod != "000000000500000R" || m.ServiceType != "OTP" || !reflect.DeepEqual(m.TLVs, tlvs) {
		t.Errorf("got validity %q service %q tlvs %v, want 000000000500000R, OTP, %v", m.ValidityPeriod, m.ServiceType, m.TLVs, tlvs)
	}
	if m := ms[1]; m.ValidityPeriod != "" || m.ServiceType != "" || m.TLVs != nil {
		t.Errorf("bare submit: got validity %q service %q tlvs %v, want none", m.ValidityPeriod, m.ServiceType, m.TLVs)
	}
}

func TestServer_SetRejectValidity(t *testing.T) {
	s := newServer(t, smsc.Options{ReceiptDelay: -1})
	c := bound(t, s)
	s.SetRejectValidity(true)
	if st, id := c.submit(sm{text: pdutext.GSM7("x"), validity: "000000000500000R"}); st != 0x62 || id != "" {
		t.Errorf("with validity: got %#x %q, want 0x62 and no id", st, id)
	}
	if st, _ := c.submit(sm{text: pdutext.GSM7("x")}); st != 0 {
		t.Errorf("without validity: got %#x, want 0", st)
	}
	s.SetRejectValidity(false)
	if st, _ := c.submit(sm{text: pdutext.GSM7("x"), validity: "000000000500000R"}); st != 0 {
		t.Errorf("knob off: got %#x, want 0", st)
	}
	if st := s.Stats(); st.Rejected != 1 || st.Accepted != 2 {
		t.Errorf("Stats: got %+v, want 1 rejected, 2 accepted", st)
	}
}

func TestServer_SetSubmitPolicy(t *testing.T) {
	s := newServer(t, smsc.Options{ReceiptDelay: -1})
	c := bound(t, s)
	tests := []struct {
		name   string
		policy func(smsc.Message) uint32
		m      sm
		want   uint32
	}{
		{"DestTONWrong", smsc.RequireDest(2, 1), sm{}, 0x50}, // the client sends 1/1
		{"DestNPIWrong", smsc.RequireDest(1, 9), sm{}, 0x51},
		{"DestOK", smsc.RequireDest(1, 1), sm{}, 0},
		{"SourceTONWrong", smsc.RequireSource(1, 0), sm{}, 0x48}, // the client sends 5/0
		{"SourceNPIWrong", smsc.RequireSource(5, 1), sm{}, 0x49},
		{"SourceOK", smsc.RequireSource(1, 0), sm{srcTON: 1}, 0},
		{"Custom", func(m smsc.Message) uint32 {
			if strings.HasPrefix(m.Dst, "91") {
				return 0x0B
			}
			return 0
		}, sm{}, 0x0B},
		{"Removed", nil, sm{}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.SetSubmitPolicy(tt.policy)
			tt.m.text = pdutext.GSM7("x")
			if st, _ := c.submit(tt.m); st != tt.want {
				t.Errorf("got %#x, want %#x", st, tt.want)
			}
		})
	}
}

func TestServer_DCS0Charset(t *testing.T) {
	tests := []struct {
		charset string
		raw     []byte
		want    string
	}{
		{"", []byte{0x00, 'a', 0x04}, "@aè"},
		{"gsm7", []byte{0x00, 'a', 0x04}, "@aè"},
		{"latin1", []byte{'@', 'a', 0xE9}, "@aé"},
		{"ascii", []byte{'@', 'a', 0xE9}, "@a\uFFFD"},
	}
	for _, tt := range tests {
		t.Run("Charset"+tt.charset, func(t *testing.T) {
			s := newServer(t, smsc.Options{ReceiptDelay: -1, DCS0Charset: tt.charset})
			c := bound(t, s)
			c.submit(sm{raw: tt.raw})
			if m := waitMessages(t, s, 1)[0]; m.Text != tt.want || m.DataCoding != 0 {
				t.Errorf("got %q dc %d, want %q dc 0", m.Text, m.DataCoding, tt.want)
			}
		})
	}
}

func TestServer_SetNoAck(t *testing.T) {
	s := newServer(t, smsc.Options{ReceiptDelay: -1})
	c := bound(t, s)
	s.SetNoAck(true)
	c.sendSubmit(sm{text: pdutext.GSM7("x")})
	if other := c.sync(); len(other) != 0 {
		t.Errorf("got %d PDUs before enquire_link_resp, want none", len(other))
	}
	s.SetNoAck(false)
	if st, _ := c.submit(sm{text: pdutext.GSM7("y")}); st != 0 {
		t.Errorf("after SetNoAck(false): got %#x, want 0", st)
	}
	if st := s.Stats(); st.Swallowed != 1 || st.Accepted != 1 {
		t.Errorf("Stats: got %+v", st)
	}
}

func TestServer_SetAckDelay(t *testing.T) {
	s := newServer(t, smsc.Options{ReceiptDelay: -1})
	c := bound(t, s)
	s.SetAckDelay(20 * time.Millisecond)
	seq := c.sendSubmit(sm{text: pdutext.GSM7("x")})
	// The session keeps reading while an ack is delayed.
	c.send(pdu.NewEnquireLink())
	if p := c.read(); p.Header().ID != pdu.EnquireLinkRespID {
		t.Fatalf("got %v first, want EnquireLinkResp before the delayed ack", p.Header().ID)
	}
	if p := c.read(); p.Header().ID != pdu.SubmitSMRespID || p.Header().Seq != seq || p.Header().Status != 0 {
		t.Fatalf("got %v seq %d status %#x, want SubmitSMResp seq %d", p.Header().ID, p.Header().Seq, p.Header().Status, seq)
	}
}

func TestServer_DropConnections(t *testing.T) {
	s := newServer(t, smsc.Options{})
	c1, c2 := bound(t, s), dial(t, s)
	c2.sync()
	if got := s.DropConnections(); got != 2 {
		t.Errorf("DropConnections: got %d, want 2", got)
	}
	if got := s.Bound(); got != 0 {
		t.Errorf("Bound after DropConnections: got %d, want 0", got)
	}
	c1.expectEOF()
	c2.expectEOF()
	c3 := bound(t, s)
	if st, _ := c3.submit(sm{text: pdutext.GSM7("x")}); st != 0 {
		t.Errorf("after a drop: got %#x, want 0", st)
	}
}

func TestServer_UnknownCommand(t *testing.T) {
	s := newServer(t, smsc.Options{})
	c := bound(t, s)
	raw := []byte{0, 0, 0, 21, 0, 0, 0x09, 0x99, 0, 0, 0, 0, 0, 0, 0, 77, 1, 2, 3, 4, 5}
	c.sendRaw(raw)
	id, st, seq, _ := c.readRaw()
	if id != 0x80000000 || st != 0x03 || seq != 77 {
		t.Fatalf("got id %#x status %#x seq %d, want generic_nack 0x03 seq 77", id, st, seq)
	}
	// A request the simulator does not serve (query_sm) gets the same.
	q := pdu.NewQuerySM()
	qseq := c.send(q)
	if id, st, seq, _ := c.readRaw(); id != 0x80000000 || st != 0x03 || seq != qseq {
		t.Fatalf("query_sm: got id %#x status %#x seq %d, want generic_nack 0x03 seq %d", id, st, seq, qseq)
	}
	if st, _ := c.submit(sm{text: pdutext.GSM7("still usable")}); st != 0 {
		t.Errorf("after unknown command: got %#x, want 0", st)
	}
}

func TestServer_BadLength(t *testing.T) {
	s := newServer(t, smsc.Options{})
	for _, l := range []uint32{15, 64<<10 + 1} {
		t.Run(fmt.Sprint(l), func(t *testing.T) {
			c := bound(t, s)
			b := binary.BigEndian.AppendUint32(nil, l)
			c.sendRaw(append(b, 0, 0, 0, 0x15, 0, 0, 0, 0, 0, 0, 0, 1))
			c.expectEOF()
		})
	}
}

func TestServer_EnquireLinkAndUnbind(t *testing.T) {
	s := newServer(t, smsc.Options{EnquireLink: time.Millisecond})
	c := bound(t, s)
	p := c.read() // the simulator's own enquire_link
	if p.Header().ID != pdu.EnquireLinkID || p.Header().Seq != 1 {
		t.Fatalf("got %v seq %d, want EnquireLink seq 1", p.Header().ID, p.Header().Seq)
	}
	c.send(pdu.NewEnquireLinkRespSeq(p.Header().Seq))
	seq := c.send(pdu.NewUnbind())
	for {
		p := c.read()
		if p.Header().ID == pdu.EnquireLinkID {
			continue
		}
		if p.Header().ID != pdu.UnbindRespID || p.Header().Seq != seq {
			t.Fatalf("got %v seq %d, want UnbindResp seq %d", p.Header().ID, p.Header().Seq, seq)
		}
		break
	}
	c.expectEOF()
	if got := s.Bound(); got != 0 {
		t.Errorf("Bound after unbind: got %d, want 0", got)
	}
	if st := s.Stats(); st.Unbinds != 1 {
		t.Errorf("Unbinds: got %d, want 1", st.Unbinds)
	}
}

func TestServer_ReceiptIDFormats(t *testing.T) {
	tests := []struct {
		idFormat, receiptID string
		wantAck, wantDLR    string
	}{
		{"hex", "same", "00000000FF", "00000000FF"},
		{"hex", "decimal", "00000000FF", "255"},
		{"decimal", "hex", "255", "FF"},
		{"decimal", "same", "255", "255"},
	}
	for _, tt := range tests {
		t.Run(tt.idFormat+"/"+tt.receiptID, func(t *testing.T) {
			s := newServer(t, smsc.Options{FirstID: 255, IDFormat: tt.idFormat, ReceiptID: tt.receiptID,
				ReceiptTLV: true, ReceiptState: "UNDELIV", ReceiptDelay: time.Millisecond})
			c := bound(t, s)
			if _, id := c.submit(sm{text: pdutext.GSM7("x"), registered: 1}); id != tt.wantAck {
				t.Errorf("ack id: got %q, want %q", id, tt.wantAck)
			}
			p := c.read()
			text := p.Fields()[pdufield.ShortMessage].String()
			if !strings.HasPrefix(text, "id:"+tt.wantDLR+" ") || !strings.Contains(text, "stat:UNDELIV") {
				t.Errorf("receipt text %q, want id:%s and stat:UNDELIV", text, tt.wantDLR)
			}
			if v := p.TLVFields()[pdutlv.TagReceiptedMessageID]; v == nil || v.String() != tt.wantDLR {
				t.Errorf("receipted_message_id: got %v, want %q", v, tt.wantDLR)
			}
			if v := p.TLVFields()[pdutlv.TagMessageStateOption]; v == nil || v.Bytes()[0] != 5 {
				t.Errorf("message_state: got %v, want 5", v)
			}
		})
	}
}

func TestServer_ReceiptQueuedUntilBind(t *testing.T) {
	s := newServer(t, smsc.Options{ReceiptDelay: time.Millisecond})
	tx := dial(t, s)
	if st := tx.bind(pdu.NewBindTransmitter(), "sys", "secret"); st != 0 {
		t.Fatalf("bind: %#x", st)
	}
	_, id := tx.submit(sm{text: pdutext.GSM7("x"), registered: 1})
	rx := dial(t, s)
	if st := rx.bind(pdu.NewBindReceiver(), "sys", "secret"); st != 0 {
		t.Fatalf("bind: %#x", st)
	}
	p := rx.read()
	if p.Header().ID != pdu.DeliverSMID || !strings.HasPrefix(p.Fields()[pdufield.ShortMessage].String(), "id:"+id) {
		t.Fatalf("got %v %q, want the receipt for %s", p.Header().ID, p.Fields()[pdufield.ShortMessage], id)
	}
}

func TestServer_ReceiptResentAfterNack(t *testing.T) {
	s := newServer(t, smsc.Options{ReceiptDelay: time.Millisecond, ReceiptRetry: time.Millisecond})
	c := bound(t, s)
	_, id := c.submit(sm{text: pdutext.GSM7("x"), registered: 1})
	for try := 1; try <= 2; try++ {
		p := c.read()
		if p.Header().ID != pdu.DeliverSMID || !strings.HasPrefix(p.Fields()[pdufield.ShortMessage].String(), "id:"+id) {
			t.Fatalf("try %d: got %v, want the receipt for %s", try, p.Header().ID, id)
		}
		r := pdu.NewDeliverSMRespSeq(p.Header().Seq)
		if try == 1 {
			r.Header().Status = 0x08
		}
		c.send(r)
	}
	c.sync()
	if st := s.Stats(); st.ReceiptsSent != 2 || st.ReceiptsNacked != 1 || st.ReceiptsAcked != 1 {
		t.Errorf("Stats: got %+v", st)
	}
}

// TestServer_ReceiptFirst: the receipt comes at once, before the
// submit_sm_resp, which waits for the client's first answer to it (a
// refusal too); without a session to carry the receipt the response is
// not held.
func TestServer_ReceiptFirst(t *testing.T) {
	s := newServer(t, smsc.Options{ReceiptFirst: true, ReceiptDelay: time.Hour, ReceiptRetry: time.Hour})
	c := bound(t, s)
	seq := c.sendSubmit(sm{text: pdutext.GSM7("code 123456"), registered: 1})
	p := c.read()
	if p.Header().ID != pdu.DeliverSMID || !strings.HasPrefix(p.Fields()[pdufield.ShortMessage].String(), "id:0000000001 ") {
		t.Fatalf("got %v %q, want the receipt of 0000000001 first", p.Header().ID, p.Fields()[pdufield.ShortMessage])
	}
	for _, o := range c.sync() {
		t.Fatalf("got %v before the receipt was answered, want nothing", o.Header().ID)
	}
	nack := pdu.NewDeliverSMRespSeq(p.Header().Seq)
	nack.Header().Status = 0x08
	c.send(nack)
	r := c.read()
	if r.Header().ID != pdu.SubmitSMRespID || r.Header().Seq != seq || r.Fields()[pdufield.MessageID].String() != "0000000001" {
		t.Fatalf("got %v seq %d, want the submit_sm_resp of seq %d with id 0000000001", r.Header().ID, r.Header().Seq, seq)
	}
	if st := s.Stats(); st.Accepted != 1 || st.ReceiptsSent != 1 || st.ReceiptsNacked != 1 {
		t.Errorf("Stats: got %+v", st)
	}

	tx := dial(t, s) // a transmitter: no session of sys can take a receipt now but c
	c.send(pdu.NewUnbind())
	if p := c.read(); p.Header().ID != pdu.UnbindRespID {
		t.Fatalf("got %v, want UnbindResp", p.Header().ID)
	}
	c.expectEOF()
	if st := tx.bind(pdu.NewBindTransmitter(), "sys", "secret"); st != 0 {
		t.Fatalf("bind: %#x", st)
	}
	if st, id := tx.submit(sm{text: pdutext.GSM7("x"), registered: 1}); st != 0 || id != "0000000002" {
		t.Fatalf("submit through a transmitter: got %#x %q, want its response at once", st, id)
	}
}

func TestServer_ReceiptRequeuedAfterDrop(t *testing.T) {
	s := newServer(t, smsc.Options{ReceiptDelay: time.Millisecond})
	c := bound(t, s)
	_, id := c.submit(sm{text: pdutext.GSM7("x"), registered: 1})
	if p := c.read(); p.Header().ID != pdu.DeliverSMID {
		t.Fatalf("got %v, want DeliverSM", p.Header().ID)
	}
	s.DropConnections() // before the client acknowledged the receipt
	c2 := bound(t, s)
	p := c2.read()
	if p.Header().ID != pdu.DeliverSMID || !strings.HasPrefix(p.Fields()[pdufield.ShortMessage].String(), "id:"+id) {
		t.Fatalf("got %v, want the receipt for %s again", p.Header().ID, id)
	}
}

func TestServer_SendRaw(t *testing.T) {
	s := newServer(t, smsc.Options{})
	c := bound(t, s)
	tx := dial(t, s)
	if st := tx.bind(pdu.NewBindTransmitter(), "sys", "secret"); st != 0 {
		t.Fatalf("bind: %#x", st)
	}
	raw := []byte{0, 0, 0, 16, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0, 0, 0, 9}
	if got := s.SendRaw(raw); got != 1 {
		t.Errorf("SendRaw: got %d, want 1 (the transmitter may not receive)", got)
	}
	if id, _, seq, _ := c.readRaw(); id != 0x0102 || seq != 9 {
		t.Errorf("got id %#x seq %d, want the raw PDU", id, seq)
	}
}

func TestServer_WaitMessages(t *testing.T) {
	s := newServer(t, smsc.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.WaitMessages(ctx, 1); !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
	c := bound(t, s)
	s.SetAckDelay(20 * time.Millisecond) // so the wait below has something to wait for
	c.sendSubmit(sm{text: pdutext.GSM7("x")})
	if ms := waitMessages(t, s, 1); len(ms) != 1 || ms[0].Text != "x" {
		t.Errorf("got %+v", ms)
	}
}

func TestServer_CloseWithClients(t *testing.T) {
	before := runtime.NumGoroutine()
	s, err := smsc.Listen("127.0.0.1:0", smsc.Options{ReceiptDelay: time.Hour, EnquireLink: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	var clients []*client
	for range 3 {
		c := bound(t, s)
		c.submit(sm{text: pdutext.GSM7("x"), registered: 1}) // leaves a receipt timer pending
		clients = append(clients, c)
	}
	s.SetAckDelay(time.Hour)
	clients[0].sendSubmit(sm{text: pdutext.GSM7("y")}) // leaves an ack timer pending
	clients[0].sync()
	dial(t, s).sync() // and an unbound connection
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for _, c := range clients {
		c.expectEOF()
	}
	if _, err := s.WaitMessages(context.Background(), 100); !errors.Is(err, smsc.ErrClosed) {
		t.Errorf("WaitMessages after Close: got %v, want ErrClosed", err)
	}
	// Close waited for every goroutine it owns; the runtime may take a moment
	// to account for exited ones.
	for i := 0; runtime.NumGoroutine() > before; i++ {
		if i == 200 {
			buf := make([]byte, 1<<16)
			t.Fatalf("goroutines: got %d, want <= %d\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestListen_BadConfig(t *testing.T) {
	for _, cfg := range []smsc.Options{{ReceiptState: "LOST"}, {IDFormat: "base64"}, {ReceiptID: "octal"},
		{ReceiptStates: []string{"ENROUTE", "GONE"}}, {ReceiptUDHI: "yes"}, {DCS0Charset: "utf8"}} {
		if s, err := smsc.Listen("127.0.0.1:0", cfg); err == nil {
			s.Close()
			t.Errorf("Listen(%+v): got nil error", cfg)
		}
	}
}

func TestRun(t *testing.T) {
	var logs syncbuf.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- smsc.Run(ctx, "127.0.0.1:0", smsc.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	}()
	for i := 0; !strings.Contains(logs.String(), "smsc simulator listening"); i++ {
		if i == 1000 {
			t.Fatal("no listening log line")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), "addr=127.0.0.1:") {
		t.Errorf("log %q lacks addr", logs.String())
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

func BenchmarkServer_Submit(b *testing.B) {
	s := newServer(b, smsc.Options{ReceiptDelay: -1})
	c := bound(b, s)
	b.ReportAllocs()
	for b.Loop() {
		if st, _ := c.submit(sm{text: pdutext.GSM7("Your code is 123456")}); st != 0 {
			b.Fatalf("status %#x", st)
		}
	}
}

func TestServer_ReceiptOnOriginTransceiver(t *testing.T) {
	s := newServer(t, smsc.Options{ReceiptDelay: time.Millisecond})
	other, origin := bound(t, s), bound(t, s)
	_, id := origin.submit(sm{text: pdutext.GSM7("x"), registered: 1})
	p := origin.read()
	if p.Header().ID != pdu.DeliverSMID || !strings.HasPrefix(p.Fields()[pdufield.ShortMessage].String(), "id:"+id) {
		t.Fatalf("got %v, want the receipt for %s on the session it came from", p.Header().ID, id)
	}
	if extra := other.sync(); len(extra) != 0 {
		t.Errorf("other session got %d PDUs, want none", len(extra))
	}
}

func TestServer_ConcurrentSessions(t *testing.T) {
	const sessions, perSession = 4, 50
	s := newServer(t, smsc.Options{ReceiptDelay: time.Millisecond, ReceiptTLV: true})
	t.Run("group", func(t *testing.T) {
		for i := range sessions {
			t.Run(fmt.Sprint(i), func(t *testing.T) {
				t.Parallel()
				c := bound(t, s)
				for range perSession { // pipelined, as a windowed client does
					c.sendSubmit(sm{text: pdutext.GSM7("x"), registered: 1})
				}
				acks, receipts := map[string]bool{}, map[string]bool{}
				for len(acks) < perSession || len(receipts) < perSession {
					p := c.read()
					switch p.Header().ID {
					case pdu.SubmitSMRespID:
						acks[p.Fields()[pdufield.MessageID].String()] = true
					case pdu.DeliverSMID:
						receipts[p.TLVFields()[pdutlv.TagReceiptedMessageID].String()] = true
						c.send(pdu.NewDeliverSMRespSeq(p.Header().Seq))
					default:
						t.Fatalf("unexpected %v", p.Header().ID)
					}
				}
				if fmt.Sprint(acks) != fmt.Sprint(receipts) {
					t.Errorf("receipts for %v, want for the acked %v", receipts, acks)
				}
				c.sync()
			})
		}
	})
	ms := s.Messages()
	ids := map[string]bool{}
	for _, m := range ms {
		ids[m.ID] = true
	}
	if len(ms) != sessions*perSession || len(ids) != len(ms) {
		t.Errorf("Messages: got %d with %d unique ids, want %d unique", len(ms), len(ids), sessions*perSession)
	}
	if st := s.Stats(); st.ReceiptsAcked != sessions*perSession {
		t.Errorf("ReceiptsAcked: got %d, want %d", st.ReceiptsAcked, sessions*perSession)
	}
}

func BenchmarkServer_SubmitWithReceipt(b *testing.B) {
	s := newServer(b, smsc.Options{ReceiptDelay: time.Nanosecond, ReceiptTLV: true})
	c := bound(b, s)
	b.ReportAllocs()
	for b.Loop() {
		c.sendSubmit(sm{text: pdutext.GSM7("Your code is 123456"), registered: 1})
		for got := 0; got < 2; {
			p := c.read()
			if p.Header().ID == pdu.DeliverSMID {
				c.send(pdu.NewDeliverSMRespSeq(p.Header().Seq))
			}
			got++
		}
	}
}

// TestServer_KeepMessages checks that Messages and Responses keep at most
// KeepMessages, the newest, however many submits and receipts there were
// (a small bound used to stop trimming and let them grow with every SMS).
func TestServer_KeepMessages(t *testing.T) {
	for _, keep := range []int{1, 4} {
		t.Run(fmt.Sprint(keep), func(t *testing.T) {
			s := newServer(t, smsc.Options{ReceiptDelay: time.Millisecond, KeepMessages: keep})
			c := bound(t, s)
			var last string
			for i := range 9 {
				st, id := c.submit(sm{dst: fmt.Sprintf("91980000000%d", i), text: pdutext.GSM7("code 1234"), registered: 1})
				if st != 0 {
					t.Fatalf("submit %d: status %#x", i, st)
				}
				last = id
				p := c.read()
				if p.Header().ID != pdu.DeliverSMID {
					t.Fatalf("got %v, want DeliverSM", p.Header().ID)
				}
				c.send(pdu.NewDeliverSMRespSeq(p.Header().Seq))
				c.sync()
			}
			ms := s.Messages()
			if len(ms) == 0 || len(ms) > keep || ms[len(ms)-1].ID != last {
				t.Errorf("Messages: got %d; want 1 to %d, the last %s", len(ms), keep, last)
			}
			if rs := s.Responses(); len(rs) == 0 || len(rs) > keep || rs[len(rs)-1].MessageID != last {
				t.Errorf("Responses: got %d; want 1 to %d, the last of %s", len(rs), keep, last)
			}
		})
	}
}
