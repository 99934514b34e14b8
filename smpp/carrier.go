package smpp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fiorix/go-smpp/smpp/pdu"

	"github.com/otpgate/otpgate/internal/ctxsleep"
	"github.com/otpgate/otpgate/otp"
)

// Defaults of CarrierOptions's zero fields (the config file's too).
const (
	DefaultWindow = 10 // unacknowledged submits per bind
	DefaultBurst  = 1  // token bucket depth
	DefaultBinds  = 1  // sessions (of each kind with transmitter+receiver)
)

// Carrier modes.
const (
	ModeTransceiver         = "transceiver"
	ModeTransmitterReceiver = "transmitter+receiver"
)

// Reconnect and shutdown timings (the back-off's are in reconnect.go).
const (
	bindLogEvery        = time.Minute // repeated bind failures are logged at most this often
	drainTimeout        = 10 * time.Second
	maxSourceShort      = 8 // digits of a short code
	defaultStallTimeout = 3 * time.Second
)

// ErrPartial means some parts of a long message were accepted before a
// later part failed: sending the message again elsewhere would duplicate
// them, so the router does not fail over.
var ErrPartial = errors.New("smpp: message partially submitted")

// CarrierOptions configures a Carrier. Zero fields take the documented
// defaults.
type CarrierOptions struct {
	Name, Address, SystemID, Password, SystemType string
	// Mode is "transceiver" (default) or "transmitter+receiver".
	Mode string
	// Binds is the number of sessions (of each kind with
	// transmitter+receiver); default 1.
	Binds int
	// TPS is the submits per second across all binds (token bucket taken
	// before each submit_sm); <=0 is unlimited.
	TPS float64
	// Burst is the bucket depth; default 1.
	Burst int
	// Window is the number of unacknowledged submits per bind; default 10.
	Window int
	// TLS, when set, wraps each connection in TLS.
	TLS *tls.Config
	// EnquireLink is the interval of our enquire_link; default 30s. Its
	// answer is not awaited: see InactivityTimeout.
	EnquireLink time.Duration
	// InactivityTimeout drops and redials a session from which no PDU at
	// all (a response, a deliver_sm, the SMSC's own enquire_link) was read
	// for that long; default 3 x EnquireLink (90s). One late
	// enquire_link_resp from a busy SMSC does not end a session.
	InactivityTimeout time.Duration
	// ReconnectDelay is the first step of the back-off before redialling a
	// bind that was lost before StableAfter, or refused with a status other
	// than the credential ones; default 10s. Each wait is jittered between
	// half and all of its step, and the step doubles up to
	// ReconnectDelayMax (default 5m). A dial that fails (network, TLS,
	// timeout) steps from min(ReconnectDelay, 1s) to 30s at most, on the
	// same back-off.
	ReconnectDelay, ReconnectDelayMax time.Duration
	// StableAfter is how long a bind must stay up to count as stable: when
	// it is lost it is redialled at once and the back-off starts over.
	// Default 60s.
	StableAfter time.Duration
	// AuthRetryDelay is how long every bind of the carrier waits after the
	// SMSC refused its credentials (ESME_RINVPASWD, ESME_RINVSYSID,
	// ESME_RINVSYSTYP) before one bind tries them again; RetryAuthNow
	// cuts it short. Default 10m: carriers lock accounts after a few bad
	// logins.
	AuthRetryDelay time.Duration
	// Dial opens connections; nil means a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Observer, when set, is told of submits, bind states, bind failures
	// and receipts.
	Observer Observer

	// SourceTON and SourceNPI override the sender id's type of number and
	// numbering plan (0..6, 0..18); nil derives them from the sender id:
	// alphanumeric 5/0, up to 8 digits 3/0, longer 1/1.
	SourceTON, SourceNPI *uint8
	// DestTON and DestNPI of every destination; nil means 1 (international)
	// and 1 (E.164). DestTON 2 (national) sends the number without its
	// country code (otp.SMS.CountryCode).
	DestTON, DestNPI *uint8
	// Validity is what validity_period says: ValidityTTL (default, "", the
	// code's remaining lifetime), ValidityFixed (ValidityPeriod) or
	// ValidityNone. A carrier that answers ESME_RINVEXPIRY gets the submit
	// again without one, and no validity_period from then on.
	Validity       string
	ValidityPeriod time.Duration
	// ValidityFormat is ValidityRelative (default) or ValidityAbsolute.
	ValidityFormat string
	// DCS0Charset is what the SMSC reads data_coding 0 as: CharsetGSM7
	// (default), CharsetLatin1 or CharsetASCII (see EncodeWith).
	DCS0Charset string
	// LongMessages is LongUDH (default), LongSAR or LongPayload.
	LongMessages string
	// RegisteredDelivery is the registered_delivery of every submit; nil
	// means 1 (a receipt on success and failure).
	RegisteredDelivery *uint8
	// ServiceType is the service_type of every submit (at most 5
	// characters); default empty.
	ServiceType string
	// TLVs go on every submit_sm through this carrier (every part of a long
	// message); an SMS's own TLVs (otp.SMS.TLVs) override them tag by tag.
	TLVs []otp.TLV
	// ReceiptLocation is the time zone in which the carrier writes its
	// receipts' done dates; nil means UTC.
	ReceiptLocation *time.Location
	// MO, when set, takes the MO messages the binds receive; nil acks them
	// unhandled.
	MO MOHandler
	// SubmitAckTimeout is how long a submit may stay unanswered before its
	// session is unbound and redialled and the carrier marked degraded;
	// default 30s.
	SubmitAckTimeout time.Duration
	// StallTimeout is how long a send waits for a submit_sm_resp (or for a
	// window slot held by unanswered submits) before it passes the message
	// to the route's next carrier; default 3s, negative: never (the send
	// waits until its deadline). Only when the route has another carrier.
	StallTimeout time.Duration
	// Fleet, when set, shares the binds with the other nodes of a fleet:
	// Binds is then the fleet's total (fleet.go).
	Fleet Fleet
	// OnLateAck, when set, is told of a submit_sm_resp that came after its
	// send stopped waiting (deadline or stall). It runs on the session's
	// reader goroutine and must not block.
	OnLateAck func(LateAck)
}

