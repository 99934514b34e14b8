package smsc

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fiorix/go-smpp/smpp/pdu"
	"github.com/fiorix/go-smpp/smpp/pdu/pdufield"
)

// maxPDU is the largest command_length accepted; a longer (or a shorter than
// a header) one drops the connection, since the stream cannot be resynced.
const maxPDU = 64 << 10

// bindMode is how a session is bound; 0 is not bound.
type bindMode uint8

const (
	modeTransmitter bindMode = iota + 1
	modeReceiver
	modeTransceiver
)

func (m bindMode) canReceive() bool { return m == modeReceiver || m == modeTransceiver }

func (m bindMode) String() string {
	switch m {
	case modeTransmitter:
		return "transmitter"
	case modeReceiver:
		return "receiver"
	case modeTransceiver:
		return "transceiver"
	}
	return "none"
}

// conn is one client connection. Its reader goroutine (serve) owns the
// reading side; any goroutine may write through write.
type conn struct {
	s      *Server
	nc     net.Conn
	remote string

	wmu sync.Mutex // serialises writes
	seq atomic.Uint32

	// Guarded by s.mu. mode and systemID are written only by the reader
	// goroutine, which may read them without the lock.
	mode     bindMode
	systemID string
	gone     bool                // closed or closing: not counted as bound, given no receipts
	inflight map[uint32]*receipt // receipts awaiting deliver_sm_resp, by seq
}

func newConn(s *Server, nc net.Conn) *conn {
	return &conn{s: s, nc: nc, remote: nc.RemoteAddr().String(), inflight: make(map[uint32]*receipt)}
}

// nextSeq returns the next sequence number for a PDU the simulator
// originates on this connection: 1, 2, ... wrapping before 0x80000000.
func (c *conn) nextSeq() uint32 {
	for {
		if v := c.seq.Add(1) & 0x7FFFFFFF; v != 0 {
			return v
		}
	}
}

// write writes one or more whole PDUs; on failure it closes the connection,
// which ends the reader.
func (c *conn) write(b []byte) error {
	if !c.s.hold() {
		return fmt.Errorf("smsc: write: %w", ErrClosed)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.writeLocked(b)
}

// writeLocked is write with c.wmu held.
func (c *conn) writeLocked(b []byte) error {
	c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := c.nc.Write(b); err != nil {
		c.nc.Close()
		return fmt.Errorf("smsc: write: %w", err)
	}
	return nil
}

func (c *conn) serve() {
	s := c.s
	defer s.wg.Done()
	defer c.cleanup()
	s.log.Debug("connection opened", "remote", c.remote)
	r := bufio.NewReader(c.nc)
	var hdr [pdu.HeaderLen]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return
		}
		l := binary.BigEndian.Uint32(hdr[0:4])
		if l < pdu.HeaderLen || l > maxPDU {
			s.log.Warn("bad command_length, dropping connection", "remote", c.remote, "length", l)
			return
		}
		full := make([]byte, l)
		copy(full, hdr[:])
		if _, err := io.ReadFull(r, full[pdu.HeaderLen:]); err != nil {
			return
		}
		if !s.hold() {
			return
		}
		if !c.handle(full) {
			return
		}
	}
}

// cleanup unregisters the connection and queues its unacknowledged receipts
// again.
func (c *conn) cleanup() {
	s := c.s
	c.nc.Close()
	s.mu.Lock()
	delete(s.conns, c)
	c.gone = true
	sid := c.systemID
	seqs := make([]uint32, 0, len(c.inflight))
	for seq := range c.inflight {
		seqs = append(seqs, seq)
	}
	slices.Sort(seqs)
	requeue := make([]*receipt, 0, len(seqs))
	for _, seq := range seqs {
		requeue = append(requeue, c.inflight[seq])
	}
	clear(c.inflight)
	if !s.closed && len(requeue) > 0 {
		s.pending[sid] = append(requeue, s.pending[sid]...)
		s.trimPending(sid)
	}
	s.mu.Unlock()
	s.log.Debug("connection closed", "remote", c.remote, "system_id", sid, "requeued_receipts", len(requeue))
	if len(requeue) > 0 {
		s.after(0, func() { s.flushPending(sid) })
	}
}

