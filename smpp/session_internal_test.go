package smpp

import (
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fiorix/go-smpp/smpp/pdu"

	"github.com/otpgate/otpgate/internal/syncbuf"
	"github.com/otpgate/otpgate/otp"
)

// peer is a scripted SMSC end of one real TCP connection.
type peer struct {
	tb   testing.TB
	conn net.Conn
}

// startPeer listens on 127.0.0.1:0, dials a session to it with cfg and
// answers its bind; it returns both ends.
func startPeer(tb testing.TB, cfg sessionConfig) (*session, *peer) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	type dialed struct {
		s   *session
		err error
	}
	done := make(chan dialed, 1)
	go func() {
		var d net.Dialer
		s, err := dialSession(context.Background(), d.DialContext, ln.Addr().String(), nil, cfg)
		done <- dialed{s, err}
	}()
	var c net.Conn
	select {
	case conn, ok := <-accepted:
		if !ok {
			tb.Fatal("accept failed")
		}
		c = conn
	case d := <-done:
		tb.Fatalf("dialSession returned before the peer accepted: %v", d.err)
	case <-time.After(waitLimit):
		tb.Fatal("the session never dialled the peer")
	}
	p := &peer{tb: tb, conn: c}
	id, _, seq, _ := p.read()
	if _, resp := cfg.Kind.ids(); id != resp&^0x80000000 {
		tb.Fatalf("bind: got command %#x, want %#x", id, resp&^0x80000000)
	}
	p.write(frame(uint32(id)|0x80000000, 0, seq, cstr("smsc")))
	d := recv(tb, done, "dialSession to return after bind_resp")
	if d.err != nil {
		tb.Fatalf("dialSession: %v", d.err)
	}
	tb.Cleanup(d.s.close)
	tb.Cleanup(func() { c.Close() }) // runs first: close then need not wait for unbind_resp
	return d.s, p
}

// waitLimit bounds every wait of these tests: far beyond what any of them
// takes, so that a session that never answers fails its test instead of
// hanging the package until the test binary's timeout.
const waitLimit = 10 * time.Second

// recv receives from ch, failing the test after waitLimit.
func recv[T any](tb testing.TB, ch <-chan T, what string) T {
	tb.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitLimit):
		tb.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

func (p *peer) read() (id pdu.ID, status, seq uint32, body []byte) {
	p.tb.Helper()
	p.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	f, err := readFrame(p.conn)
	if err != nil {
		p.tb.Fatalf("peer read: %v", err)
	}
	id, status, seq = header(f)
	return id, status, seq, f[16:]
}

// readUntil reads PDUs until one with command id want, answering our
// session's enquire_links on the way.
func (p *peer) readUntil(want pdu.ID) (status, seq uint32, body []byte) {
	p.tb.Helper()
	for {
		id, st, seq, body := p.read()
		if id == want {
			return st, seq, body
		}
		if id == pdu.EnquireLinkID {
			p.write(frame(uint32(pdu.EnquireLinkRespID), 0, seq, nil))
			continue
		}
		p.tb.Fatalf("peer: got command %#x, want %#x", uint32(id), uint32(want))
	}
}

// quiet reports whether nothing arrives within d.
func (p *peer) quiet(d time.Duration) bool {
	p.conn.SetReadDeadline(time.Now().Add(d))
	var b [1]byte
	_, err := p.conn.Read(b[:])
	return errors.Is(err, os.ErrDeadlineExceeded)
}

func (p *peer) write(b []byte) {
	p.tb.Helper()
	if _, err := p.conn.Write(b); err != nil {
		p.tb.Fatalf("peer write: %v", err)
	}
}

func frame(id, status, seq uint32, body []byte) []byte {
	b := make([]byte, 16, 16+len(body))
	binary.BigEndian.PutUint32(b[0:], uint32(16+len(body)))
	binary.BigEndian.PutUint32(b[4:], id)
	binary.BigEndian.PutUint32(b[8:], status)
	binary.BigEndian.PutUint32(b[12:], seq)
	return append(b, body...)
}

