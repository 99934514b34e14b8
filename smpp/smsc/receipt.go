package smsc

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
)

// receipt is a delivery receipt due for one accepted message, or an MO
// of SendMO (mo set); both are delivered, answered and re-sent alike.
type receipt struct {
	msg    Message
	n      uint64 // message id counter value
	origin *conn  // the connection the submit came on
	nacks  int    // responses received with a non-zero status
	step   int    // index of the state (Options.ReceiptStates) to send next
	mo     *MO
	// then, when set, writes the submit_sm_resp held back for this
	// receipt (Options.ReceiptFirst): called once, by the first answer to
	// its deliver_sm. Guarded by Server.mu.
	then func()
}

// systemID is the system_id whose sessions may carry r; "" means any.
func (r *receipt) systemID() string {
	if r.mo != nil {
		return r.mo.SystemID
	}
	return r.msg.SystemID
}

// formatID writes counter value n as a submit_sm_resp message id.
func (s *Server) formatID(n uint64) string {
	if s.cfg.IDFormat == "decimal" {
		return strconv.FormatUint(n, 10)
	}
	return fmt.Sprintf("%010X", n)
}

// receiptID writes the id of r as receipts carry it.
func (s *Server) receiptID(r *receipt) string {
	switch s.cfg.ReceiptID {
	case "decimal":
		return strconv.FormatUint(r.n, 10)
	case "hex":
		return fmt.Sprintf("%X", r.n)
	case "long":
		return fmt.Sprintf("%070d", r.n)
	}
	return r.msg.ID
}

// wantsReceipt applies registered_delivery: bit 0 asks for every final
// receipt, bit 1 only for failures.
func (s *Server) wantsReceipt(rd uint8) bool {
	if s.cfg.ReceiptDelay < 0 {
		return false
	}
	switch rd & 0x03 {
	case 1:
		return true
	case 2:
		switch s.cfg.ReceiptState {
		case "DELIVRD", "ACCEPTD", "ENROUTE":
			return false
		}
		return true
	}
	return false
}

func (s *Server) scheduleReceipt(origin *conn, m Message, n uint64) {
	if !s.wantsReceipt(m.RegisteredDelivery) {
		return
	}
	r := &receipt{msg: m, n: n, origin: origin}
	s.after(s.cfg.ReceiptDelay, func() { s.deliver(r) })
}

// receiptFirst delivers the receipt of m at once and has respond (the
// submit_sm_resp) written when the client answers it (ReceiptFirst). It
// reports false, having done nothing, when m gets no receipt or no
// session can carry one now.
func (s *Server) receiptFirst(origin *conn, m Message, n uint64, respond func()) bool {
	if !s.wantsReceipt(m.RegisteredDelivery) {
		return false
	}
	s.mu.Lock()
	c := s.pickConn(m.SystemID, origin)
	s.mu.Unlock()
	if c == nil {
		return false
	}
	s.deliver(&receipt{msg: m, n: n, origin: origin, then: respond})
	return true
}

// pickConn chooses the session to carry a receipt for systemID: the one the
// submit came on if it is a transceiver, else any receiver or transceiver of
// that system_id ("" takes any). Called with s.mu held.
func (s *Server) pickConn(systemID string, origin *conn) *conn {
	if origin != nil && !origin.gone && origin.mode == modeTransceiver && origin.systemID == systemID {
		return origin
	}
	for c := range s.conns {
		if !c.gone && c.mode.canReceive() && (systemID == "" || c.systemID == systemID) {
			return c
		}
	}
	return nil
}

