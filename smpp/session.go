package smpp

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fiorix/go-smpp/smpp/pdu"
	"github.com/fiorix/go-smpp/smpp/pdu/pdufield"
)

// Session limits and timings.
const (
	maxPDULen         = 64 << 10 // a longer command_length is a broken stream
	maxSeq            = 0x7FFFFFFF
	receiptQueueLen   = 4096
	receiptWorkers    = 16 // receipts handled at once per session: the store commits them together
	writeTimeout      = 10 * time.Second
	unbindWait        = time.Second
	handlerTimeout    = 30 * time.Second
	defaultBindWait   = 10 * time.Second
	defaultAckTimeout = 30 * time.Second
	defaultEnquire    = 30 * time.Second
	inactivityInPings = 3 // default InactivityTimeout, in EnquireLink intervals
)

var (
	errBadLength       = errors.New("smpp: broken command_length")
	errClosed          = errors.New("smpp: session closed")
	errUnbound         = errors.New("smpp: unbound by the smsc")
	errNoResponse      = errors.New("smpp: no response in time")
	errAckTimeout      = errors.New("smpp: submit unanswered past submit_ack_timeout")
	errUnexpectedReply = errors.New("smpp: unexpected reply to bind")
)

// bindKind is the kind of bind a session makes.
type bindKind int

const (
	bindTransceiver bindKind = iota
	bindTransmitter
	bindReceiver
)

func (k bindKind) String() string {
	switch k {
	case bindTransmitter:
		return "transmitter"
	case bindReceiver:
		return "receiver"
	}
	return "transceiver"
}

func (k bindKind) canTransmit() bool { return k != bindReceiver }
func (k bindKind) canReceive() bool  { return k != bindTransmitter }

func (k bindKind) ids() (req, resp pdu.ID) {
	switch k {
	case bindTransmitter:
		return pdu.BindTransmitterID, pdu.BindTransmitterRespID
	case bindReceiver:
		return pdu.BindReceiverID, pdu.BindReceiverRespID
	}
	return pdu.BindTransceiverID, pdu.BindTransceiverRespID
}

// sessionConfig is what one session needs; zero durations take defaults.
type sessionConfig struct {
	Kind                           bindKind
	SystemID, Password, SystemType string
	Window                         int           // unacknowledged submits; <1 means 1
	EnquireLink                    time.Duration // interval of our enquire_link
	InactivityTimeout              time.Duration // no PDU read for this long ends the session; default 3 x EnquireLink
	BindTimeout                    time.Duration // wait for bind_resp
	AckTimeout                     time.Duration // a submit unanswered this long ends the session (default 30s)
	StallTimeout                   time.Duration // a submit unanswered this long lets its send fail over; 0: never
	OnAckTimeout                   func()        // told when AckTimeout ended the session
	OnSubmitAnswered               func()        // told of every submit_sm_resp (or nack) that arrives
	Recent                         *recentIDs    // the carrier's ids lately returned to submits; nil: none kept
	Handler                        ReceiptHandler
	MO                             MOHandler      // nil acks MO messages unhandled
	ReceiptLocation                *time.Location // zone of receipts' done dates; nil is UTC
	Carrier                        string
	Logger                         *slog.Logger
	Observer                       Observer
	LogLimit                       *everyLimiter // repeated warnings, shared by a carrier's sessions
}

func (c *sessionConfig) defaults() {
	if c.Window < 1 {
		c.Window = 1
	}
	if c.EnquireLink <= 0 {
		c.EnquireLink = defaultEnquire
	}
	if c.InactivityTimeout <= 0 {
		c.InactivityTimeout = inactivityInPings * c.EnquireLink
	}
	if c.BindTimeout <= 0 {
		c.BindTimeout = defaultBindWait
	}
	if c.AckTimeout <= 0 {
		c.AckTimeout = defaultAckTimeout
	}
	if c.Logger == nil {
		c.Logger = discardLogger()
	}
	if c.Observer == nil {
		c.Observer = nopObserver{}
	}
	if c.LogLimit == nil {
		c.LogLimit = newEveryLimiter(repeatEvery)
	}
}

