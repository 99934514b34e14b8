package smsc_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/fiorix/go-smpp/smpp/pdu"
	"github.com/fiorix/go-smpp/smpp/pdu/pdufield"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutext"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutlv"

	"github.com/otpgate/otpgate/smpp/smsc"
)

// ioTimeout only keeps a broken test from hanging; nothing is timed with it.
const ioTimeout = 10 * time.Second

// newServer starts a simulator for one test and closes it at cleanup.
func newServer(tb testing.TB, cfg smsc.Options) *smsc.Server {
	tb.Helper()
	if cfg.SystemID == "" {
		cfg.SystemID, cfg.Password = "sys", "secret"
	}
	s, err := smsc.Listen("127.0.0.1:0", cfg)
	if err != nil {
		tb.Fatalf("Listen: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return s
}

// client is a minimal raw SMPP client: net.Dial plus go-smpp's codec.
type client struct {
	tb testing.TB
	nc net.Conn
	r  *bufio.Reader
}

func dial(tb testing.TB, s *smsc.Server) *client {
	tb.Helper()
	nc, err := net.Dial("tcp", s.Addr())
	if err != nil {
		tb.Fatalf("dial: %v", err)
	}
	// No TIME_WAIT after close: the fuzz target dials tens of thousands of
	// times and would run out of ephemeral ports.
	nc.(*net.TCPConn).SetLinger(0)
	tb.Cleanup(func() { nc.Close() })
	return &client{tb: tb, nc: nc, r: bufio.NewReader(nc)}
}

// bound dials and binds a transceiver with the right credentials.
func bound(tb testing.TB, s *smsc.Server) *client {
	tb.Helper()
	c := dial(tb, s)
	if st := c.bind(pdu.NewBindTransceiver(), "sys", "secret"); st != 0 {
		tb.Fatalf("bind status: got %#x, want 0", st)
	}
	return c
}

func (c *client) send(p pdu.Body) uint32 {
	c.tb.Helper()
	var b bytes.Buffer
	if err := p.SerializeTo(&b); err != nil {
		c.tb.Fatalf("serialize: %v", err)
	}
	c.sendRaw(b.Bytes())
	return p.Header().Seq
}

func (c *client) sendRaw(b []byte) {
	c.tb.Helper()
	c.nc.SetWriteDeadline(time.Now().Add(ioTimeout))
	if _, err := c.nc.Write(b); err != nil {
		c.tb.Fatalf("write: %v", err)
	}
}

// read decodes the next PDU with go-smpp's decoder.
func (c *client) read() pdu.Body {
	c.tb.Helper()
	c.nc.SetReadDeadline(time.Now().Add(ioTimeout))
	p, err := pdu.Decode(c.r)
	if err != nil {
		c.tb.Fatalf("read PDU: %v", err)
	}
	return p
}

// readRaw returns the next PDU's header fields and body, undecoded.
func (c *client) readRaw() (id, status, seq uint32, body []byte) {
	c.tb.Helper()
	c.nc.SetReadDeadline(time.Now().Add(ioTimeout))
	var h [16]byte
	if _, err := io.ReadFull(c.r, h[:]); err != nil {
		c.tb.Fatalf("read header: %v", err)
	}
	body = make([]byte, binary.BigEndian.Uint32(h[0:4])-16)
	if _, err := io.ReadFull(c.r, body); err != nil {
		c.tb.Fatalf("read body: %v", err)
	}
	return binary.BigEndian.Uint32(h[4:8]), binary.BigEndian.Uint32(h[8:12]), binary.BigEndian.Uint32(h[12:16]), body
}

// expectEOF asserts that the server closed the connection.
func (c *client) expectEOF() {
	c.tb.Helper()
	c.nc.SetReadDeadline(time.Now().Add(ioTimeout))
	var b [1]byte
	n, err := c.r.Read(b[:])
	var ne net.Error
	switch {
	case n > 0:
		c.tb.Fatalf("got a byte %#x, want the connection closed", b[0])
	case errors.As(err, &ne) && ne.Timeout():
		c.tb.Fatalf("connection still open")
	case err == nil:
		c.tb.Fatalf("got no error, want EOF")
	}
}

func (c *client) bind(p pdu.Body, systemID, password string) uint32 {
	c.tb.Helper()
	f := p.Fields()
	f.Set(pdufield.SystemID, systemID)
	f.Set(pdufield.Password, password)
	f.Set(pdufield.InterfaceVersion, uint8(0x34))
	seq := c.send(p)
	r := c.read()
	if got, want := r.Header().ID, p.Header().ID|0x80000000; got != want {
		c.tb.Fatalf("bind answered with %v, want %v", got, want)
	}
	if r.Header().Seq != seq {
		c.tb.Fatalf("bind_resp seq: got %d, want %d", r.Header().Seq, seq)
	}
	return uint32(r.Header().Status)
}

// sm is what a test submits.
type sm struct {
	src, dst   string
	text       pdutext.Codec
	raw        []byte // short_message as is when set (e.g. with a UDH)
	dc, esm    uint8
	registered uint8
	srcTON     uint8 // 5 when 0
	validity   string
	service    string
	tlvs       map[uint16][]byte
}

func (c *client) sendSubmit(m sm) uint32 {
	c.tb.Helper()
	p := pdu.NewSubmitSM(nil)
	f := p.Fields()
	if m.src == "" {
		m.src = "OTPGATE"
	}
	if m.dst == "" {
		m.dst = "919800000001"
	}
	if m.srcTON == 0 {
		m.srcTON = 5
	}
	f.Set(pdufield.SourceAddrTON, m.srcTON)
	f.Set(pdufield.ServiceType, m.service)
	f.Set(pdufield.ValidityPeriod, m.validity)
	for tag, v := range m.tlvs {
		p.TLVFields().Set(pdutlv.Tag(tag), v)
	}
	f.Set(pdufield.SourceAddr, m.src)
	f.Set(pdufield.DestAddrTON, uint8(1))
	f.Set(pdufield.DestAddrNPI, uint8(1))
	f.Set(pdufield.DestinationAddr, m.dst)
	f.Set(pdufield.ESMClass, m.esm)
	f.Set(pdufield.RegisteredDelivery, m.registered)
	if m.raw != nil {
		f.Set(pdufield.ShortMessage, m.raw)
		f.Set(pdufield.DataCoding, m.dc)
	} else {
		f.Set(pdufield.ShortMessage, m.text)
	}
	return c.send(p)
}

// submit sends m and returns the submit_sm_resp's status and message id.
func (c *client) submit(m sm) (uint32, string) {
	c.tb.Helper()
	seq := c.sendSubmit(m)
	r := c.read()
	if r.Header().ID != pdu.SubmitSMRespID || r.Header().Seq != seq {
		c.tb.Fatalf("got %v seq %d, want SubmitSMResp seq %d", r.Header().ID, r.Header().Seq, seq)
	}
	// An error response has no body (SMPP 3.4 §4.4.2), so no message_id.
	var id string
	if v := r.Fields()[pdufield.MessageID]; v != nil {
		id = v.String()
	}
	return uint32(r.Header().Status), id
}

// sync does an enquire_link round trip: every PDU sent before it has been
// handled by the server when it returns. PDUs read meanwhile are returned.
func (c *client) sync() []pdu.Body {
	c.tb.Helper()
	seq := c.send(pdu.NewEnquireLink())
	var other []pdu.Body
	for {
		p := c.read()
		if p.Header().ID == pdu.EnquireLinkRespID && p.Header().Seq == seq {
			return other
		}
		other = append(other, p)
	}
}

func waitMessages(tb testing.TB, s *smsc.Server, n int) []smsc.Message {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	ms, err := s.WaitMessages(ctx, n)
	if err != nil {
		tb.Fatalf("WaitMessages: %v", err)
	}
	return ms
}