// handle processes one whole PDU and reports whether to keep reading.
func (c *conn) handle(b []byte) bool {
	s := c.s
	id := binary.BigEndian.Uint32(b[4:8])
	status := binary.BigEndian.Uint32(b[8:12])
	seq := binary.BigEndian.Uint32(b[12:16])

	switch id {
	case idBindTransmitter, idBindReceiver, idBindTransceiver:
		return c.bind(b, id, seq)
	case idEnquireLink:
		s.stats.enquireLinks.Add(1)
		c.answerEnquireLink(seq)
		return true
	case idEnquireLinkResp:
		return true
	case idGenericNack:
		s.stats.genericNacks.Add(1)
		s.log.Debug("generic_nack received", "remote", c.remote, "status", status, "seq", seq)
		return true
	}
	if !known(id) {
		s.log.Debug("unknown command id", "remote", c.remote, "command_id", fmt.Sprintf("%#08x", id))
		c.write(encodeHeaderOnly(idGenericNack, statusInvCmdID, seq))
		return true
	}
	if c.mode == 0 {
		if id&respBit == 0 {
			c.write(encodeHeaderOnly(idGenericNack, statusInvBndSts, seq))
		}
		return true
	}
	switch id {
	case idUnbind:
		s.stats.unbinds.Add(1)
		s.mu.Lock()
		c.gone = true // no longer Bound, no receipts, before the client sees the resp
		s.mu.Unlock()
		c.write(encodeHeaderOnly(idUnbindResp, 0, seq))
		s.log.Info("unbind", "remote", c.remote, "system_id", c.systemID)
		return false
	case idSubmitSM:
		c.submit(b, seq)
	case idDeliverSMResp, idDataSMResp:
		c.receiptResp(id, seq, status)
	default:
		if id&respBit == 0 { // a request the simulator does not serve
			c.write(encodeHeaderOnly(idGenericNack, statusInvCmdID, seq))
		}
	}
	return true
}

// decode runs go-smpp's decoder over one whole PDU, turning a panic in it
// into an error: bad input must not take the simulator down.
func decode(b []byte) (p pdu.Body, err error) {
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, fmt.Errorf("smsc: decode panic: %v", r)
		}
	}()
	return pdu.Decode(bytes.NewReader(b))
}

func (c *conn) bind(b []byte, id, seq uint32) bool {
	s := c.s
	respID := id | respBit
	if c.mode != 0 {
		c.write(encodeHeaderOnly(respID, statusAlyBnd, seq))
		return true
	}
	p, err := decode(b)
	if err != nil {
		s.stats.bindsRejected.Add(1)
		s.log.Warn("undecodable bind", "remote", c.remote, "error", err)
		c.write(encodeHeaderOnly(respID, statusBindFail, seq))
		return false
	}
	f := p.Fields()
	sid := fieldString(f, pdufield.SystemID)
	st := s.bindStatus.Load()
	if st == 0 {
		switch {
		case s.cfg.SystemID != "" && sid != s.cfg.SystemID:
			st = statusInvSysID
		case s.wantPassword() != "" && fieldString(f, pdufield.Password) != s.wantPassword():
			st = statusInvPaswd
		}
	}
	var mode bindMode
	switch id {
	case idBindTransmitter:
		mode = modeTransmitter
	case idBindReceiver:
		mode = modeReceiver
	default:
		mode = modeTransceiver
	}
	if st != 0 {
		s.stats.bindsRejected.Add(1)
		s.log.Warn("bind rejected", "remote", c.remote, "system_id", sid, "mode", mode.String(),
			"status", fmt.Sprintf("%#02x", st))
		c.write(encodeHeaderOnly(respID, st, seq))
		return false // real SMSCs close after a failed bind
	}
	// The session counts as bound (Bound, SendRaw, receipts) before its
	// client can see the response, and the write lock keeps any receipt from
	// overtaking the response.
	c.wmu.Lock()
	s.mu.Lock()
	if s.cfg.MaxBinds > 0 && s.boundOfLocked(sid) >= s.cfg.MaxBinds {
		s.mu.Unlock()
		c.wmu.Unlock()
		s.stats.bindsRejected.Add(1)
		s.log.Warn("bind rejected: too many binds for the account", "remote", c.remote, "system_id", sid,
			"max_binds", s.cfg.MaxBinds)
		c.write(encodeHeaderOnly(respID, statusBindFail, seq))
		return false
	}
	c.mode, c.systemID = mode, sid
	if n := uint64(s.boundOfLocked(sid)); n > s.stats.peakBound.Load() {
		s.stats.peakBound.Store(n)
	}
	s.mu.Unlock()
	s.stats.binds.Add(1)
	err = c.writeLocked(encodeResp(respID, 0, seq, []byte(smscSystemID)))
	c.wmu.Unlock()
	if err != nil {
		return false
	}
	s.log.Info("bind", "remote", c.remote, "system_id", sid, "mode", mode.String())
	if mode.canReceive() {
		s.after(0, func() { s.flushPending(sid) })
	}
	c.scheduleUnbind()
	return true
}

