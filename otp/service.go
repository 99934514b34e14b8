package otp

import (
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/otpgate/otpgate/guard"
	"github.com/otpgate/otpgate/phone"
)

// Channel is the only delivery channel the API knows.
const Channel = "smsotp"

// Service carries out send-otp, verify-otp and status requests. It is safe
// for concurrent use; Swap replaces its settings while requests run.
type Service struct {
	settings atomic.Pointer[Settings]
	store    Store
	receipts ReceiptStore
	sender   Sender
	limiter  Limiter
	guard    *guard.Guard // nil: no pumping guard
	hasher   *codeHasher  // of the secret
	log      *slog.Logger
	now      func() time.Time
	rand     io.Reader

	mu       sync.Mutex
	inflight map[string]struct{} // record keys with a send in progress

	verified chan string  // request ids to mark verified, drained by Run
	retries  chan Message // failed deliveries to retry, drained by Run
	texts    *textCache   // texts of live codes, for retries
	runMu    sync.RWMutex // read: an enqueue; write: Run stops taking them
	running  bool
}

// verifiedQueue bounds the request ids waiting to be marked verified; when
// it is full (or Run is not running) Verify marks them itself.
const verifiedQueue = 4096

// Options are what a Service needs. Now and Rand default to time.Now and
// crypto/rand; Logger to a discarding logger.
type Options struct {
	Store    Store
	Receipts ReceiptStore
	Sender   Sender
	Limiter  Limiter
	Guard    *guard.Guard // the pumping guard; nil for none
	Secret   []byte       // HMAC key for code hashes, at least 32 bytes
	Logger   *slog.Logger
	Now      func() time.Time
	Rand     io.Reader
}

// NewService returns a Service with the given settings.
func NewService(s *Settings, d Options) (*Service, error) {
	if s == nil || d.Store == nil || d.Receipts == nil || d.Sender == nil || d.Limiter == nil {
		return nil, errors.New("otp: new service: missing dependency")
	}
	if len(d.Secret) < 32 {
		return nil, errors.New("otp: new service: secret shorter than 32 bytes")
	}
	svc := &Service{store: d.Store, receipts: d.Receipts, sender: d.Sender, limiter: d.Limiter, guard: d.Guard,
		hasher: newCodeHasher(d.Secret), log: d.Logger, now: d.Now, rand: d.Rand, inflight: map[string]struct{}{},
		verified: make(chan string, verifiedQueue), retries: make(chan Message, retryQueue), texts: newTextCache(retryTexts)}
	if svc.log == nil {
		svc.log = slog.New(slog.DiscardHandler)
	}
	if svc.now == nil {
		svc.now = time.Now
	}
	if svc.rand == nil {
		svc.rand = defaultRand
	}
	svc.settings.Store(s)
	return svc, nil
}

// Swap installs new settings for the requests that start after it.
func (s *Service) Swap(st *Settings) { s.settings.Store(st) }

// Settings returns the settings in force.
func (s *Service) Settings() *Settings { return s.settings.Load() }

// Authenticate returns the id of the client whose API key is key:
// ErrNoAPIKey when key is empty, ErrInvalidAPIKey when no client has it.
func (s *Service) Authenticate(key string) (string, error) {
	if key == "" {
		return "", ErrNoAPIKey
	}
	id, ok := s.settings.Load().authenticate(key)
	if !ok {
		return "", ErrInvalidAPIKey
	}
	return id, nil
}

// SendRequest is a send-otp call. AuthClientID is the client of the API key.
type SendRequest struct {
	AuthClientID string
	ClientID     string
	PhoneNumber  string
	Channel      string
	CustomTextID string
}

// SendResult is what a successful send returns.
type SendResult struct {
	RequestID string
	Carrier   string
	Masked    string // masked number, for logs
}

