package smsc

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Defaults applied by Listen to a zero Options field.
const (
	// DefaultReceiptDelay is the default Options.ReceiptDelay.
	DefaultReceiptDelay = 50 * time.Millisecond
	// DefaultReceiptState is the default Options.ReceiptState.
	DefaultReceiptState = "DELIVRD"
	// DefaultReceiptRetry is the default Options.ReceiptRetry.
	DefaultReceiptRetry = time.Second
	// DefaultKeepMessages is the default Options.KeepMessages.
	DefaultKeepMessages = 100000
)

// maxPendingReceipts bounds the receipts queued per system_id while no
// session of that system_id can receive; the oldest are dropped beyond it.
const maxPendingReceipts = 10000

// maxReceiptTries is how often a receipt is sent when the client answers its
// deliver_sm with a non-zero status.
const maxReceiptTries = 3

// writeTimeout bounds one write to a client, so a client that stops reading
// cannot block the simulator.
const writeTimeout = 5 * time.Second

// Options configures a simulator. The zero value is usable: it accepts any
// system_id and password and sends DELIVRD receipts after 50ms.
type Options struct {
	// SystemID and Password are what binds must present. Empty accepts any.
	SystemID, Password string
	// ReceiptDelay is the delay from accepting a submit to its delivery
	// receipt; 0 means DefaultReceiptDelay; negative disables receipts.
	ReceiptDelay time.Duration
	// ReceiptState is the stat: text of receipts: DELIVRD (default),
	// UNDELIV, EXPIRED, REJECTD, DELETED, UNKNOWN, ACCEPTD or ENROUTE.
	ReceiptState string
	// IDFormat is how submit_sm_resp writes message ids: "hex" (default,
	// upper-case hex of a counter padded to 10 characters, "00000001A3") or
	// "decimal" (plain decimal).
	IDFormat string
	// ReceiptID is how receipts write the id, in the text and in the
	// receipted_message_id TLV: "same" (default, as in submit_sm_resp),
	// "decimal" (the counter in decimal, no padding) or "hex" (the counter in
	// upper-case hex, no padding). Carriers that switch formats exist.
	// "long" writes the counter in decimal padded with zeros to 70
	// characters, beyond the 64 that SMPP allows a message id.
	ReceiptID string
	// ReceiptStates, when set, replaces ReceiptState with a sequence: one
	// receipt per state, in order, each sent ReceiptDelay after the client
	// acknowledged the one before (e.g. ENROUTE then DELIVRD, or DELIVRD
	// then UNDELIV as a carrier that changes its mind). BUFFRED, BUFFERD and
	// ACKED are accepted besides ReceiptState's words.
	ReceiptStates []string
	// ReceiptUDHI sets the UDHI bit on receipts (esm_class 0x44):
	// "header" puts a user data header before the receipt text; "flag" sets
	// the bit over a plain text, which go-smpp's decoder misreads as a
	// header; "" (default) sends esm_class 0x04.
	ReceiptUDHI string
	// ReceiptDataSM sends receipts as data_sm, the text in the
	// message_payload TLV, answered with data_sm_resp.
	ReceiptDataSM bool
	// ReceiptNoText sends receipts with no text at all: only the
	// receipted_message_id and message_state TLVs (ReceiptTLV is implied).
	ReceiptNoText bool
	// ReceiptLocation is the time zone the receipt text's submit date and
	// done date are written in (a carrier writing local time); nil means
	// UTC.
	ReceiptLocation *time.Location
	// ReceiptDoneShift is added to the done date written in receipts: a
	// carrier whose clock is off (a positive shift puts it in the future).
	ReceiptDoneShift time.Duration
	// ReceiptTLV adds receipted_message_id (0x001E) and message_state
	// (0x0427) TLVs to receipts; the text form is always sent.
	ReceiptTLV bool
	// ReceiptRetry is the wait before re-sending a receipt that the client
	// answered with a non-zero status; 0 means DefaultReceiptRetry.
	ReceiptRetry time.Duration
	// ReceiptFirst sends the receipt of an accepted submit_sm at once and
	// holds the submit_sm_resp until the client has answered the
	// receipt's deliver_sm, as an SMSC whose delivery report overtakes
	// its own response: the client gets a receipt for a message id it
	// has not been told yet. With no session to carry the receipt the
	// response goes at once, the receipt after ReceiptDelay.
	ReceiptFirst bool
	// EnquireLink is the interval of the simulator's own enquire_link to
	// every bound client; 0 never sends one.
	EnquireLink time.Duration
	// KeepMessages bounds how many accepted messages Messages keeps, and
	// deliver_sm responses Responses keeps (when full, the older half is
	// dropped), and so a long-running simulator's memory; 0 means
	// DefaultKeepMessages.
	KeepMessages int
	// TLS, when set, makes the simulator speak SMPP over TLS.
	TLS *tls.Config
	// FirstID is the counter value of the first message id; 0 means 1.
	// Set it to keep ids unique across simulator restarts.
	FirstID uint64
	// DCS0Charset is what the simulator reads data_coding 0 as, like a
	// carrier whose SMSC default alphabet is not GSM 03.38: "gsm7" (default,
	// unpacked septets), "latin1" (ISO-8859-1 bytes) or "ascii" (bytes above
	// 0x7F become U+FFFD).
	DCS0Charset string
	// MaxBinds caps the sessions bound at once per system_id, as carriers
	// cap binds per account: the next bind is refused with ESME_RBINDFAIL
	// (0x0D). 0 means no cap.
	MaxBinds int
	// Logger receives the simulator's log; nil discards. Every accepted SMS
	// is logged at Info ("sms received") with its full text, OTP code
	// included: the simulator plays the handset, for trials and tests only.
	Logger *slog.Logger
}