// callKey matches a response to its request: the response's command id and
// the sequence number. A deliver_sm that happens to carry a pending
// submit's sequence number has another command id and cannot be mistaken
// for its submit_sm_resp.
type callKey struct {
	id  pdu.ID
	seq uint32
}

// call is a request waiting for its response.
type call struct {
	key     callKey
	submit  bool      // holds a window slot
	written bool      // guarded by session.mu: bytes were handed to the conn
	at      time.Time // registration time
	done    chan result
	// late, set under session.mu once the caller stopped waiting, gets the
	// response frame if it still comes (see abandon).
	late func(frame []byte)
}

type result struct {
	frame []byte
	err   error
}

// session is one bound SMPP session over a net.Conn. start gives it three
// goroutines: readLoop (the one reader), keepLoop (fails requests left
// unanswered past AckTimeout) and aliveLoop (enquire_link, and the end of a
// silent session); a bind that can receive (transceiver or receiver) also
// gets receiptWorkers (16) receiptLoops, which run the receipt and MO
// handlers. That is 3 goroutines for a transmitter bind and 19 for the
// others, all ended by kill; close waits for them. All methods are safe
// for concurrent use.
type session struct {
	cfg  sessionConfig
	conn net.Conn
	br   *bufio.Reader
	log  *slog.Logger

	seq      atomic.Uint32
	window   chan struct{}
	born     time.Time    // monotonic origin of lastRead
	lastRead atomic.Int64 // time since born of the last PDU read, in ns
	inflight atomic.Int32

	writeMu sync.Mutex

	mu      sync.Mutex
	pending map[callKey]*call
	closed  bool
	err     error
	dead    chan struct{}

	receipts chan receiptJob // receipts and MO messages for the workers
	hctx     context.Context // handler context, cancelled when the session dies
	hcancel  context.CancelFunc
	wg       sync.WaitGroup
}

// dialSession dials addr, wraps the connection in TLS when tlsConf is set,
// binds, and starts the session's goroutines. A tlsConf without ServerName
// verifies the SMSC's certificate against the host of addr.
func dialSession(ctx context.Context, dial func(ctx context.Context, network, addr string) (net.Conn, error),
	addr string, tlsConf *tls.Config, cfg sessionConfig) (*session, error) {
	conn, err := dial(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("smpp: dial: %w", err)
	}
	if tlsConf != nil {
		tc := tlsConf.Clone()
		if tc.ServerName == "" {
			if host, _, err := net.SplitHostPort(addr); err == nil {
				tc.ServerName = host
			}
		}
		tconn := tls.Client(conn, tc)
		hctx, cancel := context.WithTimeout(ctx, defaultBindWait)
		err := tconn.HandshakeContext(hctx)
		cancel()
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("smpp: %w: %w", errHandshake, err)
		}
		conn = tconn
	}
	s := newSession(conn, cfg)
	if err := s.bind(ctx); err != nil {
		conn.Close()
		return nil, err
	}
	s.start()
	return s, nil
}

func newSession(conn net.Conn, cfg sessionConfig) *session {
	cfg.defaults()
	s := &session{
		cfg:     cfg,
		conn:    conn,
		br:      bufio.NewReaderSize(conn, 8192),
		log:     cfg.Logger,
		window:  make(chan struct{}, cfg.Window),
		pending: make(map[callKey]*call),
		dead:    make(chan struct{}),
		born:    time.Now(),
	}
	// Each session numbers its PDUs from a random point, not from 1: a
	// response an SMSC (or a proxy in front of it) still sends for the
	// previous session's submit, after the rebind, cannot then take the
	// sequence number of this session's submit and give it another
	// message's id.
	s.seq.Store(rand.Uint32N(maxSeq))
	s.hctx, s.hcancel = context.WithCancel(context.Background())
	if cfg.Kind.canReceive() {
		s.receipts = make(chan receiptJob, receiptQueueLen)
	}
	return s
}

// nextSeq returns the next sequence number in 1..0x7FFFFFFF, wrapping.
func (s *session) nextSeq() uint32 {
	for {
		old := s.seq.Load()
		next := old + 1
		if next > maxSeq {
			next = 1
		}
		if s.seq.CompareAndSwap(old, next) {
			return next
		}
	}
}

