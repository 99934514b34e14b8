package callback

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"time"

	"github.com/otpgate/otpgate/otp"
)

// Defaults of Options.
const (
	// DefaultTimeout bounds one POST, response included.
	DefaultTimeout = 10 * time.Second
	// DefaultWorkers is how many POSTs may be in flight in all.
	DefaultWorkers = 16
	// DefaultPerClient is how many POSTs may be in flight to one client
	// (to an endpoint whose last try succeeded; to any other, one).
	DefaultPerClient = 4
	// DefaultCircuitThreshold is how many consecutive failed tries to one
	// endpoint open its circuit.
	DefaultCircuitThreshold = 5
	// DefaultCircuitCooldown is how long an open circuit lets no request
	// through before one probe.
	DefaultCircuitCooldown = 30 * time.Second
	// DefaultPollInterval is how often the queue is read when nothing
	// announces a callback.
	DefaultPollInterval = time.Second
	// maxRedirects bounds the same-host 307/308 redirects followed.
	maxRedirects = 3
	// maxResponseBody is how much of a response is read (and dropped) so
	// that the connection can be reused.
	maxResponseBody = 64 << 10
)

// Outcomes passed to Options.Observe.
const (
	OutcomeDelivered = "delivered" // the endpoint answered 2xx
	OutcomeRetry     = "retry"     // a try failed; another is scheduled
	OutcomeDropped   = "dropped"   // given up after otp.CallbackMaxAge
	// OutcomeShortCircuited: the endpoint's circuit was open, so the try
	// was counted as failed without a request; another is scheduled.
	OutcomeShortCircuited = "short_circuited"
)

// Options tunes a Dispatcher. The zero value gives the production
// behaviour (README.md, "Delivery receipts and callbacks").
type Options struct {
	// Client sends the POSTs; nil means one with Timeout that follows only
	// 307/308 redirects to the same scheme and host.
	Client *http.Client
	// Timeout bounds each POST; 0 means DefaultTimeout.
	Timeout time.Duration
	// Workers bounds the POSTs in flight; 0 means DefaultWorkers.
	Workers int
	// PerClient bounds the POSTs in flight to one client; 0 means
	// DefaultPerClient. An endpoint whose last try failed, or that has not
	// been tried yet, gets one POST at a time, and the endpoints whose
	// last try failed share at most half of Workers.
	PerClient int
	// CircuitThreshold is how many consecutive failed tries to one
	// endpoint (a client's URL) open its circuit; 0 means
	// DefaultCircuitThreshold. While open, its due callbacks are
	// short-circuited (rescheduled at their back-off without a request)
	// but for one probe once CircuitCooldown has passed; the cool-down
	// doubles after each failed probe, up to ten times CircuitCooldown.
	// The first 2xx closes the circuit.
	CircuitThreshold int
	// CircuitCooldown: 0 means DefaultCircuitCooldown.
	CircuitCooldown time.Duration
	// Circuit, when set, is called with the client's id each time the
	// circuit of one of its endpoints opens (true) or closes (false),
	// for a gauge. It is called from Run's goroutine.
	Circuit func(clientID string, open bool)
	// RetryBase, MaxInterval and MaxAge set the schedule (see
	// otp.CallbackDelay); 0 means otp.CallbackRetryBase,
	// otp.CallbackMaxInterval and otp.CallbackMaxAge.
	RetryBase   time.Duration
	MaxInterval time.Duration
	MaxAge      time.Duration
	// PollInterval is how often the queue is read without a Notify; 0
	// means DefaultPollInterval.
	PollInterval time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Jitter returns numbers in [0, 1) for the back-off; nil means
	// math/rand/v2's Float64.
	Jitter func() float64
	// Logger gets one line per failed try and per dropped callback; nil
	// discards.
	Logger *slog.Logger
	// Observe, when set, is called with each try's outcome (OutcomeDelivered,
	// OutcomeRetry, OutcomeShortCircuited, OutcomeDropped) once the queue
	// records it. It must be safe for concurrent use.
	Observe func(outcome string)
}

