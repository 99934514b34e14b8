package smpp

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Throttling back-off (Phase 2 of the carrier design).
//
// When the SMSC answers ESME_RTHROTTLED or ESME_RMSGQFUL the carrier
//   - halves its token bucket's rate (not below 1/16 of TPS), then adds
//     TPS/8 back for every second that passes, up to TPS again;
//   - pauses every submit for a short while: 50ms after the first
//     throttle, doubling with each throttle in a row up to 2s, and reset
//     by the next accepted submit. A submit whose ctx deadline falls
//     within the pause fails at once with ErrThrottled, so that the
//     router can use another carrier at once.
//
// The router, when a pass over the route's carriers failed only because
// of throttling (or unbound carriers), waits a jittered back-off (50ms
// doubling to 1s) and makes another pass, until ctx's deadline (at most
// 5 passes when ctx has none).
const (
	pauseMin      = 50 * time.Millisecond
	pauseMax      = 2 * time.Second
	rateFloorDiv  = 16
	rateRecovDiv  = 8
	rateRecovStep = time.Second
)

// adaptive is a carrier's pace: its token bucket (nil when unlimited) and
// the pause after a throttle. Safe for concurrent use.
type adaptive struct {
	lim *rate.Limiter
	max rate.Limit

	mu      sync.Mutex
	cur     rate.Limit
	changed time.Time // last change of cur
	pause   time.Duration
	until   time.Time
}

func newAdaptive(tps float64, burst int) *adaptive {
	a := &adaptive{}
	if tps > 0 {
		a.max, a.cur = rate.Limit(tps), rate.Limit(tps)
		a.lim = rate.NewLimiter(a.max, burst)
	}
	return a
}

// throttled records an SMSC throttle.
func (a *adaptive) throttled(now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.lim != nil {
		a.recover(now)
		a.cur = max(a.cur/2, a.max/rateFloorDiv)
		a.lim.SetLimitAt(now, a.cur)
		a.changed = now
	}
	a.pause = min(max(a.pause*2, pauseMin), pauseMax)
	a.until = now.Add(a.pause)
}

// accepted records an accepted submit: the pause no longer grows.
func (a *adaptive) accepted() {
	a.mu.Lock()
	a.pause = 0
	a.mu.Unlock()
}

// recover raises cur by max/8 per whole second since the last change.
// Called with mu held.
func (a *adaptive) recover(now time.Time) {
	if a.lim == nil || a.cur >= a.max {
		return
	}
	steps := now.Sub(a.changed) / rateRecovStep
	if steps <= 0 {
		return
	}
	a.cur = min(a.max, a.cur+rate.Limit(steps)*a.max/rateRecovDiv)
	a.changed = a.changed.Add(steps * rateRecovStep)
	a.lim.SetLimitAt(now, a.cur)
}

// limit returns the current rate (rate.Inf when unlimited).
func (a *adaptive) limit() rate.Limit {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.lim == nil {
		return rate.Inf
	}
	a.recover(time.Now())
	return a.cur
}

// wait sits out a pause and takes one token. It fails at once with
// ErrThrottled when ctx's deadline comes before the pause ends or before
// the token would be there, and with ctx's error when ctx ends.
func (a *adaptive) wait(ctx context.Context) error {
	now := time.Now()
	a.mu.Lock()
	a.recover(now)
	until := a.until
	a.mu.Unlock()
	if d := until.Sub(now); d > 0 {
		if dl, ok := ctx.Deadline(); ok && dl.Before(until) {
			return fmt.Errorf("%w: paused for %s after a throttle", ErrThrottled, d.Round(time.Millisecond))
		}
		if !sleep(ctx, d) {
			return ctx.Err()
		}
	}
	if a.lim == nil {
		return nil
	}
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
