package smpp

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// suspendPoll is how often a suspension checks whether the submits in
// flight on the binds it is about to unbind have been answered.
const suspendPoll = 10 * time.Millisecond

// suspension is an operator's hold on a carrier: while it is on, the
// carrier keeps no bind, Bound is 0 and routes pass its traffic to their
// next carrier. changed is closed (and replaced) at every change, so that
// Run can wait for one without polling.
type suspension struct {
	mu      sync.Mutex
	on      bool
	changed chan struct{}
	flag    atomic.Bool // on, for Bound without the lock
}

// state returns whether the hold is on and a channel closed at the next
// change.
func (s *suspension) state() (bool, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.changed == nil {
		s.changed = make(chan struct{})
	}
	return s.on, s.changed
}

// set turns the hold on or off and reports whether that changed it.
func (s *suspension) set(on bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.on == on {
		return false
	}
	s.on = on
	s.flag.Store(on)
	if s.changed != nil {
		close(s.changed)
	}
	s.changed = make(chan struct{})
	return true
}

func (s *suspension) isOn() bool { return s.flag.Load() }

// Suspend unbinds every session of the carrier and keeps it unbound until
// Resume: Bound is 0 from now on, so routes pass its traffic to their next
// carrier. Submits already written get up to 10s for their answers before
// the unbind. It may be called before Run (the carrier then never binds),
// and reports whether the carrier was not suspended already.
func (c *Carrier) Suspend() bool {
	if !c.susp.set(true) {
		return false
	}
	c.log.Warn("carrier suspended: unbinding, routes skip it until resumed")
	return true
}

// Resume ends a suspension: the carrier binds again. It reports whether
// the carrier was suspended.
func (c *Carrier) Resume() bool {
	if !c.susp.set(false) {
		return false
	}
	c.log.Info("carrier resumed: binding")
	return true
}

// Suspended reports whether the carrier is suspended.
func (c *Carrier) Suspended() bool { return c.susp.isOn() }

// runSlots keeps every slot bound (under keepCtx) while the carrier is not
// suspended, until ctx ends. A suspension lets the submits in flight be
// answered (10s at most), then unbinds the slots and waits for a resume.
// The slots' goroutines are counted in wg; at ctx's end they are left
// running for Run to drain and stop through keepCtx.
func (c *Carrier) runSlots(ctx, keepCtx context.Context, wg *sync.WaitGroup) {
	for {
		on, changed := c.susp.state()
		if on {
			select {
			case <-ctx.Done():
				return
			case <-changed:
				continue
			}
		}
		active, unbind := context.WithCancel(keepCtx)
		var slots sync.WaitGroup
		for _, sl := range c.slots {
			wg.Add(1)
			slots.Add(1)
			go func() {
				defer wg.Done()
				defer slots.Done()
				c.keep(active, sl)
			}()
		}
		for !on {
			select {
			case <-ctx.Done():
				// keepCtx ends after Run's drain, and active with it.
				context.AfterFunc(keepCtx, unbind)
				return
			case <-changed:
				on, changed = c.susp.state()
			}
		}
		c.awaitAnswers(ctx)
		unbind()
		slots.Wait()
	}
}

// awaitAnswers waits until no bound session has a submit in flight, for
// drainTimeout at most or until ctx ends.
func (c *Carrier) awaitAnswers(ctx context.Context) {
	deadline := time.Now().Add(drainTimeout)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		busy := false
		for _, sl := range c.slots {
			if s := sl.live(); s != nil && s.inflight.Load() > 0 {
				busy = true
			}
		}
		if !busy {
			return
		}
		time.Sleep(suspendPoll)
	}
}