// messageStates maps receipt stat: texts to message_state TLV values; the
// intermediate words SMPP 3.4 has no value for are sent as ENROUTE (1) or
// ACCEPTED (6).
var messageStates = map[string]byte{
	"BUFFRED": 1,
	"BUFFERD": 1,
	"ACKED":   6,
	"ENROUTE": 1,
	"DELIVRD": 2,
	"EXPIRED": 3,
	"DELETED": 4,
	"UNDELIV": 5,
	"ACCEPTD": 6,
	"UNKNOWN": 7,
	"REJECTD": 8,
}

// Message is a submit the simulator accepted (acknowledged with status 0).
type Message struct {
	// ID is the message id sent in submit_sm_resp.
	ID string
	// Src and Dst are the source and destination addresses as submitted.
	Src, Dst                       string
	SrcTON, SrcNPI, DstTON, DstNPI uint8
	DataCoding, ESMClass           uint8
	RegisteredDelivery             uint8
	// Text is the decoded short_message (or message_payload), UDH stripped.
	Text string
	// Ref, Part and Parts come from a concatenation UDH (or the sar_* TLVs);
	// all 0 for a single message.
	Ref, Part, Parts int
	// ServiceType and ValidityPeriod are the submit's fields as sent
	// (validity_period "" when the submit had none).
	ServiceType, ValidityPeriod string
	// TLVs are every optional parameter of the submit by tag, the sar_* and
	// message_payload ones included; nil when it had none.
	TLVs map[uint16][]byte
	// SystemID is the system_id of the session that submitted it.
	SystemID string
	// At is when it was accepted.
	At time.Time
}

// Stats are the simulator's counters since Listen.
type Stats struct {
	Binds          uint64 // successful binds
	BindsRejected  uint64 // binds answered with a non-zero status
	Submits        uint64 // submit_sm received, whatever their fate
	Accepted       uint64 // submits acknowledged with status 0
	Throttled      uint64 // submits answered ESME_RTHROTTLED by SetThrottle
	Rejected       uint64 // submits answered with another non-zero status
	Swallowed      uint64 // submits never answered (SetNoAck)
	ReceiptsSent   uint64 // deliver_sm receipts written, re-sends included
	ReceiptsAcked  uint64 // deliver_sm_resp with status 0
	ReceiptsNacked uint64 // deliver_sm_resp with a non-zero status
	MOSent         uint64 // MO messages of SendMO written, re-sends included
	MOAcked        uint64 // their responses with status 0
	MONacked       uint64 // their responses with a non-zero status
	EnquireLinks   uint64 // enquire_link received from clients
	GenericNacks   uint64 // generic_nack received from clients
	Unbinds        uint64 // unbind received from clients
	UnbindsSent    uint64 // unbind sent to clients (SetUnbindAfter)
	PeakBound      uint64 // most sessions of one system_id bound at once
}

