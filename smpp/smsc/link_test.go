package smsc_test

import (
	"errors"
	"os"
	"testing"
	"time"

	"github.com/fiorix/go-smpp/smpp/pdu"
	"github.com/fiorix/go-smpp/smpp/pdu/pdufield"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutext"

	"github.com/otpgate/otpgate/smpp/smsc"
)

// quiet reports whether nothing arrives within d (a negative check: a slow
// machine cannot make it fail wrongly).
func (c *client) quiet(d time.Duration) bool {
	c.tb.Helper()
	c.nc.SetReadDeadline(time.Now().Add(d))
	_, err := c.r.Peek(1)
	return errors.Is(err, os.ErrDeadlineExceeded)
}

func TestServer_SetUnbindAfter(t *testing.T) {
	s := newServer(t, smsc.Options{ReceiptDelay: -1})
	s.SetUnbindAfter(10 * time.Millisecond)
	c := bound(t, s)
	p := c.read()
	if p.Header().ID != pdu.UnbindID {
		t.Fatalf("got %v, want Unbind", p.Header().ID)
	}
	if got := s.Bound(); got != 0 {
		t.Fatalf("Bound after the unbind: got %d, want 0", got)
	}
	r := pdu.NewUnbindResp()
	r.Header().Seq = p.Header().Seq
	c.send(r)
	c.expectEOF() // a second later
	if st := s.Stats(); st.UnbindsSent != 1 || st.Binds != 1 {
		t.Fatalf("Stats: got %+v, want 1 bind, 1 unbind sent", st)
	}

	s.SetUnbindAfter(0)
	c = bound(t, s)
	if !c.quiet(100 * time.Millisecond) {
		t.Fatalf("got a PDU after SetUnbindAfter(0): %v", c.read().Header().ID)
	}
}

func TestServer_SetSilent(t *testing.T) {
	s := newServer(t, smsc.Options{ReceiptDelay: -1, EnquireLink: 5 * time.Millisecond})
	c := bound(t, s)
	s.SetSilent(true)
	// What was already queued may still come out; then nothing.
	for !c.quiet(100 * time.Millisecond) {
		c.read()
	}
	seq := c.sendSubmit(sm{text: pdutext.GSM7("x")})
	if !c.quiet(100 * time.Millisecond) {
		t.Fatalf("a silent simulator sent %v", c.read().Header().ID)
	}
	// A bind on a new connection is held too.
	c2 := dial(t, s)
	b := pdu.NewBindTransceiver()
	b.Fields().Set(pdufield.SystemID, "sys")
	b.Fields().Set(pdufield.Password, "secret")
	bseq := c2.send(b)
	if !c2.quiet(100 * time.Millisecond) {
		t.Fatalf("a silent simulator answered a bind: %v", c2.read().Header().ID)
	}
	if got := s.Bound(); got != 1 {
		t.Fatalf("Bound while silent: got %d, want 1 (the connection stays)", got)
	}

	s.SetSilent(false)
	for {
		p := c.read()
		if p.Header().ID == pdu.SubmitSMRespID {
			if p.Header().Seq != seq || p.Header().Status != 0 {
				t.Fatalf("held submit: got seq %d status %#x, want seq %d status 0", p.Header().Seq, p.Header().Status, seq)
			}
			break
		}
	}
	if p := c2.read(); p.Header().ID != pdu.BindTransceiverRespID || p.Header().Seq != bseq || p.Header().Status != 0 {
		t.Fatalf("held bind: got %v seq %d status %#x", p.Header().ID, p.Header().Seq, p.Header().Status)
	}
}

func TestServer_SetEnquireLinkDelay(t *testing.T) {
	s := newServer(t, smsc.Options{ReceiptDelay: -1})
	c := bound(t, s)

	s.SetEnquireLinkDelay(50 * time.Millisecond)
	eseq := c.send(pdu.NewEnquireLink())
	sseq := c.sendSubmit(sm{text: pdutext.GSM7("x")})
	if p := c.read(); p.Header().ID != pdu.SubmitSMRespID || p.Header().Seq != sseq {
		t.Fatalf("got %v first, want the submit_sm_resp before the late enquire_link_resp", p.Header().ID)
	}
	if p := c.read(); p.Header().ID != pdu.EnquireLinkRespID || p.Header().Seq != eseq {
		t.Fatalf("got %v seq %d, want EnquireLinkResp seq %d", p.Header().ID, p.Header().Seq, eseq)
	}

	s.SetEnquireLinkDelay(-1)
	c.send(pdu.NewEnquireLink())
	sseq = c.sendSubmit(sm{text: pdutext.GSM7("y")})
	if p := c.read(); p.Header().ID != pdu.SubmitSMRespID || p.Header().Seq != sseq {
		t.Fatalf("got %v, want SubmitSMResp", p.Header().ID)
	}
	if !c.quiet(100 * time.Millisecond) {
		t.Fatalf("got %v, want enquire_link never answered", c.read().Header().ID)
	}
	if st := s.Stats(); st.EnquireLinks != 2 {
		t.Fatalf("EnquireLinks: got %d, want 2", st.EnquireLinks)
	}
	s.SetEnquireLinkDelay(0)
	if other := c.sync(); len(other) != 0 {
		t.Fatalf("got %d PDUs before the enquire_link_resp, want none", len(other))
	}
}

// TestServer_MaxBinds: an account capped at two binds refuses the third
// with ESME_RBINDFAIL, takes one again once a session has gone, and counts
// the peak.
func TestServer_MaxBinds(t *testing.T) {
	s, err := smsc.Listen("127.0.0.1:0", smsc.Options{ReceiptDelay: -1, MaxBinds: 2}) // any account
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a := dial(t, s)
	if got := a.bind(pdu.NewBindTransceiver(), "acct", "pw"); got != 0 {
		t.Fatalf("first bind: got %#x, want 0", got)
	}
	b := dial(t, s)
	if got := b.bind(pdu.NewBindTransceiver(), "acct", "pw"); got != 0 {
		t.Fatalf("second bind: got %#x, want 0", got)
	}
	if got := dial(t, s).bind(pdu.NewBindTransceiver(), "acct", "pw"); got != 0x0D {
		t.Fatalf("third bind: got %#x, want 0x0D ESME_RBINDFAIL", got)
	}
	if got := dial(t, s).bind(pdu.NewBindTransceiver(), "other", "pw"); got != 0 {
		t.Fatalf("another account's bind: got %#x, want 0 (the cap is per system_id)", got)
	}
	a.nc.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if got := dial(t, s).bind(pdu.NewBindTransceiver(), "acct", "pw"); got == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no bind accepted after a session of the account closed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st := s.Stats(); st.PeakBound != 2 {
		t.Fatalf("PeakBound: got %d, want 2", st.PeakBound)
	}
}