// Send generates a code, hands the SMS to a carrier and, once the carrier
// acknowledged it, stores the code's HMAC durably. Errors: ErrCustomerNotFound,
// ErrUnprocessable (channel), ErrTooManyRequests (ErrGuarded among its
// causes: the pumping guard, consulted before the send is reserved), ErrInvalidNumber,
// ErrCustomTextNotFound, ErrBlocked, ErrUpstreamDown; anything else is an
// internal failure.
func (s *Service) Send(ctx context.Context, req SendRequest) (SendResult, error) {
	st := s.settings.Load()
	c, err := st.client(req.AuthClientID, req.ClientID)
	if err != nil {
		return SendResult{}, err
	}
	if req.Channel != Channel {
		return SendResult{}, ErrUnprocessable
	}
	if !s.limiter.Allow("client/"+c.ID, c.RatePerSecond, c.RateBurst) {
		return SendResult{}, ErrClientRate
	}
	num, err := st.number(c, req.PhoneNumber)
	if err != nil {
		return SendResult{}, err
	}
	res := SendResult{Masked: num.Masked()}
	tpl, ok := c.template(req.CustomTextID)
	if !ok || tpl.Length() < st.Policy.MinDigits {
		return res, ErrCustomTextNotFound
	}
	key := RecordKey(c.ID, num.E164())
	if !s.acquire(key) {
		return res, ErrSendInProgress
	}
	defer s.release(key)

	now := s.now()
	tk, err := s.admit(now, c.ID, num)
	if err != nil {
		return res, err
	}
	// Until the SMS is handed to a carrier, a return gives the guard its
	// count back.
	guarded := true
	defer func() {
		if guarded {
			s.unsent(tk)
		}
	}()
	if err := s.reserve(ctx, key, st.Policy, now); err != nil {
		return res, err
	}
	code, err := NewCode(s.rand, tpl.Length())
	if err != nil {
		return res, err
	}
	reqID, err := newRequestID(s.rand, now)
	if err != nil {
		return res, err
	}
	res.RequestID = reqID

	sctx, cancel := context.WithTimeout(ctx, st.Policy.SubmitTimeout)
	sms := SMS{RequestID: reqID, ClientID: c.ID, Source: c.Sender, To: num.E164(),
		MaskedTo: res.Masked, Country: num.Country, CountryCode: num.CC, Text: tpl.Render(code), Masked: tpl.Masked(),
		Expires: now.Add(st.Policy.TTL), TLVs: c.tlvs(req.CustomTextID), Weight: c.Weight}
	sent, err := s.sender.Send(sctx, sms)
	cancel()
	if st.Policy.RetryUndelivered && (err == nil || errors.Is(err, ErrOutcomeUnknown)) {
		s.texts.put(reqID, sms, now.Add(st.Policy.TTL), now)
	}
	msg := Message{RequestID: reqID, ClientID: c.ID, Number: num.E164(), Display: num.Masked(), SubmittedAt: now}
	hash := s.hasher.hash(key, code.Reveal())
	if err != nil {
		if errors.Is(err, ErrOutcomeUnknown) {
			guarded = false
			s.sent(tk, "")
			// The handset may have the SMS: the send stays counted (or a
			// slow carrier would let SMS pumping through) and its code is
			// kept, so that it verifies. A late acknowledgement gives the
			// message its carrier and id.
			if _, serr := s.save(ctx, key, st.Policy, msg, hash, now); serr != nil {
				s.log.Warn("recording a send of unknown outcome failed", keyError, serr)
			}
			return res, fmt.Errorf("%w: %w", ErrUpstreamDown, err)
		}
		// Certainly not sent: the reservation is given back, so that the
		// caller may try again at once.
		s.unreserve(ctx, key, st.Policy, now)
		if errors.Is(err, ErrInvalidNumber) {
			return res, err
		}
		return res, fmt.Errorf("%w: %w", ErrUpstreamDown, err)
	}
	guarded = false
	s.sent(tk, sent.Carrier)
	res.Carrier = sent.Carrier
	msg.Carrier = sent.Carrier
	for _, id := range sent.MessageIDs {
		msg.Parts = append(msg.Parts, Part{MessageID: id, State: StateAccepted})
	}
	saved, err := s.save(ctx, key, st.Policy, msg, hash, now)
	if err != nil {
		// The SMS is out but its code could not be stored: it will not
		// verify. The send stays counted.
		return res, fmt.Errorf("%w: save send: %w", ErrUnavailable, err)
	}
	// A receipt that came before the save (a fast carrier, a busy store)
	// was kept pending and applied by it: a failure it reports is
	// retried as if it had come after.
	if state, _, _ := saved.Summary(); state.Failed() {
		s.RetryFailed(saved)
	}
	return res, nil
}