// Settings returns where a client's callbacks of kind go (the
// callback_url for receipts, the mo_callback_url for MO messages) and the
// callback_secret; ok is false when the client has no such URL (those
// callbacks are then dropped).
type Settings func(clientID string, kind otp.CallbackKind) (url, secret string, ok bool)

// Dispatcher delivers the callbacks of a queue. Run drains the queue; New
// only builds. Notify is safe to call from any goroutine at any time.
type Dispatcher struct {
	q        otp.CallbackQueue
	settings Settings
	opts     Options
	client   *http.Client
	log      *slog.Logger
	wake     chan struct{}
}

// New returns a Dispatcher of q. settings is asked at each try, so a
// reload that changes a client's callback_url or secret applies to the
// callbacks already queued.
func New(q otp.CallbackQueue, settings Settings, opts Options) *Dispatcher {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Workers <= 0 {
		opts.Workers = DefaultWorkers
	}
	if opts.PerClient <= 0 {
		opts.PerClient = DefaultPerClient
	}
	if opts.CircuitThreshold <= 0 {
		opts.CircuitThreshold = DefaultCircuitThreshold
	}
	if opts.CircuitCooldown <= 0 {
		opts.CircuitCooldown = DefaultCircuitCooldown
	}
	if opts.Circuit == nil {
		opts.Circuit = func(string, bool) {}
	}
	if opts.RetryBase <= 0 {
		opts.RetryBase = otp.CallbackRetryBase
	}
	if opts.MaxInterval <= 0 {
		opts.MaxInterval = otp.CallbackMaxInterval
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = otp.CallbackMaxAge
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Jitter == nil {
		opts.Jitter = rand.Float64
	}
	if opts.Observe == nil {
		opts.Observe = func(string) {}
	}
	lg := opts.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	client := opts.Client
	if client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = opts.PerClient
		client = &http.Client{Transport: tr, Timeout: opts.Timeout, CheckRedirect: sameHostRedirect}
	}
	return &Dispatcher{q: q, settings: settings, opts: opts, client: client, log: lg, wake: make(chan struct{}, 1)}
}

// sameHostRedirect follows a redirect only when it keeps the method and
// body (307, 308) and the scheme and host; otherwise the redirect response
// itself is the answer, which is not a 2xx, so the callback is retried.
func sameHostRedirect(req *http.Request, via []*http.Request) error {
	first := via[0].URL
	if len(via) > maxRedirects || req.URL.Scheme != first.Scheme || req.URL.Host != first.Host {
		return http.ErrUseLastResponse
	}
	if req.Response == nil || (req.Response.StatusCode != http.StatusTemporaryRedirect &&
		req.Response.StatusCode != http.StatusPermanentRedirect) {
		return http.ErrUseLastResponse
	}
	return nil
}

// Notify tells Run that callbacks were queued, so that it reads the queue
// now rather than at its next poll. It never blocks.
func (d *Dispatcher) Notify() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// tryResult is how one try of a callback ended.
type tryResult int

const (
	tryCut       tryResult = iota // cut short by shutdown: the queue is untouched
	tryDelivered                  // the endpoint answered 2xx
	tryFailed                     // no 2xx: retried later, or dropped
)

// deliver makes one try of cb and records its outcome in the queue.
func (d *Dispatcher) deliver(ctx context.Context, cb otp.Callback, target, secret string) tryResult {
	status, err := d.post(ctx, cb, target, secret)
	if err != nil && ctx.Err() != nil {
		return tryCut // the callback stays queued as it was
	}
	// The queue is written even if ctx ends meanwhile, so that a delivered
	// callback is not sent again.
	wctx := context.WithoutCancel(ctx)
	lg := d.tryLogger(cb, target)
	if err == nil && status >= 200 && status < 300 {
		if err := d.q.CallbackDone(wctx, cb); err != nil {
			lg.Warn("delivered callback not removed: it will be sent again", "error", err)
		}
		d.opts.Observe(OutcomeDelivered)
		lg.Debug("callback delivered", "status", status)
		return tryDelivered
	}
	if err == nil {
		err = fmt.Errorf("callback: endpoint answered %d", status)
	}
	level := slog.LevelDebug // a dead endpoint fails every try: say so once per callback
	if cb.Attempts == 0 {
		level = slog.LevelWarn
	}
	d.retryLater(wctx, cb, lg, level, "callback failed: will retry", err, OutcomeRetry)
	return tryFailed
}