type counters struct {
	binds, bindsRejected, submits, accepted, throttled, rejected, swallowed atomic.Uint64
	receiptsSent, receiptsAcked, receiptsNacked                             atomic.Uint64
	moSent, moAcked, moNacked                                               atomic.Uint64
	enquireLinks, genericNacks, unbinds                                     atomic.Uint64
	unbindsSent                                                             atomic.Uint64
	peakBound                                                               atomic.Uint64 // under Server.mu
}

// Server is a running simulator. Its methods are safe for concurrent use.
type Server struct {
	cfg Options
	log *slog.Logger
	ln  net.Listener

	wg        sync.WaitGroup // accept loop, readers, timers, enquire_link loop
	closeOnce sync.Once
	done      chan struct{} // closed by Close

	nextID atomic.Uint64 // next message id counter value

	bindStatus     atomic.Uint32
	password       atomic.Pointer[string] // SetPassword; nil: Options.Password
	submitStatus   atomic.Uint32
	ackDelay       atomic.Int64
	noAck          atomic.Bool
	rejectValidity atomic.Bool
	policy         atomic.Pointer[func(Message) uint32]
	ackID          atomic.Pointer[string] // SetAckID: the id every submit_sm_resp carries
	link           linkFaults             // SetUnbindAfter, SetSilent, SetEnquireLinkDelay

	stats counters

	mu       sync.Mutex
	closed   bool
	conns    map[*conn]struct{}
	timers   map[*job]struct{}
	pending  map[string][]*receipt // per system_id, while no session can receive
	limiter  *rate.Limiter
	partFail map[int]partFault // concatenation part number -> fault (FailPart)
	messages []Message         // the newest KeepMessages accepted
	accepted int               // accepted in all, kept or not
	msgWake  chan struct{}     // closed and replaced when a message is accepted
	resps    []Response        // the newest KeepMessages deliver_sm_resp and data_sm_resp
}