// LateAck is a submit_sm_resp that came after its send stopped waiting:
// the SMSC took part Part (0-based) of Parts of the SMS of RequestID under
// MessageID, and its receipt will name that id.
type LateAck struct {
	Carrier, RequestID, MessageID string
	Part, Parts                   int
}

// Carrier keeps the binds of one SMSC account up and submits SMS through
// them. Run owns the sessions; Submit, Bound and Name are safe for
// concurrent use, before, during and after Run.
type Carrier struct {
	cfg     CarrierOptions
	h       ReceiptHandler
	log     *slog.Logger
	logLim  *everyLimiter
	obs     Observer
	pace    *adaptive // token bucket and throttle back-off
	fair    *fairPace // pace's tokens shared fairly between clients (fair.go)
	sub     *submitOptions
	subErr  error      // what is wrong with cfg's submit settings; Run refuses to start
	auth    *authGate  // holds binds back after refused credentials
	recent  *recentIDs // ids its submit_sm_resps returned lately (recent.go)
	slots   []*slot
	ref     atomic.Uint32 // concatenation reference
	rr      atomic.Uint32 // round-robin start for session choice
	started atomic.Bool

	degraded atomic.Bool     // a submit went unanswered for SubmitAckTimeout; cleared by the next answer
	susp     suspension      // Suspend, Resume
	probedAt atomic.Int64    // unix nanos of the last send let through while degraded
	heldTx   atomic.Int32    // transmitting slots whose fleet lease this node holds
	shareMu  sync.Mutex      // orders heldTx's changes with the TPS share they set
	runCtx   context.Context // Run's; set before the slots start

	mu       sync.Mutex
	closing  bool
	inflight sync.WaitGroup // Add only under mu while !closing
}

// slot is one bind the carrier keeps up.
type slot struct {
	kind  bindKind
	index int
	sess  atomic.Pointer[session]
}

// name is the slot's name in logs, metrics and fleet leases ("trx-0").
func (sl *slot) name() string { return fmt.Sprintf("%s-%d", sl.kind, sl.index) }