// bind sends the bind request and reads until its response, before the
// reader goroutine starts. An enquire_link from the SMSC meanwhile is
// answered; anything else is ignored.
func (s *session) bind(ctx context.Context) error {
	reqID, respID := s.cfg.Kind.ids()
	var p pdu.Body
	switch reqID {
	case pdu.BindTransmitterID:
		p = pdu.NewBindTransmitter()
	case pdu.BindReceiverID:
		p = pdu.NewBindReceiver()
	default:
		p = pdu.NewBindTransceiver()
	}
	f := p.Fields()
	f.Set(pdufield.SystemID, s.cfg.SystemID)
	f.Set(pdufield.Password, s.cfg.Password)
	f.Set(pdufield.SystemType, s.cfg.SystemType)
	f.Set(pdufield.InterfaceVersion, uint8(0x34))
	f.Set(pdufield.AddrTON, uint8(0))
	f.Set(pdufield.AddrNPI, uint8(0))
	f.Set(pdufield.AddressRange, "")
	seq := s.nextSeq()
	p.Header().Seq = seq
	b, err := encodePDU(p)
	if err != nil {
		return fmt.Errorf("smpp: bind: %w", err)
	}
	deadline := time.Now().Add(s.cfg.BindTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	s.conn.SetDeadline(deadline)
	defer s.conn.SetDeadline(time.Time{})
	stop := context.AfterFunc(ctx, func() { s.conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := s.conn.Write(b); err != nil {
		return fmt.Errorf("smpp: bind: write: %w", err)
	}
	for {
		frame, err := readFrame(s.br)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("smpp: bind: %w", ctx.Err())
			}
			return fmt.Errorf("smpp: bind: read: %w", err)
		}
		id, status, rseq := header(frame)
		switch {
		case (id == respID || id == pdu.GenericNACKID) && rseq == seq:
			if status != StatusOK {
				return fmt.Errorf("smpp: bind: %w", &StatusError{Status: status})
			}
			if id == pdu.GenericNACKID {
				return fmt.Errorf("smpp: bind: %w", errUnexpectedReply)
			}
			return nil
		case id == pdu.EnquireLinkID:
			r, _ := encodePDU(withSeq(pdu.NewEnquireLinkResp(), rseq, 0))
			if _, err := s.conn.Write(r); err != nil {
				return fmt.Errorf("smpp: bind: write: %w", err)
			}
		case id == pdu.DeliverSMID || id == pdu.DataSMID:
			// A receipt or MO before the bind_resp: refused for now
			// (ESME_RX_T_APPN), so that the SMSC sends it again once
			// bound, instead of waiting for an answer that never comes.
			if _, err := s.conn.Write(encodeResp(inboundResp(id), StatusRxTApp, rseq)); err != nil {
				return fmt.Errorf("smpp: bind: write: %w", err)
			}
		}
	}
}

func (s *session) start() {
	s.heard()
	s.wg.Add(3)
	go s.readLoop()
	go s.keepLoop()
	go s.aliveLoop()
	if s.receipts != nil {
		for i := 0; i < receiptWorkers; i++ {
			s.wg.Add(1)
			go s.receiptLoop()
		}
	}
}

// alive reports whether the session has not died.
func (s *session) alive() bool {
	select {
	case <-s.dead:
		return false
	default:
		return true
	}
}

// Err returns why the session died, or nil.
func (s *session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// kill ends the session once: it closes the connection and fails every
// pending request with a *SessionLostError saying whether it was written.
func (s *session) kill(cause error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.err = cause
	calls := s.pending
	s.pending = nil
	close(s.dead)
	s.mu.Unlock()
	s.hcancel()
	s.conn.Close()
	for _, c := range calls {
		s.finish(c, result{err: &SessionLostError{Written: c.written, Cause: cause}})
	}
}

// finish completes a call removed from pending by its caller.
func (s *session) finish(c *call, r result) {
	if c.submit {
		s.inflight.Add(-1)
		<-s.window
	}
	c.done <- r
}

// close unbinds (waiting at most unbindWait for unbind_resp), closes the
// connection and waits for the session's goroutines.
func (s *session) close() {
	if s.alive() {
		ctx, cancel := context.WithTimeout(context.Background(), unbindWait)
		s.request(ctx, pdu.NewUnbind(), pdu.UnbindRespID, false)
		cancel()
	}
	s.kill(errClosed)
	s.wg.Wait()
}

// request is requestLate without a late handler.
func (s *session) request(ctx context.Context, p pdu.Body, respID pdu.ID, submit bool) ([]byte, error) {
	b, err := encodePDU(p)
	if err != nil {
		return nil, err
	}
	return s.requestLate(ctx, b, respID, submit, nil)
}

// requestLate sends the encoded PDU b (its sequence number, which it
// overwrites, aside) with a fresh sequence number and waits for the response
// with command id respID (or a generic_nack with the same sequence). A
// submit first takes a window slot (see takeSlot). When the caller stops
// waiting (ctx ended, or a submit stalled while the send may fail over),
// the request stays pending (its window slot too) until its response, the
// session's end or AckTimeout; a response that still comes goes to onLate
// (nil: dropped), on the reader goroutine, so onLate must not block.
func (s *session) requestLate(ctx context.Context, b []byte, respID pdu.ID, submit bool, onLate func(frame []byte)) ([]byte, error) {
	if len(b) < pdu.HeaderLen {
		return nil, errors.New("smpp: request: short pdu")
	}
	if submit {
		if err := s.takeSlot(ctx); err != nil {
			return nil, err
		}
	}
	seq := s.nextSeq()
	binary.BigEndian.PutUint32(b[12:], seq)
	c := &call{key: callKey{respID, seq}, submit: submit, at: time.Now(), done: make(chan result, 1)}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		if submit {
			s.inflight.Add(-1)
			<-s.window
		}
		return nil, &SessionLostError{Written: false, Cause: s.Err()}
	}
	s.pending[c.key] = c
	s.mu.Unlock()

	s.writeCall(c, b)
	var stalled <-chan time.Time
	if submit && s.cfg.StallTimeout > 0 && canFailover(ctx) {
		t := time.NewTimer(s.cfg.StallTimeout)
		defer t.Stop()
		stalled = t.C
	}
	var cause error
	select {
	case r := <-c.done:
		return r.frame, r.err
	case <-ctx.Done():
		cause = fmt.Errorf("%w: %w", ErrUnanswered, ctx.Err())
	case <-stalled:
		cause = fmt.Errorf("%w: %w: no submit_sm_resp within %s", ErrStalled, ErrUnanswered, s.cfg.StallTimeout)
	}
	if r, answered := s.abandon(c, onLate); answered {
		return r.frame, r.err
	}
	return nil, cause
}

// abandon leaves c to its late handler. When the response (or the
// session's end) already took c out of pending, it returns that result.
func (s *session) abandon(c *call, onLate func(frame []byte)) (result, bool) {
	s.mu.Lock()
	if s.pending[c.key] == c {
		c.late = onLate
		s.mu.Unlock()
		return result{}, false
	}
	s.mu.Unlock()
	return <-c.done, true // finish sends right after removing c
}

// writeCall writes a registered call's bytes. The written flag is set under
// mu before the write starts, so kill reports a call cut off mid-write as
// written (ambiguous) and one that never reached the write as not written.
func (s *session) writeCall(c *call, b []byte) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return // kill already failed c as not written
	}
	c.written = true
	s.mu.Unlock()
	s.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := s.conn.Write(b); err != nil {
		s.kill(fmt.Errorf("smpp: write: %w", err))
	}
}