// storeTimeout bounds each store write of the send and verify paths.
const storeTimeout = 10 * time.Second

// reserve checks resend_interval and max_per_number_per_hour against the
// record under key and counts a send at now, in one durable write, before
// any SMS goes out: a store that cannot write costs no SMS (ErrUnavailable),
// and no failure after the submit can leave a sent SMS uncounted.
func (s *Service) reserve(ctx context.Context, key string, p Policy, now time.Time) error {
	wctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	err := s.store.UpdateOTP(wctx, key, func(r *Record, found bool) (Change, error) {
		if !found {
			*r = Record{Key: key}
		}
		if err := p.checkResend(r.Sends, now); err != nil {
			return Keep, err
		}
		r.Sends = append(pruneSends(r.Sends, now), now)
		return p.settle(r), nil
	})
	switch {
	case err == nil, errors.Is(err, ErrResendTooSoon), errors.Is(err, ErrHourlyCap):
		return err
	}
	return fmt.Errorf("%w: reserve send: %w", ErrUnavailable, err)
}

// unreserve takes back the send reserve counted at now, when the SMS
// certainly did not go out. It is best effort: should the write fail, the
// send stays counted, the safe side.
func (s *Service) unreserve(ctx context.Context, key string, p Policy, now time.Time) {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	err := s.store.UpdateOTP(wctx, key, func(r *Record, found bool) (Change, error) {
		i := slices.IndexFunc(r.Sends, func(t time.Time) bool { return t.Equal(now) })
		if !found || i < 0 {
			return Keep, nil
		}
		r.Sends = slices.Delete(slices.Clone(r.Sends), i, i+1)
		return p.settle(r), nil
	})
	if err != nil {
		s.log.Warn("giving back the reservation of an unsent SMS failed: it stays counted", keyError, err)
	}
}

// save stores msg and makes hash the record's live code (the send was
// counted by reserve). The carrier has (or may have) the message: it is
// stored even if the caller went away.
func (s *Service) save(ctx context.Context, key string, p Policy, msg Message, hash []byte, now time.Time) (Message, error) {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	return s.store.SaveSend(wctx, key, msg, func(r *Record, found bool) {
		if !found {
			*r = Record{Key: key}
		}
		p.expireAttempts(r, now)
		r.CodeHash = hash
		r.ExpiresAt = now.Add(p.TTL)
		r.RequestID = msg.RequestID
		r.Carrier = msg.Carrier
		r.Sends = pruneSends(r.Sends, now)
		r.KeepUntil = p.keepUntil(r)
	})
}

// VerifyRequest is a verify-otp call.
type VerifyRequest struct {
	AuthClientID string
	ClientID     string
	PhoneNumber  string
	OTP          string
}

// VerifyResult describes a verification.
type VerifyResult struct {
	RequestID string // the send whose code matched
	Masked    string
}