func (c *conn) submit(b []byte, seq uint32) {
	s := c.s
	s.stats.submits.Add(1)
	if c.mode == modeReceiver {
		s.stats.rejected.Add(1)
		c.write(encodeHeaderOnly(idSubmitSMResp, statusInvBndSts, seq))
		return
	}
	p, err := decode(b)
	if err != nil {
		s.stats.rejected.Add(1)
		s.log.Warn("undecodable submit_sm", "remote", c.remote, "system_id", c.systemID, "error", err)
		c.write(encodeHeaderOnly(idGenericNack, statusInvCmdLen, seq))
		return
	}
	if s.noAck.Load() {
		s.stats.swallowed.Add(1)
		return
	}
	m := parseSubmit(p, s.cfg.DCS0Charset)
	m.SystemID = c.systemID
	st := s.submitStatus.Load()
	if policy := s.policy.Load(); st == 0 && policy != nil {
		st = (*policy)(m)
	}
	if st == 0 {
		st = s.partStatus(m.Part)
	}
	switch {
	case st != 0:
		s.stats.rejected.Add(1)
	case m.Dst == "":
		st = statusInvDstAdr
		s.stats.rejected.Add(1)
	case m.ValidityPeriod != "" && s.rejectValidity.Load():
		st = statusInvExpiry
		s.stats.rejected.Add(1)
	case !s.allow():
		st = statusThrottled
		s.stats.throttled.Add(1)
	}
	if d := time.Duration(s.ackDelay.Load()); d > 0 {
		s.after(d, func() { c.ack(seq, st, m) })
		return
	}
	c.ack(seq, st, m)
}

// allow takes a token from the throttle bucket, if one is set.
func (s *Server) allow() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.limiter == nil || s.limiter.Allow()
}

// ack answers a submit_sm. With status 0 the message is recorded, logged and
// its receipt scheduled before the response is written, so a client that has
// its ack always finds it in Messages.
func (c *conn) ack(seq, st uint32, m Message) {
	s := c.s
	if st != 0 {
		c.write(encodeHeaderOnly(idSubmitSMResp, st, seq))
		return
	}
	s.mu.Lock()
	if c.gone || s.closed { // the connection died while the ack was delayed
		s.mu.Unlock()
		return
	}
	n := s.nextID.Add(1) - 1
	m.ID = s.formatID(n)
	m.At = time.Now()
	s.messages = append(keepNewest(s.messages, s.cfg.KeepMessages), m)
	s.accepted++
	close(s.msgWake)
	s.msgWake = make(chan struct{})
	s.mu.Unlock()
	s.stats.accepted.Add(1)
	s.log.Info("sms received", "system_id", m.SystemID, "message_id", m.ID, "src", m.Src, "dst", m.Dst,
		"text", m.Text, "part", m.Part, "parts", m.Parts)
	respID := m.ID
	if id := s.ackID.Load(); id != nil {
		respID = *id
	}
	resp := encodeResp(idSubmitSMResp, 0, seq, []byte(respID))
	if s.cfg.ReceiptFirst && s.receiptFirst(c, m, n, func() { c.write(resp) }) {
		return
	}
	s.scheduleReceipt(c, m, n)
	c.write(resp)
}