func (sl *slot) live() *session {
	if s := sl.sess.Load(); s != nil && s.alive() {
		return s
	}
	return nil
}

// NewCarrier returns a carrier for cfg whose receipts go to h (nil acks
// receipts without handling them). It does not dial: Run does.
func NewCarrier(cfg CarrierOptions, h ReceiptHandler, logger *slog.Logger) *Carrier {
	if logger == nil {
		logger = discardLogger()
	}
	if cfg.Binds < 1 {
		cfg.Binds = DefaultBinds
	}
	if cfg.Window < 1 {
		cfg.Window = DefaultWindow
	}
	if cfg.Burst < 1 {
		cfg.Burst = DefaultBurst
	}
	if cfg.EnquireLink <= 0 {
		cfg.EnquireLink = defaultEnquire
	}
	if cfg.Mode == "" {
		cfg.Mode = ModeTransceiver
	}
	if cfg.SubmitAckTimeout <= 0 {
		cfg.SubmitAckTimeout = defaultAckTimeout
	}
	if cfg.StallTimeout == 0 {
		cfg.StallTimeout = defaultStallTimeout
	}
	cfg.reconnectDefaults()
	if cfg.Dial == nil {
		d := &net.Dialer{Timeout: defaultBindWait, KeepAlive: 30 * time.Second}
		cfg.Dial = d.DialContext
	}
	c := &Carrier{
		cfg:    cfg,
		h:      h,
		log:    logger.With(keyComponent, "smpp", keyCarrier, cfg.Name),
		obs:    cfg.Observer,
		logLim: newEveryLimiter(repeatEvery),
		auth:   newAuthGate(),
		recent: newRecentIDs(),
	}
	if c.obs == nil {
		c.obs = nopObserver{}
	}
	c.pace = newAdaptive(cfg.TPS, cfg.Burst)
	c.fair = newFairPace(c.pace)
	c.sub, c.subErr = newSubmitOptions(cfg)
	kinds := []bindKind{bindTransceiver}
	if cfg.Mode == ModeTransmitterReceiver {
		kinds = []bindKind{bindTransmitter, bindReceiver}
	}
	for _, k := range kinds {
		for i := 0; i < cfg.Binds; i++ {
			c.slots = append(c.slots, &slot{kind: k, index: i})
		}
	}
	return c
}

// ReportBinds tells the observer the state of every session again: after
// a carrier of the same name was replaced, the old one's last word (0)
// must not stand for the new one's binds.
func (c *Carrier) ReportBinds() {
	for _, sl := range c.slots {
		c.obs.BindState(c.cfg.Name, fmt.Sprintf("%s-%d", sl.kind, sl.index), sl.live() != nil)
	}
}

// Name returns the carrier's configured name.
func (c *Carrier) Name() string { return c.cfg.Name }

// Degraded reports whether a submit of this carrier went unanswered for
// SubmitAckTimeout and no submit has been answered since.
func (c *Carrier) Degraded() bool { return c.degraded.Load() }

// probe reports whether a degraded carrier may take one send now, to find
// out whether it recovered: one every SubmitAckTimeout. A probe that stalls
// costs its send StallTimeout before the next carrier takes it.
func (c *Carrier) probe(now time.Time) bool {
	last := c.probedAt.Load()
	if now.UnixNano()-last < int64(c.cfg.SubmitAckTimeout) {
		return false
	}
	return c.probedAt.CompareAndSwap(last, now.UnixNano())
}

// Bound returns the number of sessions currently bound that can transmit
// (0 while suspended, even before the sessions are unbound).
func (c *Carrier) Bound() int {
	if c.susp.isOn() {
		return 0
	}
	n := 0
	for _, sl := range c.slots {
		if sl.kind.canTransmit() && sl.live() != nil {
			n++
		}
	}
	return n
}