// Verify checks a code in one store transaction. Errors: ErrCustomerNotFound,
// ErrTooManyRequests (client rate), ErrInvalidNumber, ErrBlocked,
// ErrNotFound, ErrMaxAttempts, ErrInvalidOTP.
func (s *Service) Verify(ctx context.Context, req VerifyRequest) (VerifyResult, error) {
	st := s.settings.Load()
	c, err := st.client(req.AuthClientID, req.ClientID)
	if err != nil {
		return VerifyResult{}, err
	}
	if !s.limiter.Allow("client/"+c.ID, c.RatePerSecond, c.RateBurst) {
		return VerifyResult{}, ErrClientRate
	}
	num, err := st.number(c, req.PhoneNumber)
	if err != nil {
		return VerifyResult{}, err
	}
	res := VerifyResult{Masked: num.Masked()}
	key := RecordKey(c.ID, num.E164())
	p := st.Policy
	var conv conversion // for the guard, from the run of fn that committed
	// The guess is hashed here, once: fn runs on the store's one writer
	// (and again when a batch is rebuilt).
	guess := s.hasher.hash(key, req.OTP)
	err = s.store.UpdateOTP(ctx, key, func(r *Record, found bool) (Change, error) {
		if !found {
			return Keep, ErrNotFound
		}
		now := s.now()
		if r.Attempts >= p.MaxAttempts && now.Before(r.LastFailAt.Add(p.TTL)) {
			return Keep, ErrMaxAttempts
		}
		p.expireDayFails(r, now)
		if p.MaxFailuresPerDay > 0 && r.DayFails >= p.MaxFailuresPerDay {
			return Keep, ErrDailyFailures
		}
		p.expireAttempts(r, now)
		if r.CodeHash == nil || !now.Before(r.ExpiresAt) {
			return p.settle(r), ErrNotFound
		}
		if !hmac.Equal(guess, r.CodeHash) {
			r.Attempts++
			r.LastFailAt = now
			if r.DayFails == 0 {
				r.DayStart = now
			}
			r.DayFails++
			r.KeepUntil = p.keepUntil(r)
			return Put, ErrInvalidOTP
		}
		res.RequestID = r.RequestID
		conv = conversion{at: now, sentAt: r.ExpiresAt.Add(-p.TTL), carrier: r.Carrier}
		if n := len(r.Sends); n > 0 {
			conv.sentAt = r.Sends[n-1]
		}
		r.CodeHash, r.ExpiresAt, r.RequestID = nil, time.Time{}, ""
		r.Attempts, r.LastFailAt = 0, time.Time{}
		return p.settle(r), nil
	})
	switch {
	case err == nil:
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrMaxAttempts), errors.Is(err, ErrInvalidOTP):
		return res, err
	default:
		return res, fmt.Errorf("%w: verify: %w", ErrUnavailable, err)
	}
	s.converted(c.ID, num, conv)
	// The status API's "verified" need not hold up the answer: Run marks
	// it in the background, where concurrent verifies share a commit.
	if s.enqueueVerified(res.RequestID) {
		return res, nil
	}
	s.markVerified(ctx, res.RequestID)
	return res, nil
}

// enqueueVerified hands requestID to Run, unless Run is not taking any or
// its queue is full.
func (s *Service) enqueueVerified(requestID string) bool {
	s.runMu.RLock()
	defer s.runMu.RUnlock()
	if !s.running {
		return false
	}
	select {
	case s.verified <- requestID:
		return true
	default:
		return false
	}
}

func (s *Service) markVerified(ctx context.Context, requestID string) {
	if requestID == "" {
		return
	}
	if err := s.receipts.MarkVerified(ctx, requestID); err != nil && !errors.Is(err, ErrRequestNotFound) {
		s.log.Warn("mark verified failed", keyRequestID, requestID, keyError, err)
	}
}

// Run marks verified requests and retries failed deliveries (see
// RetryFailed) in the background until ctx is done, then marks the
// verified requests still queued and returns; queued retries are dropped.
// Without Run, Verify marks them itself before answering.
func (s *Service) Run(ctx context.Context) {
	s.runMu.Lock()
	s.running = true
	s.runMu.Unlock()
	const workers = 16
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case msg := <-s.retries:
				s.retry(ctx, msg)
			case <-ctx.Done():
				return
			}
		}
	}()
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case id := <-s.verified:
					s.markVerified(context.WithoutCancel(ctx), id)
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	wg.Wait()
	s.runMu.Lock() // no enqueue is in progress after this
	s.running = false
	s.runMu.Unlock()
	for {
		select {
		case id := <-s.verified:
			s.markVerified(context.WithoutCancel(ctx), id)
		default:
			return
		}
	}
}