// shortCircuit counts a try of cb that its endpoint's open circuit
// skipped as a failed one: cb waits for its next try at the back-off, or
// is dropped past MaxAge, without a request.
func (d *Dispatcher) shortCircuit(ctx context.Context, cb otp.Callback, target string) {
	d.retryLater(context.WithoutCancel(ctx), cb, d.tryLogger(cb, target), slog.LevelDebug,
		"callback short-circuited: will retry", errCircuitOpen, OutcomeShortCircuited)
}

// errCircuitOpen is the error of a short-circuited try.
var errCircuitOpen = errors.New("callback: endpoint failing: circuit open")

// retryLater records a failed try of cb (err): it reschedules cb at the
// back-off and reports outcome, or drops cb when that would be past MaxAge.
func (d *Dispatcher) retryLater(ctx context.Context, cb otp.Callback, lg *slog.Logger, level slog.Level, msg string,
	err error, outcome string) {
	now := d.opts.Now()
	cb.Attempts++
	next := now.Add(otp.CallbackDelay(cb.Attempts, d.opts.RetryBase, d.opts.MaxInterval, d.opts.Jitter()))
	if next.Sub(cb.FirstAt) > d.opts.MaxAge {
		if err := d.q.CallbackDone(ctx, cb); err != nil {
			lg.Warn("dropped callback not removed", "error", err)
		}
		d.dropped(cb, err.Error())
		return
	}
	lg.Log(ctx, level, msg, "error", err, "retry_in", next.Sub(now).Round(time.Millisecond).String())
	if err := d.q.RescheduleCallback(ctx, cb, next); err != nil {
		lg.Warn("callback not rescheduled: it will be retried at once", "error", err)
	}
	d.opts.Observe(outcome)
}

// tryLogger is the logger of one try of cb to target.
func (d *Dispatcher) tryLogger(cb otp.Callback, target string) *slog.Logger {
	return d.log.With(keyRequestID, cb.RequestID, keyClient, cb.ClientID, keyState, string(cb.State),
		keyAttempt, cb.Attempts+1, keyHost, hostOf(target), keyKind, kindName(cb.Kind))
}

// dropped counts and logs a callback given up on.
func (d *Dispatcher) dropped(cb otp.Callback, why string) {
	d.opts.Observe(OutcomeDropped)
	d.log.Warn("callback dropped: endpoint failed for too long", keyRequestID, cb.RequestID, keyClient, cb.ClientID,
		keyState, string(cb.State), keyAttempts, cb.Attempts, keyQueuedAt, cb.FirstAt, keyError, why, keyKind, kindName(cb.Kind))
}

// kindName names a callback's kind in logs.
func kindName(k otp.CallbackKind) string {
	if k == otp.CallbackMO {
		return "mo"
	}
	return "receipt"
}

// post sends cb to target and returns the response's status code.
func (d *Dispatcher) post(ctx context.Context, cb otp.Callback, target, secret string) (int, error) {
	body := Body(cb)
	rctx, cancel := context.WithTimeout(ctx, d.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("callback: bad callback_url: %w", errors.Unwrap(err))
	}
	if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
		return 0, errors.New("callback: callback_url is not http or https")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "otpgate")
	req.Header.Set(SignatureHeader, Sign(secret, d.opts.Now(), body))
	resp, err := d.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL, which may carry a token
		}
		return 0, fmt.Errorf("callback: post: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBody))
	return resp.StatusCode, nil
}

// hostOf is the host of a callback URL, for logs: the path and query may
// carry a token.
func hostOf(target string) string {
	u, err := url.Parse(target)
	if err != nil {
		return ""
	}
	return u.Host
}
