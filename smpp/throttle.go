package smpp

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Throttling back-off.
//
// A carrier paces its submits with one token bucket (TPS, Burst). When the
// SMSC answers ESME_RTHROTTLED or ESME_RMSGQFUL, the carrier has learnt
// that it sent faster than the SMSC takes: it sets the bucket's rate to
// the rate the SMSC actually accepted over the last second (half the
// current rate when nothing was accepted; never below 1/16 of TPS, or 1/s),
// at most once per quarter second however many throttles arrive together.
// Each second without a throttle it adds 5 % back (at least TPS/50, or
// 20/s when unlimited), up to TPS. So the carrier runs at the SMSC's real rate instead of
// halving blindly and idling (Kannel parks throttled messages for a
// minute). A carrier configured as unlimited gets a finite bucket at its
// first throttle (the accepted rate, or 20/s when the SMSC took nothing
// yet) and returns to unlimited once its rate has grown past 100,000/s.
//
// The router, when a pass over the route's carriers failed only because of
// throttling (or unbound carriers), waits a jittered back-off (50ms
// doubling to 1s) and makes another pass, until ctx's deadline (at most 5
// passes when ctx has none); its retry then waits for a token like any
// other submit.
const (
	decreaseEvery = 250 * time.Millisecond
	increaseEvery = time.Second
	increaseBy    = 1.05
	rateFloorDiv  = 16
	rateFloorMin  = 1
	slotLen       = 100 * time.Millisecond
	slots         = 10 // one second of accepted-submit counts
	unlimitedAt   = 100000
	unlimitedStep = 20 // added back per second at least, when TPS is unlimited
)

// adaptive is a carrier's pace. Safe for concurrent use.
type adaptive struct {
	lim  *rate.Limiter
	conf rate.Limit // configured rate; rate.Inf when unlimited
	max  rate.Limit // this node's share of conf (all of it outside a fleet)

	mu        sync.Mutex
	cur       rate.Limit
	changed   time.Time // last decrease or increase
	decreased time.Time // last decrease
	counts    [slots]int
	slot      int64 // index (time/slotLen) of the newest count
	first     time.Time
}

func newAdaptive(tps float64, burst int) *adaptive {
	a := &adaptive{conf: rate.Inf, max: rate.Inf, cur: rate.Inf}
	if tps > 0 {
		a.conf, a.max, a.cur = rate.Limit(tps), rate.Limit(tps), rate.Limit(tps)
	}
	a.lim = rate.NewLimiter(a.cur, max(burst, 1))
	return a
}

// advance moves the count window to now. Called with mu held.
func (a *adaptive) advance(now time.Time) {
	s := now.UnixNano() / int64(slotLen)
	if s-a.slot >= slots {
		a.counts = [slots]int{}
	} else {
		for i := a.slot + 1; i <= s; i++ {
			a.counts[i%slots] = 0
		}
	}
	if s > a.slot {
		a.slot = s
	}
}

// accepted counts an accepted submit.
func (a *adaptive) accepted(now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.first.IsZero() {
		a.first = now
	}
	a.advance(now)
	a.counts[a.slot%slots]++
}

// measured is the accepted rate over the last second (or since the first
// accepted submit, when that is more recent). Called with mu held.
func (a *adaptive) measured(now time.Time) rate.Limit {
	a.advance(now)
	n := 0
	for _, c := range a.counts {
		n += c
	}
	// Nine whole slots and the elapsed part of the current one.
	window := time.Duration(slots-1)*slotLen + time.Duration(now.UnixNano()%int64(slotLen))
	if since := now.Sub(a.first); !a.first.IsZero() && since < window {
		window = max(since, slotLen)
	}
	return rate.Limit(float64(n) / window.Seconds())
}

func (a *adaptive) floor() rate.Limit {
	if a.max == rate.Inf {
		return rateFloorMin
	}
	return max(a.max/rateFloorDiv, rateFloorMin)
}

// throttled records an SMSC throttle.
func (a *adaptive) throttled(now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.decreased.IsZero() && now.Sub(a.decreased) < decreaseEvery {
		return // one decrease per burst of throttles
	}
	m := a.measured(now)
	next := min(m, a.cur)
	switch {
	case m == 0 && a.cur == rate.Inf:
		// Throttled before any submit was accepted (just after a restart,
		// or an account already at its cap): half of unlimited is still
		// unlimited, so start from the least step of recovery.
		next = unlimitedStep
	case m == 0:
		next = a.cur / 2 // nothing accepted lately: no rate to learn from
	case m >= a.cur && a.cur != rate.Inf:
		next = a.cur * 0.9 // throttled at a rate the SMSC took a moment ago
	}
	a.cur = max(next, a.floor())
	a.decreased, a.changed = now, now
	a.lim.SetLimitAt(now, a.cur)
}

// recover adds 5 % per whole second since the last change. Called with mu
// held.
func (a *adaptive) recover(now time.Time) {
	if a.cur >= a.max {
		return
	}
	steps := now.Sub(a.changed) / increaseEvery
	if steps <= 0 {
		return
	}
	step := rate.Limit(unlimitedStep)
	if a.max != rate.Inf {
		step = max(a.max/50, rateFloorMin)
	}
	next := float64(a.cur)
	for i := time.Duration(0); i < steps && next < float64(a.max); i++ {
		next = math.Max(next*increaseBy, next+float64(step))
	}
	a.cur = min(a.max, rate.Limit(next))
	if a.max == rate.Inf && a.cur > unlimitedAt {
		a.cur = rate.Inf
	}
	a.changed = a.changed.Add(steps * increaseEvery)
	a.lim.SetLimitAt(now, a.cur)
}

// setShare makes this node's rate share (0 < share <= 1) of the
// configured one: in a fleet, the share of the carrier's binds it holds.
// A rate lowered by throttling stays as low, within the new share.
func (a *adaptive) setShare(share float64) {
	if share <= 0 || share > 1 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.conf == rate.Inf {
		return
	}
	next := a.conf * rate.Limit(share)
	if a.cur >= a.max || a.cur > next {
		a.cur = next
	}
	a.max = next
	a.lim.SetLimit(a.cur)
}

// wait takes one token. It fails at once with ErrThrottled when the token
// would come after ctx's deadline, and with ctx's error when ctx ends.
func (a *adaptive) wait(ctx context.Context) error {
	a.mu.Lock()
	a.recover(time.Now())
	a.mu.Unlock()
	if err := a.lim.Wait(ctx); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w: %v", ErrThrottled, err)
	}
	return nil
}

type dupKey struct{}

// WithDuplicateAllowed returns a context under which a submit whose
// session died after the submit was written (so the SMSC may have
// accepted it) is sent once more on another session, accepting that the
// handset may get the SMS twice. Without it, only a submit that was
// certainly not written is retried (once).
func WithDuplicateAllowed(ctx context.Context) context.Context {
	return context.WithValue(ctx, dupKey{}, true)
}

func duplicateAllowed(ctx context.Context) bool {
	v, _ := ctx.Value(dupKey{}).(bool)
	return v
}