// deliver sends r as a deliver_sm, or queues it until a session of its
// system_id that can receive binds.
func (s *Server) deliver(r *receipt) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	sid := r.systemID()
	c := s.pickConn(sid, r.origin)
	if c == nil {
		s.pending[sid] = append(s.pending[sid], r)
		s.trimPending(sid)
		s.mu.Unlock()
		return
	}
	seq := c.nextSeq()
	c.inflight[seq] = r
	s.mu.Unlock()
	// Counted before the write, so a client holding the receipt sees it
	// counted. On a write error the connection closes and its cleanup queues
	// r again.
	if r.mo != nil {
		s.stats.moSent.Add(1)
		s.log.Debug("mo sent", "system_id", c.systemID, "seq", seq)
		c.write(encodeMO(r.mo, seq))
		return
	}
	s.stats.receiptsSent.Add(1)
	if s.log.Enabled(context.Background(), slog.LevelDebug) { // on every receipt: its arguments allocate
		s.log.Debug("receipt sent", "system_id", sid, "message_id", r.msg.ID, "seq", seq,
			"state", s.cfg.ReceiptStates[r.step])
	}
	c.write(s.encodeReceipt(r, seq))
}

// trimPending drops the oldest queued receipts of systemID beyond the bound.
// Called with s.mu held.
func (s *Server) trimPending(systemID string) {
	q := s.pending[systemID]
	if over := len(q) - maxPendingReceipts; over > 0 {
		s.log.Warn("receipt queue full, dropping oldest", "system_id", systemID, "dropped", over)
		s.pending[systemID] = append(q[:0:0], q[over:]...)
	}
}

// flushPending delivers the receipts queued for systemID. Callers run it on a
// timer, not on a reader: a long queue must not stop a session reading the
// deliver_sm_resp its client writes meanwhile.
func (s *Server) flushPending(systemID string) {
	s.mu.Lock()
	q := s.pending[systemID]
	delete(s.pending, systemID)
	s.mu.Unlock()
	for _, r := range q {
		s.deliver(r)
	}
}

// receiptResp handles a deliver_sm_resp or data_sm_resp: it is recorded
// (Responses); a non-zero status re-sends the receipt or MO after
// ReceiptRetry, up to maxReceiptTries sends; status 0 sends the receipt's
// next state, if any, after ReceiptDelay.
func (c *conn) receiptResp(id, seq, status uint32) {
	s := c.s
	s.mu.Lock()
	r := c.inflight[seq]
	delete(c.inflight, seq)
	var then func()
	if r != nil {
		then, r.then = r.then, nil
	}
	resp := Response{Command: "deliver_sm_resp", Status: status, Seq: seq, SystemID: c.systemID}
	if id == idDataSMResp {
		resp.Command = "data_sm_resp"
	}
	if r != nil {
		resp.MO = r.mo != nil
		if r.mo == nil {
			resp.MessageID = r.msg.ID
			resp.State = s.cfg.ReceiptStates[r.step]
		}
	}
	s.resps = append(keepNewest(s.resps, s.cfg.KeepMessages), resp)
	s.mu.Unlock()
	if then != nil {
		then()
	}
	if r == nil {
		s.log.Debug("deliver_sm_resp for no receipt", "remote", c.remote, "seq", seq, "command", resp.Command)
		return
	}
	if status == 0 {
		if r.mo != nil {
			s.stats.moAcked.Add(1)
			return
		}
		s.stats.receiptsAcked.Add(1)
		if r.step+1 < len(s.cfg.ReceiptStates) {
			r.step++
			r.nacks = 0
			s.after(max(s.cfg.ReceiptDelay, 0), func() { s.deliver(r) })
		}
		return
	}
	if r.mo != nil {
		s.stats.moNacked.Add(1)
	} else {
		s.stats.receiptsNacked.Add(1)
	}
	r.nacks++
	if r.nacks >= maxReceiptTries {
		s.log.Warn("receipt refused, giving up", "system_id", r.msg.SystemID, "message_id", r.msg.ID,
			"status", fmt.Sprintf("%#02x", status), "tries", r.nacks)
		return
	}
	s.after(s.cfg.ReceiptRetry, func() { s.deliver(r) })
}