// Listen validates cfg, listens on addr (e.g. "127.0.0.1:0") and starts
// serving in the background. The caller must Close the Server.
func Listen(addr string, cfg Options) (*Server, error) {
	if err := cfg.normalize(); err != nil {
		return nil, fmt.Errorf("smsc: config: %w", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("smsc: listen: %w", err)
	}
	if cfg.TLS != nil {
		ln = tls.NewListener(ln, cfg.TLS)
	}
	s := &Server{
		cfg:     cfg,
		log:     cfg.Logger,
		ln:      ln,
		done:    make(chan struct{}),
		conns:   make(map[*conn]struct{}),
		timers:  make(map[*job]struct{}),
		pending: make(map[string][]*receipt),
		msgWake: make(chan struct{}),
	}
	s.nextID.Store(cfg.FirstID)
	s.wg.Add(1)
	go s.acceptLoop()
	if cfg.EnquireLink > 0 {
		s.wg.Add(1)
		go s.enquireLoop()
	}
	return s, nil
}

func (c *Options) normalize() error {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.ReceiptDelay == 0 {
		c.ReceiptDelay = DefaultReceiptDelay
	}
	if c.ReceiptRetry <= 0 {
		c.ReceiptRetry = DefaultReceiptRetry
	}
	if c.KeepMessages <= 0 {
		c.KeepMessages = DefaultKeepMessages
	}
	if c.FirstID == 0 {
		c.FirstID = 1
	}
	c.ReceiptState = strings.ToUpper(c.ReceiptState)
	if c.ReceiptState == "" {
		c.ReceiptState = DefaultReceiptState
	}
	if len(c.ReceiptStates) == 0 {
		c.ReceiptStates = []string{c.ReceiptState}
	}
	states := make([]string, len(c.ReceiptStates))
	for i, st := range c.ReceiptStates {
		states[i] = strings.ToUpper(st)
		if _, ok := messageStates[states[i]]; !ok {
			return fmt.Errorf("unknown receipt state %q", st)
		}
	}
	c.ReceiptStates = states
	c.ReceiptState = states[len(states)-1]
	switch c.ReceiptUDHI {
	case "", "header", "flag":
	default:
		return fmt.Errorf("unknown receipt udhi %q (want header or flag)", c.ReceiptUDHI)
	}
	if c.ReceiptNoText {
		c.ReceiptTLV = true
	}
	if c.ReceiptLocation == nil {
		c.ReceiptLocation = time.UTC
	}
	switch c.IDFormat {
	case "":
		c.IDFormat = "hex"
	case "hex", "decimal":
	default:
		return fmt.Errorf("unknown id format %q (want hex or decimal)", c.IDFormat)
	}
	switch c.ReceiptID {
	case "":
		c.ReceiptID = "same"
	case "same", "hex", "decimal", "long":
	default:
		return fmt.Errorf("unknown receipt id format %q (want same, hex, decimal or long)", c.ReceiptID)
	}
	switch c.DCS0Charset {
	case "":
		c.DCS0Charset = "gsm7"
	case "gsm7", "latin1", "ascii":
	default:
		return fmt.Errorf("unknown dcs0 charset %q (want gsm7, latin1 or ascii)", c.DCS0Charset)
	}
	return nil
}

// Addr returns the listening address, host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close closes the listener and every connection, stops pending timers
// (unsent acks and receipts are dropped) and waits for every goroutine the
// Server started. It is idempotent; every call waits.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		close(s.done)
		for j := range s.timers {
			if j.t.Stop() {
				s.wg.Done() // its callback will never run
			}
		}
		clear(s.timers)
		conns := make([]*conn, 0, len(s.conns))
		for c := range s.conns {
			conns = append(conns, c)
		}
		s.mu.Unlock()
		if e := s.ln.Close(); e != nil && !errors.Is(e, net.ErrClosed) {
			err = fmt.Errorf("smsc: close: %w", e)
		}
		for _, c := range conns {
			c.nc.Close()
		}
	})
	s.wg.Wait()
	return err
}

// job is a pending timer owned by the Server.
type job struct{ t *time.Timer }

// after runs f after d on a timer tracked by the Server: Close stops it or
// waits for it. It reports false, and does nothing, once the Server is closed.
func (s *Server) after(d time.Duration, f func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	j := &job{}
	s.wg.Add(1)
	j.t = time.AfterFunc(d, func() {
		defer s.wg.Done()
		s.mu.Lock()
		delete(s.timers, j)
		closed := s.closed
		s.mu.Unlock()
		if !closed {
			f()
		}
	})
	s.timers[j] = struct{}{}
	return true
}

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	var delay time.Duration
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			select {
			case <-s.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Temporary failure (e.g. too many open files): back off.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.log.Warn("accept failed", "error", err)
			select {
			case <-time.After(delay):
			case <-s.done:
				return
			}
			continue
		}
		delay = 0
		c := newConn(s, nc)
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			nc.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go c.serve()
	}
}

func (s *Server) enquireLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.EnquireLink)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
		}
		for _, c := range s.boundConns(false) {
			c.write(encodeHeaderOnly(idEnquireLink, 0, c.nextSeq()))
		}
	}
}

// boundConns returns the bound connections; with receivers, only those that
// may receive deliver_sm (receiver or transceiver).
func (s *Server) boundConns(receivers bool) []*conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*conn
	for c := range s.conns {
		if c.gone || c.mode == 0 || (receivers && !c.mode.canReceive()) {
			continue
		}
		out = append(out, c)
	}
	return out
}

// boundOfLocked counts the sessions of systemID bound now. s.mu must be
// held.
func (s *Server) boundOfLocked(systemID string) int {
	n := 0
	for c := range s.conns {
		if !c.gone && c.mode != 0 && c.systemID == systemID {
			n++
		}
	}
	return n
}

