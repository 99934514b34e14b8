package smsc

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// receipt is a delivery receipt due for one accepted message.
type receipt struct {
	msg    Message
	n      uint64 // message id counter value
	origin *conn  // the connection the submit came on
	nacks  int    // deliver_sm_resp received with a non-zero status
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

// pickConn chooses the session to carry a receipt for systemID: the one the
// submit came on if it is a transceiver, else any receiver or transceiver of
// that system_id. Called with s.mu held.
func (s *Server) pickConn(systemID string, origin *conn) *conn {
	if origin != nil && !origin.gone && origin.mode == modeTransceiver && origin.systemID == systemID {
		return origin
	}
	for c := range s.conns {
		if !c.gone && c.mode.canReceive() && c.systemID == systemID {
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
	c := s.pickConn(r.msg.SystemID, r.origin)
	if c == nil {
		s.pending[r.msg.SystemID] = append(s.pending[r.msg.SystemID], r)
		s.trimPending(r.msg.SystemID)
		s.mu.Unlock()
		return
	}
	seq := c.nextSeq()
	c.inflight[seq] = r
	s.mu.Unlock()
	// Counted before the write, so a client holding the receipt sees it
	// counted. On a write error the connection closes and its cleanup queues
	// r again.
	s.stats.receiptsSent.Add(1)
	s.log.Debug("receipt sent", "system_id", r.msg.SystemID, "message_id", r.msg.ID, "seq", seq)
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

// receiptResp handles a deliver_sm_resp: a non-zero status re-sends the
// receipt after ReceiptRetry, up to maxReceiptTries sends.
func (c *conn) receiptResp(seq, status uint32) {
	s := c.s
	s.mu.Lock()
	r := c.inflight[seq]
	delete(c.inflight, seq)
	s.mu.Unlock()
	if r == nil {
		s.log.Debug("deliver_sm_resp for no receipt", "remote", c.remote, "seq", seq)
		return
	}
	if status == 0 {
		s.stats.receiptsAcked.Add(1)
		return
	}
	s.stats.receiptsNacked.Add(1)
	r.nacks++
	if r.nacks >= maxReceiptTries {
		s.log.Warn("receipt refused, giving up", "system_id", r.msg.SystemID, "message_id", r.msg.ID,
			"status", fmt.Sprintf("%#02x", status), "tries", r.nacks)
		return
	}
	s.after(s.cfg.ReceiptRetry, func() { s.deliver(r) })
}

// receiptText is the classic receipt text (SMPP 3.4 Appendix B).
func (s *Server) receiptText(r *receipt, id string, done time.Time) string {
	st := s.cfg.ReceiptState
	dlvrd, errCode := "000", "001"
	switch st {
	case "DELIVRD":
		dlvrd, errCode = "001", "000"
	case "ACCEPTD", "ENROUTE":
		errCode = "000"
	}
	const layout = "0601021504"
	return fmt.Sprintf("id:%s sub:001 dlvrd:%s submit date:%s done date:%s stat:%s err:%s text:%s",
		id, dlvrd, r.msg.At.Format(layout), done.Format(layout), st, errCode, receiptExcerpt(r.msg.Text))
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

// encodeReceipt encodes r as a deliver_sm by hand (go-smpp's encoder adds a
// stray byte): from the submit's destination to its source, esm_class 0x04,
// data_coding 0, the receipt text, and with ReceiptTLV the
// receipted_message_id and message_state TLVs.
func (s *Server) encodeReceipt(r *receipt, seq uint32) []byte {
	m := &r.msg
	id := s.receiptID(r)
	text := []byte(s.receiptText(r, id, time.Now()))
	if len(text) > 254 {
		text = text[:254]
	}
	b := appendHeader(make([]byte, 0, 256), idDeliverSM, 0, seq)
	b = append(b, 0) // service_type
	b = append(b, m.DstTON, m.DstNPI)
	b = appendCString(b, []byte(m.Dst))
	b = append(b, m.SrcTON, m.SrcNPI)
	b = appendCString(b, []byte(m.Src))
	b = append(b,
		0x04, // esm_class: SMSC delivery receipt
		0,    // protocol_id
		0,    // priority_flag
		0,    // schedule_delivery_time
		0,    // validity_period
		0,    // registered_delivery
		0,    // replace_if_present_flag
		0,    // data_coding
		0,    // sm_default_msg_id
		byte(len(text)),
	)
	b = append(b, text...)
	if s.cfg.ReceiptTLV {
		b = appendTLV(b, tagReceiptedMessageID, append([]byte(id), 0))
		b = appendTLV(b, tagMessageState, []byte{messageStates[s.cfg.ReceiptState]})
	}
	return finish(b)
}