// Run keeps the binds up until ctx is done, reconnecting with jittered
// exponential back-off (see ReconnectDelay, StableAfter, AuthRetryDelay).
// Then it stops taking submits (they get ErrNotBound), waits up to 10s for
// those in flight, unbinds every session and returns nil. Run may be
// called once; a second call returns an error.
func (c *Carrier) Run(ctx context.Context) error {
	if !c.started.CompareAndSwap(false, true) {
		return fmt.Errorf("smpp: carrier %s: run called twice", c.cfg.Name)
	}
	if c.cfg.Mode != ModeTransceiver && c.cfg.Mode != ModeTransmitterReceiver {
		return fmt.Errorf("smpp: carrier %s: unknown mode %q", c.cfg.Name, c.cfg.Mode)
	}
	if c.subErr != nil {
		return fmt.Errorf("smpp: carrier %s: %w", c.cfg.Name, c.subErr)
	}
	keepCtx, stop := context.WithCancel(context.Background())
	defer stop()
	c.runCtx = ctx
	var wg sync.WaitGroup
	c.runSlots(ctx, keepCtx, &wg) // until ctx is done

	c.mu.Lock()
	c.closing = true
	c.mu.Unlock()
	drained := make(chan struct{})
	go func() {
		c.inflight.Wait()
		close(drained)
	}()
	t := time.NewTimer(drainTimeout)
	select {
	case <-drained:
	case <-t.C:
		c.log.Warn("submits still in flight at shutdown")
	}
	t.Stop()
	stop()
	wg.Wait()
	<-drained // sessions are closed, so the stragglers have failed
	return nil
}

// keep binds one slot again and again until ctx ends, then unbinds it;
// in a fleet, only while this node holds the slot's lease.
func (c *Carrier) keep(ctx context.Context, sl *slot) {
	if c.cfg.Fleet != nil {
		c.keepLeased(ctx, sl)
		return
	}
	c.keepBound(ctx, sl)
}

// keepBound binds one slot again and again until ctx ends, then unbinds
// it.
func (c *Carrier) keepBound(ctx context.Context, sl *slot) {
	log := c.log.With(keyBind, sl.kind.String(), keySlot, sl.index)
	cfg := sessionConfig{
		Kind:         sl.kind,
		SystemID:     c.cfg.SystemID,
		Password:     c.cfg.Password,
		SystemType:   c.cfg.SystemType,
		Window:       c.cfg.Window,
		EnquireLink:  c.cfg.EnquireLink,
		Handler:      c.h,
		Carrier:      c.cfg.Name,
		Logger:       log,
		Observer:     c.obs,
		LogLimit:     c.logLim,
		AckTimeout:   c.cfg.SubmitAckTimeout,
		StallTimeout: max(c.cfg.StallTimeout, 0),
		OnAckTimeout: func() {
			c.probedAt.Store(time.Now().UnixNano())
			if !c.degraded.Swap(true) {
				c.obs.Degraded(c.cfg.Name, true)
				c.log.Error("carrier degraded: submits unanswered; routes skip it while another carrier is healthy",
					keyTimeout, c.cfg.SubmitAckTimeout)
			}
		},
		OnSubmitAnswered: func() {
			if c.degraded.Load() && c.degraded.Swap(false) {
				c.obs.Degraded(c.cfg.Name, false)
				c.log.Info("carrier answers submits again: no longer degraded")
			}
		},
		MO:              c.cfg.MO,
		ReceiptLocation: c.cfg.ReceiptLocation,
		Recent:          c.recent,
	}
	cfg.InactivityTimeout = c.cfg.InactivityTimeout
	bindName := sl.name()
	c.obs.BindState(c.cfg.Name, bindName, false)
	b := c.newBackoff()
	var (
		failures    int
		netFailures int // failures but refused credentials, for fleetGiveUpAfter
		lastLog     time.Time
	)
	for {
		probe, ok := c.auth.enter(ctx)
		if !ok {
			return
		}
		s, err := dialSession(ctx, c.cfg.Dial, c.cfg.Address, c.cfg.TLS, cfg)
		c.auth.done(probe, err, c.cfg.AuthRetryDelay)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			failures++
			reason := bindFailureReason(err)
			c.obs.BindFailure(c.cfg.Name, reason)
			if status, refused := credentialsRefused(err); refused {
				// Every attempt is worth a line: each one brings the
				// account closer to a lock-out. The gate holds every bind
				// of the carrier until the retry.
				log.Error("bind refused: credentials rejected", keyStatus, status, keyReason, reason,
					keySystemID, c.cfg.SystemID, keyRetryIn, c.cfg.AuthRetryDelay, keyAddress, c.cfg.Address)
				continue
			}
			wait := c.failureWait(&b, reason)
			// One line when binds start failing, then one a minute.
			if failures == 1 || time.Since(lastLog) >= bindLogEvery {
				log.Warn("bind failed", keyError, err, keyReason, reason, keyRetries, failures, keyBackoff, wait, keyAddress, c.cfg.Address)
				lastLog = time.Now()
			} else {
				log.Debug("bind failed", keyError, err, keyReason, reason, keyRetries, failures, keyBackoff, wait)
			}
			netFailures++
			if c.cfg.Fleet != nil && netFailures >= fleetGiveUpAfter {
				// Maybe this node's own way to the SMSC is broken: the
				// lease goes back, for another node to try.
				log.Warn("cannot bind: giving the bind lease back to the fleet", keyRetries, netFailures)
				return
			}
			if !ctxsleep.Sleep(ctx, wait) {
				return
			}
			continue
		}
		log.Info("bound", keyAddress, c.cfg.Address, keyRetries, failures)
		failures, netFailures = 0, 0
		sl.sess.Store(s)
		c.obs.BindState(c.cfg.Name, bindName, true)
		boundAt := time.Now()
		select {
		case <-s.dead:
		case <-ctx.Done():
		}
		sl.sess.Store(nil)
		c.obs.BindState(c.cfg.Name, bindName, false)
		s.close()
		if ctx.Err() != nil {
			log.Info("unbound")
			return
		}
		wait := c.lossWait(&b, time.Since(boundAt))
		log.Warn("bind lost", keyError, s.Err(), keyUptime, time.Since(boundAt).Round(time.Millisecond), keyBackoff, wait)
		if !ctxsleep.Sleep(ctx, wait) {
			return
		}
	}
}