// SetBindStatus makes every following bind fail with command_status st (for
// example 0x0E ESME_RINVPASWD); 0 restores normal checking.
func (s *Server) SetBindStatus(st uint32) { s.bindStatus.Store(st) }

// SetSubmitStatus makes every following submit_sm fail with command_status st
// (0x0B invalid destination, 0x58 throttled, 0x14 queue full, ...); 0
// restores normal acceptance.
func (s *Server) SetSubmitStatus(st uint32) { s.submitStatus.Store(st) }

// SetThrottle limits accepted submits, over all sessions, to a token bucket
// of perSecond with burst; submits beyond it get 0x58 ESME_RTHROTTLED.
// perSecond <= 0 turns throttling off. The bucket starts full.
func (s *Server) SetThrottle(perSecond float64, burst int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if perSecond <= 0 {
		s.limiter = nil
		return
	}
	s.limiter = rate.NewLimiter(rate.Limit(perSecond), max(burst, 1))
}

// partFault is a status answered to the next n submits of one part number.
type partFault struct {
	status uint32
	n      int
}

// FailPart answers the next n submits that carry concatenation part number
// part (1-based, from the UDH or sar_* TLVs) with command_status st, for
// example 0x58 throttled: the carrier that takes part 1 of a long message
// and refuses part 2 for a while. n <= 0 clears the fault of part.
func (s *Server) FailPart(part int, st uint32, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.partFail == nil {
		s.partFail = map[int]partFault{}
	}
	if n <= 0 {
		delete(s.partFail, part)
		return
	}
	s.partFail[part] = partFault{status: st, n: n}
}

// partStatus consumes one fault of part, if FailPart set one.
func (s *Server) partStatus(part int) uint32 {
	if part == 0 {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.partFail[part]
	if !ok {
		return 0
	}
	if f.n--; f.n <= 0 {
		delete(s.partFail, part)
	} else {
		s.partFail[part] = f
	}
	return f.status
}

// SetAckDelay delays each following submit_sm_resp by d (on a timer, so the
// session keeps reading; acks may go out of order when d changes). 0 acks at
// once.
func (s *Server) SetAckDelay(d time.Duration) { s.ackDelay.Store(int64(d)) }

// SetNoAck makes the simulator swallow every following submit_sm: no
// response, no receipt, not recorded (the carrier that never answers).
func (s *Server) SetNoAck(on bool) { s.noAck.Store(on) }

// SetRejectValidity makes the simulator answer 0x62 ESME_RINVEXPIRY to
// every following submit_sm that has a validity_period (a carrier that
// accepts none); false accepts them again.
func (s *Server) SetRejectValidity(on bool) { s.rejectValidity.Store(on) }

// SetSubmitPolicy makes the simulator ask f about every following
// submit_sm (decoded, not yet accepted) and answer with the status f
// returns; 0 accepts. f runs on the connection's reader and must be safe
// for concurrent use. nil removes the policy. RequireSource and
// RequireDest build the usual ones.
func (s *Server) SetSubmitPolicy(f func(Message) uint32) {
	if f == nil {
		s.policy.Store(nil)
		return
	}
	s.policy.Store(&f)
}

// SetAckID makes every submit_sm_resp written from now on (a delayed one
// included) carry id as its message_id, whatever the message's own ("" for
// an empty one): a carrier
// that answers without a usable id. The message is recorded, and its
// receipt sent, under its own id. Off restores the message's own id.
func (s *Server) SetAckID(id string, on bool) {
	if !on {
		s.ackID.Store(nil)
		return
	}
	s.ackID.Store(&id)
}

// RequireSource is a submit policy that refuses a source address whose
// type of number is not ton (0x48 ESME_RINVSRCTON) or whose numbering plan
// is not npi (0x49 ESME_RINVSRCNPI), as carriers strict about sender ids do.
func RequireSource(ton, npi uint8) func(Message) uint32 {
	return func(m Message) uint32 {
		switch {
		case m.SrcTON != ton:
			return statusInvSrcTON
		case m.SrcNPI != npi:
			return statusInvSrcNPI
		}
		return 0
	}
}

// RequireDest is a submit policy that refuses a destination whose type of
// number is not ton (0x50 ESME_RINVDSTTON) or whose numbering plan is not
// npi (0x51 ESME_RINVDSTNPI).
func RequireDest(ton, npi uint8) func(Message) uint32 {
	return func(m Message) uint32 {
		switch {
		case m.DstTON != ton:
			return statusInvDstTON
		case m.DstNPI != npi:
			return statusInvDstNPI
		}
		return 0
	}
}

// DropConnections abruptly closes every current connection, bound or not,
// without unbind, and returns how many it closed. Receipts sent on them and
// not yet acknowledged are queued again for the next bind.
func (s *Server) DropConnections() int {
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		c.gone = true // Bound drops at once, not when the reader notices
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.nc.Close()
	}
	return len(conns)
}