// receiptText is the classic receipt text (SMPP 3.4 Appendix B) for state
// st, its dates in ReceiptLocation.
func (s *Server) receiptText(r *receipt, id, st string, done time.Time) string {
	dlvrd, errCode := "000", "001"
	switch st {
	case "DELIVRD":
		dlvrd, errCode = "001", "000"
	case "ACCEPTD", "ENROUTE", "BUFFRED", "BUFFERD", "ACKED":
		errCode = "000"
	}
	const layout = "0601021504"
	loc := s.cfg.ReceiptLocation
	return fmt.Sprintf("id:%s sub:001 dlvrd:%s submit date:%s done date:%s stat:%s err:%s text:%s",
		id, dlvrd, r.msg.At.In(loc).Format(layout), done.In(loc).Format(layout), st, errCode, receiptExcerpt(r.msg.Text))
}

// receiptExcerpt returns the first 20 characters of text, with every
// character that is not the same in ASCII and GSM 03.38 replaced by '.', so
// the receipt reads the same under either.
func receiptExcerpt(text string) string {
	var b strings.Builder
	n := 0
	for _, r := range text {
		if n == 20 {
			break
		}
		n++
		switch {
		case r >= '0' && r <= '9', r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z',
			r == ' ', r == '!', r == '"', r == '#', r >= '%' && r <= '/', r >= ':' && r <= '?':
			b.WriteRune(r)
		default:
			b.WriteByte('.')
		}
	}
	return b.String()
}

// receiptUDH is the user data header of receipts with ReceiptUDHI
// "header": a concatenation element saying "part 1 of 1".
var receiptUDH = []byte{0x05, 0x00, 0x03, 0x2A, 0x01, 0x01}

// encodeReceipt encodes r by hand (go-smpp's encoder adds a stray byte) as
// a deliver_sm, or a data_sm with ReceiptDataSM: from the submit's
// destination to its source, esm_class 0x04 (0x44 with ReceiptUDHI),
// data_coding 0, the receipt text of r's current state (in
// message_payload for a data_sm; none with ReceiptNoText), and with
// ReceiptTLV the receipted_message_id and message_state TLVs.
func (s *Server) encodeReceipt(r *receipt, seq uint32) []byte {
	m := &r.msg
	id := s.receiptID(r)
	st := s.cfg.ReceiptStates[r.step]
	esm := byte(0x04)
	var text []byte
	if !s.cfg.ReceiptNoText {
		text = []byte(s.receiptText(r, id, st, time.Now().Add(s.cfg.ReceiptDoneShift)))
		switch s.cfg.ReceiptUDHI {
		case "header":
			esm |= 0x40
			text = append(append([]byte(nil), receiptUDH...), text...)
		case "flag":
			esm |= 0x40
		}
		if len(text) > 254 {
			text = text[:254]
		}
	}
	cmd := idDeliverSM
	if s.cfg.ReceiptDataSM {
		cmd = idDataSM
	}
	b := appendHeader(make([]byte, 0, 320), cmd, 0, seq)
	b = append(b, 0) // service_type
	b = append(b, m.DstTON, m.DstNPI)
	b = appendCString(b, []byte(m.Dst))
	b = append(b, m.SrcTON, m.SrcNPI)
	b = appendCString(b, []byte(m.Src))
	if cmd == idDataSM {
		b = append(b, esm,
			0, // registered_delivery
			0, // data_coding
		)
		if len(text) > 0 {
			b = appendTLV(b, uint16(tagMessagePayload), text)
		}
	} else {
		b = append(b,
			esm,
			0, // protocol_id
			0, // priority_flag
			0, // schedule_delivery_time
			0, // validity_period
			0, // registered_delivery
			0, // replace_if_present_flag
			0, // data_coding
			0, // sm_default_msg_id
			byte(len(text)),
		)
		b = append(b, text...)
	}
	if s.cfg.ReceiptTLV {
		b = appendTLV(b, tagReceiptedMessageID, append([]byte(id), 0))
		b = appendTLV(b, tagMessageState, []byte{messageStates[st]})
	}
	return finish(b)
}