// send writes a PDU that expects no response (a response of ours).
func (s *session) send(p pdu.Body) {
	b, err := encodePDU(p)
	if err != nil {
		s.log.Error("encode pdu", keyError, err)
		return
	}
	s.sendFrame(b)
}

// sendFrame writes an encoded PDU that expects no response.
func (s *session) sendFrame(b []byte) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if !s.alive() {
		return
	}
	s.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := s.conn.Write(b); err != nil {
		s.kill(fmt.Errorf("smpp: write: %w", err))
	}
}

func (s *session) nack(seq, status uint32) {
	s.send(withSeq(pdu.NewGenericNACK(), seq, status))
}

// readLoop is the one reader. Only a broken command_length or an I/O error
// ends the session; PDUs it cannot decode or does not know are answered
// with generic_nack and the bind stays.
func (s *session) readLoop() {
	defer s.wg.Done()
	for {
		frame, err := readFrame(s.br)
		if err != nil {
			s.kill(fmt.Errorf("smpp: read: %w", err))
			return
		}
		s.heard()
		if pingAnswer(frame) {
			continue
		}
		s.dispatch(frame)
	}
}

func (s *session) dispatch(frame []byte) {
	id, _, seq := header(frame)
	if id&0x80000000 != 0 {
		s.response(id, seq, frame)
		return
	}
	switch id {
	case pdu.EnquireLinkID:
		s.send(withSeq(pdu.NewEnquireLinkResp(), seq, 0))
	case pdu.UnbindID:
		s.send(withSeq(pdu.NewUnbindResp(), seq, 0))
		s.log.Info("smsc unbound")
		s.kill(errUnbound)
	case pdu.DeliverSMID, pdu.DataSMID:
		s.deliver(id, seq, frame)
	case pdu.AlertNotificationID:
		// SMPP 3.4 defines no response to alert_notification.
		s.log.Debug("alert_notification ignored")
	default:
		// outbind, a request meant for an SMSC, or an unknown id.
		s.log.Debug("unsupported command", keyCommandID, commandHex(id))
		s.nack(seq, StatusInvCmdID)
	}
}