// backoff is exponential with "equal jitter": a wait is between half and
// all of the current step. Not safe for concurrent use.
type backoff struct {
	min, max, cur time.Duration
}

func (b *backoff) next() time.Duration { return b.nextIn(b.min, b.max) }

// nextIn is next for a wait whose cause calls for a step between floor and
// ceil: the step reached so far, raised to floor, lowered to ceil. The
// step reached still doubles, so causes that share a back-off keep its
// history.
func (b *backoff) nextIn(floor, ceil time.Duration) time.Duration {
	step := min(max(b.cur, floor), ceil, b.max)
	b.cur = max(b.cur, min(step*2, b.max))
	return step/2 + rand.N(step/2+1)
}

func (b *backoff) reset() { b.cur = 0 }

// Submit sends sms through one bound session, one submit_sm per part (all
// on that session), each after a token of the carrier's bucket (shared
// between clients by weight: fair.go), and
// returns the message ids in part order once every part is acknowledged.
//
// Errors: ErrNotBound at once when no session can transmit (or the carrier
// is stopping); ErrThrottled (a *StatusError with 0x58/0x14, or no token
// before ctx's deadline); *StatusError for another non-zero status;
// *SessionLostError (ErrSessionLost) when the session died with a part in
// flight; ErrPartial together with the cause when an earlier part was
// accepted; ctx's error. Each is wrapped with the carrier's name.
func (c *Carrier) Submit(ctx context.Context, sms otp.SMS) ([]string, error) {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return nil, c.errorf("%w", ErrNotBound)
	}
	c.inflight.Add(1)
	c.mu.Unlock()
	defer c.inflight.Done()

	if c.Bound() == 0 {
		if c.canForward(ctx) {
			return c.forward(ctx, sms)
		}
		return nil, c.errorf("%w", ErrNotBound)
	}
	enc, err := c.prepare(sms, c.ref.Add(1))
	if err != nil {
		return nil, c.errorf("%w", err)
	}
	var (
		s       *session
		retried bool
		dup     = duplicateAllowed(ctx)
		ids     = make([]string, 0, len(enc.Parts))
		bo      = backoff{min: retryMin, max: retryMax}
	)
	for i := 0; i < len(enc.Parts); {
		pctx := ctx
		if i > 0 {
			// Part 2+ stays with this carrier: the handset must not keep
			// half a message, and another carrier cannot finish it.
			pctx = withFailover(ctx, false)
		}
		if err := c.fair.wait(pctx, sms.ClientID, sms.Weight); err != nil {
			return nil, c.partErr(i, len(enc.Parts), err)
		}
		if s == nil || !s.alive() {
			if s = c.pick(); s == nil {
				return nil, c.partErr(i, len(enc.Parts), ErrNotBound)
			}
		}
		t0 := time.Now()
		id, err := c.submitPart(pctx, s, enc, i, c.lateAck(sms.RequestID, i, len(enc.Parts)))
		c.obs.Submit(c.cfg.Name, submitResult(err), time.Since(t0))
		if err != nil {
			// One retry on another session when the lost submit certainly
			// did not reach the SMSC, or the caller accepts a duplicate.
			var lost *SessionLostError
			if errors.As(err, &lost) && !retried && (!lost.Written || dup) {
				if next := c.pick(); next != nil {
					retried = true
					c.log.Info("session lost mid-submit, retrying on another session",
						keyRequestID, sms.RequestID, "written", lost.Written)
					s = next
					continue
				}
			}
			if errors.Is(err, ErrThrottled) {
				c.pace.throttled(time.Now())
			}
			// A later part refused for now is retried, on the same
			// session with the same reference, until ctx ends.
			if i > 0 && temporary(err) && ctxsleep.Sleep(ctx, bo.next()) {
				continue
			}
			return nil, c.partErr(i, len(enc.Parts), err)
		}
		c.pace.accepted(time.Now())
		ids = append(ids, id)
		i++
		bo.reset()
	}
	if c.log.Enabled(ctx, slog.LevelDebug) { // its boxed arguments cost 4 allocations a send
		c.log.Debug("submitted", keyRequestID, sms.RequestID, keyTo, sms.MaskedTo,
			keyParts, len(ids), keyMessageID, ids, keyText, sms.Masked)
	}
	return ids, nil
}