func cstr(s string) []byte { return append([]byte(s), 0) }

// deliverBody encodes a deliver_sm body by hand (go-smpp's NewDeliverSM
// adds a stray byte).
func deliverBody(esm byte, text string, tlvs ...[]byte) []byte {
	var b []byte
	b = append(b, 0)                           // service_type
	b = append(b, 1, 1)                        // source ton/npi
	b = append(b, cstr("447700900000")...)     // source_addr
	b = append(b, 5, 0)                        // dest ton/npi
	b = append(b, cstr("SENDER")...)           // destination_addr
	b = append(b, esm, 0, 0)                   // esm_class, protocol_id, priority
	b = append(b, 0, 0)                        // schedule, validity
	b = append(b, 0, 0, 0, 0, byte(len(text))) // registered_delivery, replace, data_coding, default_msg_id, sm_length
	b = append(b, text...)
	for _, t := range tlvs {
		b = append(b, t...)
	}
	return b
}

func submitSM() pdu.Body {
	p := pdu.NewSubmitSM(nil)
	p.Fields().Set("short_message", []byte("x"))
	return p
}

type receipts struct {
	mu  sync.Mutex
	got []otp.Receipt
	err error
	ch  chan struct{}
}

func newReceipts() *receipts { return &receipts{ch: make(chan struct{}, 100)} }

func (r *receipts) HandleReceipt(_ context.Context, rc otp.Receipt) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, rc)
	r.ch <- struct{}{}
	return r.err
}

func TestSession_SeqCollision(t *testing.T) {
	h := newReceipts()
	s, p := startPeer(t, sessionConfig{Handler: h, Carrier: "c1"})
	type res struct {
		frame []byte
		err   error
	}
	done := make(chan res, 1)
	go func() {
		f, err := s.request(context.Background(), submitSM(), pdu.SubmitSMRespID, true)
		done <- res{f, err}
	}()
	_, seq, _ := p.readUntil(pdu.SubmitSMID)
	// A receipt with the pending submit's sequence number comes first.
	p.write(frame(uint32(pdu.DeliverSMID), 0, seq, deliverBody(0x04, "id:ABC stat:DELIVRD err:000")))
	st, rseq, _ := p.readUntil(pdu.DeliverSMRespID)
	if st != 0 || rseq != seq {
		t.Fatalf("deliver_sm_resp: got status %d seq %d, want 0 %d", st, rseq, seq)
	}
	p.write(frame(uint32(pdu.SubmitSMRespID), 0, seq, cstr("ABC")))
	r := recv(t, done, "the submit's result")
	if r.err != nil {
		t.Fatalf("submit: %v", r.err)
	}
	if id := cString(r.frame[16:]); id != "ABC" {
		t.Fatalf("message id: got %q, want ABC", id)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.got) != 1 || h.got[0].MessageID != "ABC" || h.got[0].State != otp.StateDelivered || h.got[0].Carrier != "c1" {
		t.Fatalf("receipts: got %+v, want one DELIVERED ABC from c1", h.got)
	}
}

// A receipt the handler could not store is answered with a temporary
// error (ESME_RX_T_APPN), which SMSCs resend, not ESME_RSYSERR.
func TestSession_HandlerErrorTemporary(t *testing.T) {
	h := newReceipts()
	h.err = errors.New("store down")
	_, p := startPeer(t, sessionConfig{Handler: h})
	p.write(frame(uint32(pdu.DeliverSMID), 0, 77, deliverBody(0x04, "id:1 stat:DELIVRD")))
	if st, seq, _ := p.readUntil(pdu.DeliverSMRespID); st != StatusRxTApp || seq != 77 {
		t.Fatalf("got status %#x seq %d, want %#x 77", st, seq, StatusRxTApp)
	}
}

