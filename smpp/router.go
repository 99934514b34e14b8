package smpp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/otpgate/otpgate/otp"
)

// Route sends the numbers it matches to its carriers, in failover order.
// Countries holds ISO 3166 alpha-2 codes ("*" matches every number);
// Prefixes holds E.164 prefixes such as "+4477".
type Route struct {
	Countries []string
	Prefixes  []string
	Carriers  []string
}

// Router retries after throttling (see throttle.go).
const (
	retryMin  = 50 * time.Millisecond
	retryMax  = time.Second
	maxPasses = 5 // only when ctx has no deadline
)

type route struct {
	countries map[string]bool
	any       bool
	prefixes  []string // digits, no '+'
	carriers  []*Carrier
	index     int
}

// Router picks a route for each SMS and hands it to the route's carriers
// in order. It is immutable and safe for concurrent use.
type Router struct {
	routes []route
	log    *slog.Logger
	logLim *everyLimiter
}

var _ otp.Sender = (*Router)(nil)

// NewRouter checks routes against carriers and returns a Router. A route
// that names an unknown carrier, has no carrier, or matches nothing (no
// country, no prefix) is an error.
func NewRouter(routes []Route, carriers map[string]*Carrier, logger *slog.Logger) (*Router, error) {
	if logger == nil {
		logger = discardLogger()
	}
	r := &Router{log: logger.With(keyComponent, "router"), logLim: newEveryLimiter(repeatEvery)}
	for i, rt := range routes {
		out := route{countries: make(map[string]bool), index: i}
		for _, c := range rt.Countries {
			c = strings.ToUpper(strings.TrimSpace(c))
			if c == "*" {
				out.any = true
				continue
			}
			if c == "" {
				return nil, fmt.Errorf("smpp: route %d: empty country", i)
			}
			out.countries[c] = true
		}
		for _, p := range rt.Prefixes {
			d := strings.TrimPrefix(strings.TrimSpace(p), "+")
			if d == "" || digitsOnly(d) != d {
				return nil, fmt.Errorf("smpp: route %d: bad prefix %q", i, p)
			}
			out.prefixes = append(out.prefixes, d)
		}
		if !out.any && len(out.countries) == 0 && len(out.prefixes) == 0 {
			return nil, fmt.Errorf("smpp: route %d: no countries or prefixes", i)
		}
		if len(rt.Carriers) == 0 {
			return nil, fmt.Errorf("smpp: route %d: no carriers", i)
		}
		for _, name := range rt.Carriers {
			c := carriers[name]
			if c == nil {
				return nil, fmt.Errorf("smpp: route %d: unknown carrier %q", i, name)
			}
			out.carriers = append(out.carriers, c)
		}
		r.routes = append(r.routes, out)
	}
	return r, nil
}

// match returns the first route for sms, or nil.
func (r *Router) match(sms otp.SMS) *route {
	to := digitsOnly(sms.To)
	country := strings.ToUpper(sms.Country)
	for i := range r.routes {
		rt := &r.routes[i]
		if rt.any || (country != "" && rt.countries[country]) {
			return rt
		}
		for _, p := range rt.prefixes {
			if strings.HasPrefix(to, p) {
				return rt
			}
		}
	}
	return nil
}

// Send submits sms through the first matching route's carriers in order.
// A carrier with no bound session is skipped at once; one that is not
// bound, throttles, rejects the message with a temporary status, or loses
// its session before writing the submit passes the message to the next.
// It returns otp.ErrInvalidNumber (wrapped) when a carrier rejects the
// destination permanently, and otp.ErrUpstreamDown (wrapped) when there
// is no route, no carrier of the route is bound (at once, without waiting
// for ctx), every carrier failed, ctx ended, or a submit's outcome is
// unknown (written but unanswered: not retried, to avoid a duplicate OTP).
// When every carrier that could take the message throttled it, Send
// backs off (50ms doubling to 1s, jittered) and tries the route again
// until ctx's deadline (5 passes when ctx has none).
//
// A session that dies with a submit in flight gets that submit retried
// once on another session of the same carrier, even when the lost submit
// had already been written: the handset then gets at most one extra copy,
// which beats losing the OTP (see WithDuplicateAllowed). A submit the SMSC
// simply never answers is not retried.
func (r *Router) Send(ctx context.Context, sms otp.SMS) (otp.Sent, error) {
	ctx = WithDuplicateAllowed(ctx)
	rt := r.match(sms)
	if rt == nil {
		return otp.Sent{}, fmt.Errorf("smpp: router: no route for %s: %w", sms.Country, otp.ErrUpstreamDown)
	}
	var (
		lastErr error
		bo      = backoff{min: retryMin, max: retryMax}
	)
	for pass := 1; ; pass++ {
		bound, throttled, stop := false, false, false
		for _, c := range rt.carriers {
			if c.Bound() == 0 {
				continue
			}
			bound = true
			ids, err := c.Submit(ctx, sms)
			if err == nil {
				return otp.Sent{Carrier: c.Name(), MessageIDs: ids}, nil
			}
			lastErr = err
			var se *StatusError
			if errors.As(err, &se) && se.Permanent() && !errors.Is(err, ErrPartial) {
				return otp.Sent{}, fmt.Errorf("smpp: router: %w: %w", otp.ErrInvalidNumber, err)
			}
			if !failover(err) {
				stop = true
				break
			}
			throttled = throttled || errors.Is(err, ErrThrottled)
			warnLimited(r.log, r.logLim, slog.LevelInfo, c.Name(), "carrier failed, trying next", keyCarrier, c.Name(),
				keyRoute, rt.index, keyRequestID, sms.RequestID, keyError, err)
		}
		if !bound {
			if lastErr == nil {
				return otp.Sent{}, fmt.Errorf("smpp: router: route %d: no carrier bound: %w", rt.index, otp.ErrUpstreamDown)
			}
			break
		}
		_, hasDeadline := ctx.Deadline()
		if stop || !throttled || (!hasDeadline && pass >= maxPasses) {
			break
		}
		// Every carrier that could take it throttled: back off and retry
		// within ctx.
		wait := bo.next()
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			break
		}
		if !sleep(ctx, wait) {
			break
		}
	}
	if maybeSent(lastErr) {
		return otp.Sent{}, fmt.Errorf("smpp: router: %w: %w: %w", otp.ErrUpstreamDown, otp.ErrOutcomeUnknown, lastErr)
	}
	return otp.Sent{}, fmt.Errorf("smpp: router: %w: %w", otp.ErrUpstreamDown, lastErr)
}

// maybeSent reports whether err leaves the SMS possibly delivered: a submit
// (or part) written and never answered, or parts already accepted.
func maybeSent(err error) bool {
	var lost *SessionLostError
	return errors.Is(err, ErrUnanswered) || errors.Is(err, ErrPartial) || (errors.As(err, &lost) && lost.Written)
}

// failover reports whether err leaves the message certainly unsent, so
// that the next carrier may take it.
func failover(err error) bool {
	if errors.Is(err, ErrPartial) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var lost *SessionLostError
	if errors.As(err, &lost) {
		return !lost.Written
	}
	var se *StatusError
	return errors.Is(err, ErrNotBound) || errors.Is(err, ErrThrottled) || errors.As(err, &se)
}