// response hands a response to the request waiting for it.
func (s *session) response(id pdu.ID, seq uint32, frame []byte) {
	s.mu.Lock()
	c := s.pending[callKey{id, seq}]
	if c == nil && id == pdu.GenericNACKID {
		for _, rid := range []pdu.ID{pdu.SubmitSMRespID, pdu.EnquireLinkRespID, pdu.UnbindRespID} {
			if c = s.pending[callKey{rid, seq}]; c != nil {
				break
			}
		}
	}
	var late func([]byte)
	if c != nil {
		delete(s.pending, c.key)
		late = c.late
	}
	s.mu.Unlock()
	if c == nil {
		s.log.Debug("unmatched response", keyCommandID, commandHex(id), keySeq, seq)
		return
	}
	if c.submit && s.cfg.OnSubmitAnswered != nil {
		s.cfg.OnSubmitAnswered()
	}
	if _, status, _ := header(frame); c.submit && id == pdu.SubmitSMRespID && status == StatusOK {
		// Before the reader reads on: a receipt of this id that follows
		// finds it.
		s.cfg.Recent.add(cString(frame[pdu.HeaderLen:]), time.Now())
	}
	s.finish(c, result{frame: frame})
	if late != nil {
		late(frame)
	}
}

// keepLoop frees the window slots of requests unanswered after
// AckTimeout, ending the session when one of them is a submit. (aliveLoop
// keeps the link alive.)
func (s *session) keepLoop() {
	defer s.wg.Done()
	sweep := time.NewTicker(min(s.cfg.AckTimeout/4, time.Second))
	defer sweep.Stop()
	for {
		select {
		case <-s.dead:
			return
		case <-sweep.C:
			s.sweep(time.Now())
		}
	}
}

// sweep drops requests older than AckTimeout. A submit among them means the
// SMSC's back end is stuck (it may still answer enquire_link): the session
// is unbound, so that the carrier dials a fresh one, and OnAckTimeout
// marks the carrier degraded. Those submits may have been accepted, so
// their error says written.
func (s *session) sweep(now time.Time) {
	var old []*call
	stuck := false
	s.mu.Lock()
	for k, c := range s.pending {
		if now.Sub(c.at) > s.cfg.AckTimeout {
			old = append(old, c)
			delete(s.pending, k)
			stuck = stuck || c.submit
		}
	}
	s.mu.Unlock()
	for _, c := range old {
		s.finish(c, result{err: &SessionLostError{Written: true, Cause: fmt.Errorf("smpp: %w after %s", errNoResponse, s.cfg.AckTimeout)}})
	}
	if !stuck {
		return
	}
	s.log.Error("submit unanswered: rebinding, carrier degraded", keyTimeout, s.cfg.AckTimeout)
	if s.cfg.OnAckTimeout != nil {
		s.cfg.OnAckTimeout()
	}
	ctx, cancel := context.WithTimeout(s.hctx, unbindWait)
	s.request(ctx, pdu.NewUnbind(), pdu.UnbindRespID, false)
	cancel()
	s.kill(errAckTimeout)
}