// TestSession_StatWordLogged: an unknown stat word is logged, at most 16
// bytes of it, with its digits masked: a carrier that put the SMS text (the
// code) there must not put the code in the journal.
func TestSession_StatWordLogged(t *testing.T) {
	var logs syncbuf.Buffer
	_, p := startPeer(t, sessionConfig{Handler: newReceipts(), Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	p.write(frame(uint32(pdu.DeliverSMID), 0, 31, deliverBody(0x04, "id:A1 stat:987654_x?yz0123456789 text:code 987654")))
	if st, seq, _ := p.readUntil(pdu.DeliverSMRespID); st != 0 || seq != 31 {
		t.Fatalf("deliver_sm_resp: got status %#x seq %d, want 0 31", st, seq)
	}
	want := `"msg":"receipt stat unknown: message kept in flight","stat":"######_x?yz#####"`
	if !strings.Contains(logs.String(), want) {
		t.Fatalf("got logs:\n%s\nwant %s", logs.String(), want)
	}
}

func TestSession_GenericNackKeepsBind(t *testing.T) {
	s, p := startPeer(t, sessionConfig{})
	cases := []struct {
		name   string
		pdu    []byte
		status uint32
	}{
		{"UnknownCommand", frame(0x00000999, 0, 11, []byte{1, 2, 3}), StatusInvCmdID},
		{"TruncatedDeliverSM", frame(uint32(pdu.DeliverSMID), 0, 12, deliverBody(0x04, "id:1 stat:DELIVRD")[:20]), StatusInvCmdLen},
		{"TruncatedDataSM", frame(uint32(pdu.DataSMID), 0, 13, []byte{0, 1, 1, '4', '4'}), StatusInvCmdLen},
		{"SubmitFromSMSC", frame(uint32(pdu.SubmitSMID), 0, 15, nil), StatusInvCmdID},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p.write(c.pdu)
			_, _, wantSeq := header(c.pdu)
			st, seq, _ := p.readUntil(pdu.GenericNACKID)
			if st != c.status || seq != wantSeq {
				t.Fatalf("generic_nack: got status %#x seq %d, want %#x %d", st, seq, c.status, wantSeq)
			}
		})
	}
	// alert_notification has no response; then the session still answers.
	p.write(frame(uint32(pdu.AlertNotificationID), 0, 20, []byte{0, 0, 0, 0, 0, 0}))
	p.write(frame(uint32(pdu.EnquireLinkID), 0, 21, nil))
	if _, seq, _ := p.readUntil(pdu.EnquireLinkRespID); seq != 21 {
		t.Fatalf("enquire_link_resp seq: got %d, want 21", seq)
	}
	// A non-receipt deliver_sm (MO) is acked.
	p.write(frame(uint32(pdu.DeliverSMID), 0, 22, deliverBody(0x00, "hello")))
	if st, seq, _ := p.readUntil(pdu.DeliverSMRespID); st != 0 || seq != 22 {
		t.Fatalf("MO ack: got status %d seq %d, want 0 22", st, seq)
	}
	if !s.alive() {
		t.Fatalf("session died: %v", s.Err())
	}
}

func TestSession_BadLengthKillsAndFailsPending(t *testing.T) {
	s, p := startPeer(t, sessionConfig{})
	done := make(chan error, 1)
	go func() {
		_, err := s.request(context.Background(), submitSM(), pdu.SubmitSMRespID, true)
		done <- err
	}()
	p.readUntil(pdu.SubmitSMID)
	p.write([]byte{0, 0, 0, 8, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 1})
	err := recv(t, done, "the submit's result")
	var lost *SessionLostError
	if !errors.As(err, &lost) || !lost.Written || !errors.Is(err, ErrSessionLost) || !errors.Is(err, errBadLength) {
		t.Fatalf("got %v, want a written SessionLostError caused by a bad length", err)
	}
	recv(t, s.dead, "the session's end")
}