// lateAck returns the late handler of part i of n of requestID's SMS, or
// nil when nobody listens.
func (c *Carrier) lateAck(requestID string, i, n int) func(frame []byte) {
	if c.cfg.OnLateAck == nil || requestID == "" {
		return nil
	}
	return func(frame []byte) {
		id, status, _ := header(frame)
		if id != pdu.SubmitSMRespID || status != StatusOK {
			return
		}
		if msgID, _ := respMessageID(frame); msgID != "" {
			c.cfg.OnLateAck(LateAck{Carrier: c.cfg.Name, RequestID: requestID, MessageID: msgID, Part: i, Parts: n})
		}
	}
}

// temporary reports whether a submit's failure says "not now" rather than
// "never": throttling, a full queue, or a transient error of the SMSC.
func temporary(err error) bool {
	if errors.Is(err, ErrThrottled) {
		return true
	}
	var se *StatusError
	if errors.As(err, &se) {
		switch se.Status {
		case StatusSysErr, StatusSubmitFail, StatusRxTApp:
			return true
		}
	}
	return false
}

func (c *Carrier) errorf(format string, args ...any) error {
	return fmt.Errorf("smpp: carrier %s: "+format, append([]any{c.cfg.Name}, args...)...)
}

func (c *Carrier) partErr(i, n int, err error) error {
	if i == 0 {
		return c.errorf("submit: %w", err)
	}
	return c.errorf("submit part %d/%d: %w: %w", i+1, n, ErrPartial, err)
}

// pick returns the least loaded live session that can transmit, starting
// the scan at a rotating index so that ties are spread round robin.
func (c *Carrier) pick() *session {
	n := len(c.slots)
	start := int(c.rr.Add(1))
	var best *session
	var bestLoad int32
	for i := 0; i < n; i++ {
		sl := c.slots[(start+i)%n]
		if !sl.kind.canTransmit() {
			continue
		}
		s := sl.live()
		if s == nil {
			continue
		}
		if l := s.inflight.Load(); best == nil || l < bestLoad {
			best, bestLoad = s, l
		}
	}
	return best
}

func digitsOnly(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			b.WriteByte(s[i])
		}
	}
	return b.String()
}