// SendRaw writes b unchanged to every bound connection that may receive
// (receiver or transceiver), to test clients against unknown or malformed
// PDUs. It returns how many connections it was written to.
func (s *Server) SendRaw(b []byte) int {
	n := 0
	for _, c := range s.boundConns(true) {
		if c.write(b) == nil {
			n++
		}
	}
	return n
}

// Messages returns a copy of the accepted submits it keeps (all, unless more
// than Options.KeepMessages), in order of acceptance.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

// keepNewest makes room in s, which keeps at most keep elements, for one
// more: when s is full it keeps its newest half (none when keep is 1), and
// clears the rest so that the strings they hold can be collected.
func keepNewest[T any](s []T, keep int) []T {
	if len(s) < keep {
		return s
	}
	half := keep / 2
	n := copy(s, s[len(s)-half:])
	clear(s[n:])
	return s[:n]
}

// WaitMessages waits until at least n submits were accepted in all and
// returns them like Messages. It fails when ctx is done or the Server is closed first.
func (s *Server) WaitMessages(ctx context.Context, n int) ([]Message, error) {
	for {
		s.mu.Lock()
		if s.accepted >= n {
			out := append([]Message(nil), s.messages...)
			s.mu.Unlock()
			return out, nil
		}
		wake := s.msgWake
		have := s.accepted
		s.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return nil, fmt.Errorf("smsc: wait for %d messages, have %d: %w", n, have, ctx.Err())
		case <-s.done:
			return nil, fmt.Errorf("smsc: wait for %d messages, have %d: %w", n, have, ErrClosed)
		}
	}
}

// ErrClosed is returned by WaitMessages when the Server is closed.
var ErrClosed = errors.New("smsc: server closed")

// Bound returns the number of currently bound sessions.
func (s *Server) Bound() int { return len(s.boundConns(false)) }

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	c := &s.stats
	return Stats{
		Binds:          c.binds.Load(),
		BindsRejected:  c.bindsRejected.Load(),
		PeakBound:      c.peakBound.Load(),
		Submits:        c.submits.Load(),
		Accepted:       c.accepted.Load(),
		Throttled:      c.throttled.Load(),
		Rejected:       c.rejected.Load(),
		Swallowed:      c.swallowed.Load(),
		ReceiptsSent:   c.receiptsSent.Load(),
		ReceiptsAcked:  c.receiptsAcked.Load(),
		ReceiptsNacked: c.receiptsNacked.Load(),
		MOSent:         c.moSent.Load(),
		MOAcked:        c.moAcked.Load(),
		MONacked:       c.moNacked.Load(),
		EnquireLinks:   c.enquireLinks.Load(),
		GenericNacks:   c.genericNacks.Load(),
		Unbinds:        c.unbinds.Load(),
		UnbindsSent:    c.unbindsSent.Load(),
	}
}

// Run listens on addr, logs "smsc simulator listening", serves until ctx is
// done, then closes the Server. It is the body of `otpgate smsc-sim`.
func Run(ctx context.Context, addr string, cfg Options) error {
	s, err := Listen(addr, cfg)
	if err != nil {
		return err
	}
	s.log.Info("smsc simulator listening", "addr", s.Addr(), "system_id", s.cfg.SystemID)
	<-ctx.Done()
	return s.Close()
}

var _ io.Closer = (*Server)(nil)