func TestSession_Window(t *testing.T) {
	s, p := startPeer(t, sessionConfig{Window: 1})
	first := make(chan error, 1)
	go func() {
		_, err := s.request(context.Background(), submitSM(), pdu.SubmitSMRespID, true)
		first <- err
	}()
	_, seq1, _ := p.readUntil(pdu.SubmitSMID)

	// The window is full: a second submit waits, respecting its ctx.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	_, err := s.request(ctx, submitSM(), pdu.SubmitSMRespID, true)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second submit with a full window: got %v, want DeadlineExceeded", err)
	}
	second := make(chan error, 1)
	go func() {
		_, err := s.request(context.Background(), submitSM(), pdu.SubmitSMRespID, true)
		second <- err
	}()
	if !p.quiet(100 * time.Millisecond) {
		t.Fatal("a second submit was written while the window was full")
	}
	p.write(frame(uint32(pdu.SubmitSMRespID), 0, seq1, cstr("1")))
	if err := recv(t, first, "the first submit's result"); err != nil {
		t.Fatalf("first: %v", err)
	}
	_, seq2, _ := p.readUntil(pdu.SubmitSMID)
	p.write(frame(uint32(pdu.SubmitSMRespID), StatusThrottled, seq2, nil))
	if err := recv(t, second, "the second submit's result"); err != nil {
		t.Fatalf("second: %v", err) // the status is the caller's business
	}
}

func TestSession_LostBeforeWrite(t *testing.T) {
	s, p := startPeer(t, sessionConfig{Window: 1})
	first := make(chan error, 1)
	go func() {
		_, err := s.request(context.Background(), submitSM(), pdu.SubmitSMRespID, true)
		first <- err
	}()
	p.readUntil(pdu.SubmitSMID)
	second := make(chan error, 1)
	go func() {
		_, err := s.request(context.Background(), submitSM(), pdu.SubmitSMRespID, true)
		second <- err
	}()
	p.conn.Close()
	var lost *SessionLostError
	if err := recv(t, first, "the first submit's result"); !errors.As(err, &lost) || !lost.Written {
		t.Fatalf("first: got %v, want written SessionLostError", err)
	}
	if err := recv(t, second, "the second submit's result"); !errors.As(err, &lost) || lost.Written {
		t.Fatalf("second: got %v, want not-written SessionLostError", err)
	}
}

func TestSession_UnbindFromSMSC(t *testing.T) {
	s, p := startPeer(t, sessionConfig{})
	p.write(frame(uint32(pdu.UnbindID), 0, 5, nil))
	if _, seq, _ := p.readUntil(pdu.UnbindRespID); seq != 5 {
		t.Fatalf("unbind_resp seq: got %d, want 5", seq)
	}
	recv(t, s.dead, "the session's end")
	if !errors.Is(s.Err(), errUnbound) {
		t.Fatalf("got %v, want errUnbound", s.Err())
	}
}

func TestSession_CloseUnbinds(t *testing.T) {
	s, p := startPeer(t, sessionConfig{})
	done := make(chan struct{})
	go func() {
		s.close()
		close(done)
	}()
	_, seq, _ := p.readUntil(pdu.UnbindID)
	p.write(frame(uint32(pdu.UnbindRespID), 0, seq, nil))
	recv(t, done, "close to return")
	if !errors.Is(s.Err(), errClosed) {
		t.Fatalf("got %v, want closed", s.Err())
	}
}

// TestSession_StaleRespAfterRebind: the SMSC (or a proxy before it) still
// answers the previous session's unanswered submit on the next session.
// Both sessions numbered from 1, so that response took the new submit's
// sequence number and gave it the old message's id; each now starts at a
// random point, and the stale response matches nothing.
func TestSession_StaleRespAfterRebind(t *testing.T) {
	s1, p1 := startPeer(t, sessionConfig{})
	go s1.request(context.Background(), submitSM(), pdu.SubmitSMRespID, true) // never answered
	_, oldSeq, _ := p1.readUntil(pdu.SubmitSMID)
	s1.kill(errClosed)

	s2, p2 := startPeer(t, sessionConfig{})
	done := make(chan []byte, 1)
	go func() {
		f, err := s2.request(context.Background(), submitSM(), pdu.SubmitSMRespID, true)
		if err != nil {
			t.Errorf("submit on the new session: %v", err)
		}
		done <- f
	}()
	_, seq, _ := p2.readUntil(pdu.SubmitSMID)
	p2.write(frame(uint32(pdu.SubmitSMRespID), 0, oldSeq, cstr("OLD-MSG")))
	p2.write(frame(uint32(pdu.SubmitSMRespID), 0, seq, cstr("NEW-MSG")))
	if f := recv(t, done, "the new submit's result"); f == nil || cString(f[16:]) != "NEW-MSG" {
		t.Fatalf("got %q, want NEW-MSG: the stale response was taken", f)
	}
}

