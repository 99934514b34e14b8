package smpp

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrStalled means a carrier's SMSC stopped answering submit_sm (its back
// end is stuck, while it may still answer enquire_link) and a send gave up
// on it so that the route's next carrier can take the message. Joined with
// ErrUnanswered the submit was written and may still be delivered (the
// handset may get the code twice); alone, the submit was never written.
var ErrStalled = errors.New("smpp: carrier stalled")

type failoverKey struct{}

// withFailover returns a context under which a submit may give up on a
// stalled session (see sessionConfig.StallTimeout): the router sets it
// when the route has another carrier to try.
func withFailover(ctx context.Context, on bool) context.Context {
	if canFailover(ctx) == on {
		return ctx
	}
	return context.WithValue(ctx, failoverKey{}, on)
}

func canFailover(ctx context.Context) bool {
	v, _ := ctx.Value(failoverKey{}).(bool)
	return v
}

// takeSlot takes a window slot for a submit. With a free slot it returns
// at once. Otherwise it waits while ctx allows, unless the session is
// stalled (its oldest unanswered submit is older than StallTimeout) and the
// send may fail over: then it returns ErrStalled, the submit certainly not
// written, at once or as soon as the stall shows.
func (s *session) takeSlot(ctx context.Context) error {
	select {
	case s.window <- struct{}{}:
		s.inflight.Add(1)
		return nil
	default:
	}
	stall := s.cfg.StallTimeout
	watch := stall > 0 && canFailover(ctx)
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		var wake <-chan time.Time
		oldest, ok := time.Time{}, false
		if watch {
			oldest, ok = s.oldestSubmit()
		}
		if ok {
			left := stall - time.Since(oldest)
			if left <= 0 {
				return fmt.Errorf("%w: window full of submits unanswered for %s (not written)", ErrStalled, stall)
			}
			if timer == nil {
				timer = time.NewTimer(left)
			} else {
				timer.Reset(left)
			}
			wake = timer.C
		}
		select {
		case s.window <- struct{}{}:
			s.inflight.Add(1)
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-s.dead:
			return &SessionLostError{Written: false, Cause: s.Err()}
		case <-wake:
		}
	}
}

// oldestSubmit returns when the oldest pending submit was registered.
func (s *session) oldestSubmit() (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var oldest time.Time
	for _, c := range s.pending {
		if c.submit && (oldest.IsZero() || c.at.Before(oldest)) {
			oldest = c.at
		}
	}
	return oldest, !oldest.IsZero()
}
