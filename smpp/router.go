package smpp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/otpgate/otpgate/internal/ctxsleep"
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
			d, err := ParsePrefix(p)
			if err != nil {
				return nil, fmt.Errorf("smpp: route %d: %w", i, err)
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

// ParsePrefix reads a route's E.164 prefix, "+" and one or more digits
// ("+4477"), and returns its digits.
func ParsePrefix(p string) (string, error) {
	d, ok := strings.CutPrefix(strings.TrimSpace(p), "+")
	if !ok || d == "" || digitsOnly(d) != d {
		return "", fmt.Errorf("smpp: prefix %q: want \"+\" and digits", p)
	}
	return d, nil
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
// A carrier with no bound session is skipped at once, and so is a degraded
// one (a submit of it went unanswered for its submit_ack_timeout) while
// another carrier of the route is bound and healthy. A carrier that
// throttles, rejects the message with a status, stalls (no
// submit_sm_resp within its stall_timeout, or a window full of unanswered
// submits) or loses its session before writing the submit passes the
// message to the next. A status saying our settings are wrong for that
// carrier (see StatusError.Misconfigured) is logged at ERROR.
//
// It returns otp.ErrInvalidNumber (wrapped) only when every carrier it
// tried refused the destination itself (ESME_RINVDSTADR), and
// otp.ErrUpstreamDown (wrapped) when there is no route, no carrier of the
// route is bound (at once, without waiting for ctx), every carrier failed,
// or ctx ended; with otp.ErrOutcomeUnknown too when a submit was written
// and never answered (the handset may have the SMS). When every carrier
// that could take the message throttled it, Send backs off (50ms doubling
// to 1s, jittered) and tries the route again until ctx's deadline (5
// passes when ctx has none).
//
// A session that dies with a submit in flight gets that submit retried
// once on another session of the same carrier, even when the lost submit
// had already been written, and a stalled carrier's written submit is
// passed to the next carrier: the handset then gets at most one extra
// copy of the same text, which beats losing the OTP (see
// WithDuplicateAllowed).
func (r *Router) Send(ctx context.Context, sms otp.SMS) (otp.Sent, error) {
	ctx = WithDuplicateAllowed(ctx)
	rt := r.match(sms)
	if rt == nil {
		return otp.Sent{}, fmt.Errorf("smpp: router: no route for %s: %w", sms.Country, otp.ErrUpstreamDown)
	}
	var (
		candBuf [8]*Carrier // candidates of a pass, without an allocation for routes of up to 8 carriers
		lastErr error
		unknown bool // a submit was written and never answered
		bo      = backoff{min: retryMin, max: retryMax}
	)
	for pass := 1; ; pass++ {
		cands := rt.candidates(sms.Avoid, candBuf[:0])
		if len(cands) == 0 {
			if lastErr == nil {
				return otp.Sent{}, fmt.Errorf("smpp: router: route %d: no carrier bound: %w", rt.index, otp.ErrUpstreamDown)
			}
			break
		}
		throttled, stop, refused := false, false, 0
		for k, c := range cands {
			ids, err := c.Submit(withFailover(ctx, k+1 < len(cands)), sms)
			if err == nil {
				return otp.Sent{Carrier: c.Name(), MessageIDs: ids}, nil
			}
			lastErr = err
			unknown = unknown || maybeSent(err)
			var se *StatusError
			isStatus := errors.As(err, &se) && !errors.Is(err, ErrPartial)
			switch {
			case isStatus && se.Permanent():
				refused++
			case isStatus && se.Misconfigured():
				warnLimited(r.log, r.logLim, slog.LevelError, c.Name()+"/config",
					"carrier refuses our addressing: check its source_ton/source_npi/dest_ton/dest_npi and the sender",
					keyCarrier, c.Name(), keyRoute, rt.index, keyError, err)
			}
			if !failover(err) {
				stop = true
				break
			}
			throttled = throttled || errors.Is(err, ErrThrottled)
			warnLimited(r.log, r.logLim, slog.LevelInfo, c.Name(), "carrier failed, trying next", keyCarrier, c.Name(),
				keyRoute, rt.index, keyRequestID, sms.RequestID, keyError, err)
		}
		if !stop && refused == len(cands) {
			return otp.Sent{}, fmt.Errorf("smpp: router: %w: %w", otp.ErrInvalidNumber, lastErr)
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
		if !ctxsleep.Sleep(ctx, wait) {
			break
		}
	}
	if unknown {
		return otp.Sent{}, fmt.Errorf("smpp: router: %w: %w: %w", otp.ErrUpstreamDown, otp.ErrOutcomeUnknown, lastErr)
	}
	return otp.Sent{}, fmt.Errorf("smpp: router: %w: %w", otp.ErrUpstreamDown, lastErr)
}

// candidates returns the route's carriers that may take a message now, in
// failover order: the bound ones, less the degraded ones while a healthy
// carrier is among them (but for a probe now and then, see Carrier.probe),
// less those named in avoid. It appends to out.
func (rt *route) candidates(avoid []string, out []*Carrier) []*Carrier {
	healthy := false
	for _, c := range rt.carriers {
		if c.Usable() && !slices.Contains(avoid, c.Name()) {
			out = append(out, c)
			healthy = healthy || !c.Degraded()
		}
	}
	if !healthy {
		return out
	}
	kept := out[:0]
	now := time.Now()
	for _, c := range out {
		if !c.Degraded() || c.probe(now) {
			kept = append(kept, c)
		}
	}
	return kept
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
	if errors.Is(err, ErrStalled) {
		return true // written or not: withFailover allowed it
	}
	var lost *SessionLostError
	if errors.As(err, &lost) {
		return !lost.Written
	}
	var se *StatusError
	return errors.Is(err, ErrNotBound) || errors.Is(err, ErrThrottled) || errors.As(err, &se)
}