func TestSession_SeqWraps(t *testing.T) {
	s := newSession(nil, sessionConfig{})
	s.seq.Store(maxSeq - 1)
	if got := s.nextSeq(); got != maxSeq {
		t.Fatalf("got %d, want %d", got, maxSeq)
	}
	if got := s.nextSeq(); got != 1 {
		t.Fatalf("got %d, want 1", got)
	}
}

// TestSession_DeliverBeforeBindResp: an SMSC that sends a receipt before
// its bind_resp (in the same write) gets ESME_RX_T_APPN for it, so that it
// sends it again once bound, not silence; the bind still succeeds, and the
// receipt sent again is taken.
func TestSession_DeliverBeforeBindResp(t *testing.T) {
	type answer struct{ status, seq uint32 }
	answers := make(chan answer, 2)
	addr := bindingSMSC(t, func(c net.Conn, id pdu.ID, seq uint32) {
		receipt := deliverBody(0x04, "id:B7 stat:DELIVRD err:000")
		c.Write(append(frame(uint32(pdu.DeliverSMID), 0, 500, receipt), frame(uint32(id)|0x80000000, 0, seq, cstr("smsc"))...))
		for _, again := range []bool{false, true} {
			if again {
				c.Write(frame(uint32(pdu.DeliverSMID), 0, 501, receipt))
			}
			for {
				f, err := readFrame(c)
				if err != nil {
					return
				}
				if id, st, seq := header(f); id == pdu.DeliverSMRespID {
					answers <- answer{st, seq}
					break
				}
			}
		}
		readFrame(c) // until the session closes
	})
	h := newReceipts()
	var d net.Dialer
	s, err := dialSession(context.Background(), d.DialContext, addr, nil, sessionConfig{Handler: h})
	if err != nil {
		t.Fatalf("bind: %v", err)
	}
	defer s.close()
	if a := recv(t, answers, "the early receipt's answer"); a != (answer{StatusRxTApp, 500}) {
		t.Fatalf("early receipt: got status %#x seq %d, want %#x 500", a.status, a.seq, StatusRxTApp)
	}
	if a := recv(t, answers, "the receipt sent again"); a != (answer{0, 501}) {
		t.Fatalf("receipt after the bind: got status %#x seq %d, want 0 501", a.status, a.seq)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.got) != 1 || h.got[0].MessageID != "B7" {
		t.Fatalf("receipts: got %+v, want B7 once", h.got)
	}
}

// bindingSMSC listens on 127.0.0.1:0 and returns its address; it accepts
// one connection, reads its bind and hands the connection, the bind's
// command id and sequence number to script, which answers (or not).
func bindingSMSC(t *testing.T, script func(c net.Conn, id pdu.ID, seq uint32)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		f, err := readFrame(c)
		if err != nil {
			return
		}
		id, _, seq := header(f)
		script(c, id, seq)
	}()
	return ln.Addr().String()
}

func TestSession_BindRejected(t *testing.T) {
	addr := bindingSMSC(t, func(c net.Conn, id pdu.ID, seq uint32) {
		c.Write(frame(uint32(id)|0x80000000, StatusInvPaswd, seq, nil))
	})
	var d net.Dialer
	_, err := dialSession(context.Background(), d.DialContext, addr, nil, sessionConfig{Kind: bindTransmitter})
	var se *StatusError
	if !errors.As(err, &se) || se.Status != StatusInvPaswd {
		t.Fatalf("got %v, want StatusError 0x0E", err)
	}
}