// Status returns the message of requestID if it belongs to the client of
// the key: ErrRequestNotFound otherwise.
func (s *Service) Status(ctx context.Context, authClientID, requestID string) (Message, error) {
	if requestID == "" || len(requestID) > 64 {
		return Message{}, ErrRequestNotFound
	}
	m, err := s.receipts.Message(ctx, requestID)
	if errors.Is(err, ErrRequestNotFound) {
		return Message{}, err
	}
	if err != nil {
		return Message{}, fmt.Errorf("%w: status: %w", ErrUnavailable, err)
	}
	if m.ClientID != authClientID {
		return Message{}, ErrRequestNotFound
	}
	return m, nil
}

func (st *Settings) client(authID, bodyID string) (*client, error) {
	c, ok := st.clients[bodyID]
	if !ok || authID != bodyID {
		return nil, ErrCustomerNotFound
	}
	return c, nil
}

func (st *Settings) number(c *client, raw string) (phone.Number, error) {
	num, err := phone.Parse(raw)
	if err != nil {
		return phone.Number{}, ErrInvalidNumber
	}
	if _, blocked := st.blocked[num.E164()]; blocked {
		return num, ErrBlocked
	}
	if !c.allows(num.Country) {
		return num, ErrInvalidNumber
	}
	return num, nil
}

func (s *Service) acquire(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, busy := s.inflight[key]; busy {
		return false
	}
	s.inflight[key] = struct{}{}
	return true
}

func (s *Service) release(key string) {
	s.mu.Lock()
	delete(s.inflight, key)
	s.mu.Unlock()
}

// checkResend applies resend_interval and max_per_number_per_hour to the
// send history.
func (p Policy) checkResend(sends []time.Time, now time.Time) error {
	sends = pruneSends(sends, now)
	if n := len(sends); n > 0 && now.Sub(sends[n-1]) < p.ResendInterval {
		return ErrResendTooSoon
	}
	if p.MaxPerNumberPerHour > 0 && len(sends) >= p.MaxPerNumberPerHour {
		return ErrHourlyCap
	}
	return nil
}

// pruneSends drops sends older than an hour.
func pruneSends(sends []time.Time, now time.Time) []time.Time {
	i := 0
	for i < len(sends) && !sends[i].After(now.Add(-time.Hour)) {
		i++
	}
	return append([]time.Time(nil), sends[i:]...)
}

// expireAttempts forgets wrong guesses once ttl has passed since the last.
func (p Policy) expireAttempts(r *Record, now time.Time) {
	if r.Attempts > 0 && !now.Before(r.LastFailAt.Add(p.TTL)) {
		r.Attempts, r.LastFailAt = 0, time.Time{}
	}
}

// failureWindow is how long max_failures_per_day counts, from the first
// wrong guess of a window.
const failureWindow = 24 * time.Hour

// expireDayFails starts a new daily window once the current one is over.
func (p Policy) expireDayFails(r *Record, now time.Time) {
	if r.DayFails > 0 && !now.Before(r.DayStart.Add(failureWindow)) {
		r.DayFails, r.DayStart = 0, time.Time{}
	}
}

// keepUntil is when the record stops mattering: the code expired, the
// wrong-guess counts lapsed and the last send left the hourly window.
func (p Policy) keepUntil(r *Record) time.Time {
	var t time.Time
	later := func(u time.Time) {
		if u.After(t) {
			t = u
		}
	}
	if r.CodeHash != nil {
		later(r.ExpiresAt)
	}
	if r.Attempts > 0 {
		later(r.LastFailAt.Add(p.TTL))
	}
	if r.DayFails > 0 {
		later(r.DayStart.Add(failureWindow))
	}
	if n := len(r.Sends); n > 0 {
		later(r.Sends[n-1].Add(time.Hour))
	}
	return t
}

// settle recomputes KeepUntil and says whether to put or delete the record.
func (p Policy) settle(r *Record) Change {
	r.KeepUntil = p.keepUntil(r)
	if r.KeepUntil.IsZero() {
		return Delete
	}
	return Put
}
