package callback

import (
	"context"
	"sync"
	"time"

	"github.com/otpgate/otpgate/otp"
)

// Scheduling. Workers are shared by every client, so the dispatcher keeps
// a client whose endpoint is dead or hangs from holding them:
//
//   - Clients take turns: each pass over the due callbacks starts at most
//     one POST per client, beginning after the client served last, until
//     the workers are busy.
//   - An endpoint (one URL of one client) gets PerClient POSTs at once
//     only while its last try succeeded; one that has not been tried yet,
//     or whose last try failed, gets one at a time. The endpoints whose
//     last try failed share at most half of the workers, so the others
//     always have the other half.
//   - After CircuitThreshold consecutive failed tries an endpoint's
//     circuit opens: its due callbacks are counted as failed tries and
//     rescheduled at their back-off without a request (no worker waits on
//     it), but for one probe per cool-down. A 2xx closes the circuit.
//
// A POST holds its worker for at most Timeout. Run's goroutine alone
// reads and writes the scheduler's state.

// endpointKey names one endpoint of one client: two clients that share a
// URL have a circuit each, so that one's failures cannot silence the
// other's callbacks.
type endpointKey struct{ client, url string }

// endpointState is what the tries so far say of an endpoint.
type endpointState int

const (
	endpointUnknown endpointState = iota // no try has ended yet
	endpointHealthy                      // its last try answered 2xx
	endpointFailing                      // its last try failed
)

// endpoint is the scheduler's record of one endpoint.
type endpoint struct {
	inflight int // POSTs in flight
	state    endpointState
	failures int // consecutive failed tries
	open     bool
	probeAt  time.Time // while open: when the next probe may start
	probes   int       // failed probes since the circuit opened
}

// scheduler is Run's state.
type scheduler struct {
	busy      map[string]struct{} // ids being posted or short-circuited
	posts     int                 // POSTs in flight
	failing   int                 // of which to failing endpoints
	perClient map[string]int      // POSTs in flight per client
	endpoints map[endpointKey]*endpoint
	last      string // the client that got the last POST: the next pass starts after it
}

// result is a finished POST or short-circuit, for Run.
type result struct {
	cb      otp.Callback
	key     endpointKey
	post    bool // a POST, which held a worker
	failing bool // the POST counted in scheduler.failing
	probe   bool // the POST was an open circuit's probe
	tried   tryResult
}

// admission is what the scheduler does with a due callback.
type admission int

const (
	admitWait  admission = iota // leave it queued: a limit is reached
	admitPost                   // POST it now
	admitShort                  // short-circuit it
)

// Run delivers due callbacks until ctx is done, then waits for the POSTs
// in flight (which ctx cancels) and returns nil. A POST cut short by ctx
// leaves its callback queued as it was, to be sent after a restart: a
// callback is delivered at least once, and may be delivered twice.
func (d *Dispatcher) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	s := &scheduler{busy: map[string]struct{}{}, perClient: map[string]int{}, endpoints: map[endpointKey]*endpoint{}}
	defer d.closeCircuits(s)
	done := make(chan result, d.opts.Workers)
	report := func(r result) {
		select {
		case done <- r:
		case <-ctx.Done(): // Run is returning: nobody reads done
		}
	}
	start := func(r result, target, secret string) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r.post {
				r.tried = d.deliver(ctx, r.cb, target, secret)
			} else {
				d.shortCircuit(ctx, r.cb, target)
			}
			report(r)
		}()
	}
	poll := time.NewTimer(0)
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-d.wake:
		case <-poll.C:
			poll.Reset(d.opts.PollInterval)
			d.prune(s)
		case r := <-done:
			d.finish(s, r)
		}
		for d.fill(ctx, s, start) {
		}
	}
}

// fill starts the due callbacks that the limits allow, short-circuits
// those of open circuits, and drops those that are too old or whose
// client has no URL for them. It reports whether it dropped any, in which
// case the queue is worth reading again at once.
func (d *Dispatcher) fill(ctx context.Context, s *scheduler, start func(r result, target, secret string)) bool {
	if s.posts >= d.opts.Workers {
		return false
	}
	now := d.opts.Now()
	// Twice the per-client limit: the records in flight are still queued
	// and come first.
	due, err := d.q.DueCallbacks(ctx, now, 2*d.opts.PerClient)
	if err != nil {
		if ctx.Err() == nil {
			d.log.Warn("callback queue unreadable", keyError, err)
		}
		return false
	}
	var drop, old []otp.Callback // old: dropped for their age, not for want of a URL
	// turn takes the next callbacks of one client until it starts a POST
	// (it reports true) or has none left.
	turn := func(cbs *[]otp.Callback) bool {
		for len(*cbs) > 0 {
			cb := (*cbs)[0]
			*cbs = (*cbs)[1:]
			if _, busy := s.busy[cb.ID]; busy {
				continue
			}
			target, secret, ok := d.settings(cb.ClientID, cb.Kind)
			if !ok || target == "" {
				drop = append(drop, cb) // the client has no URL for it
				continue
			}
			if now.Sub(cb.FirstAt) > d.opts.MaxAge {
				drop = append(drop, cb)
				old = append(old, cb)
				continue
			}
			key := endpointKey{cb.ClientID, target}
			ep := s.endpoints[key]
			if ep == nil {
				ep = &endpoint{}
				s.endpoints[key] = ep
			}
			switch d.admit(s, ep, cb.ClientID, now) {
			case admitShort:
				s.busy[cb.ID] = struct{}{}
				start(result{cb: cb, key: key}, target, "")
			case admitPost:
				r := result{cb: cb, key: key, post: true, failing: ep.state == endpointFailing, probe: ep.open}
				if r.probe { // no other probe until this one has had its cool-down
					ep.probeAt = now.Add(d.cooldown(ep.probes))
				}
				s.busy[cb.ID] = struct{}{}
				s.posts++
				s.perClient[cb.ClientID]++
				ep.inflight++
				if r.failing {
					s.failing++
				}
				s.last = cb.ClientID
				start(r, target, secret)
				return true
			}
		}
		return false
	}
	clients := byClient(due, s.last)
	for started := true; started; {
		started = false
		for i := range clients {
			if turn(&clients[i]) {
				started = true
			}
		}
	}
	if len(drop) == 0 {
		return false
	}
	if err := d.q.CallbackDone(context.WithoutCancel(ctx), drop...); err != nil {
		d.log.Warn("callbacks not removed", keyError, err)
		return false
	}
	for _, cb := range old {
		d.dropped(cb, "too old when read")
	}
	return ctx.Err() == nil
}

// byClient splits due (ordered by client, as the queue returns it) into
// one list per client, beginning with the first client after last (in
// the queue's order) and wrapping round.
func byClient(due []otp.Callback, last string) [][]otp.Callback {
	var groups [][]otp.Callback
	first := -1
	for i, cb := range due {
		if i == 0 || cb.ClientID != due[i-1].ClientID {
			if first < 0 && cb.ClientID > last {
				first = len(groups)
			}
			groups = append(groups, nil)
		}
		groups[len(groups)-1] = append(groups[len(groups)-1], cb)
	}
	if first <= 0 {
		return groups
	}
	return append(groups[first:], groups[:first]...)
}

// admit decides what to do now with a due callback of client to ep.
func (d *Dispatcher) admit(s *scheduler, ep *endpoint, client string, now time.Time) admission {
	if ep.open && (now.Before(ep.probeAt) || ep.inflight > 0) {
		return admitShort
	}
	if s.posts >= d.opts.Workers || s.perClient[client] >= d.opts.PerClient {
		return admitWait
	}
	switch ep.state {
	case endpointHealthy:
		if ep.inflight >= d.opts.PerClient {
			return admitWait
		}
	case endpointFailing:
		if ep.inflight >= 1 || s.failing >= max(1, d.opts.Workers/2) {
			return admitWait
		}
	default:
		if ep.inflight >= 1 {
			return admitWait
		}
	}
	return admitPost
}

// finish books a POST or short-circuit that ended, and moves its
// endpoint's circuit.
func (d *Dispatcher) finish(s *scheduler, r result) {
	delete(s.busy, r.cb.ID)
	if !r.post {
		return
	}
	s.posts--
	if r.failing {
		s.failing--
	}
	if s.perClient[r.cb.ClientID]--; s.perClient[r.cb.ClientID] <= 0 {
		delete(s.perClient, r.cb.ClientID)
	}
	ep := s.endpoints[r.key] // kept by prune while a POST is in flight
	ep.inflight--
	switch r.tried {
	case tryDelivered:
		ep.state, ep.failures, ep.probes = endpointHealthy, 0, 0
		if ep.open {
			ep.open = false
			d.opts.Circuit(r.key.client, false)
			d.log.Info("callback circuit closed: endpoint answered", keyClient, r.key.client, keyHost, hostOf(r.key.url))
		}
	case tryFailed:
		ep.state = endpointFailing
		ep.failures++
		now := d.opts.Now()
		switch {
		case ep.open && r.probe:
			ep.probes++
			ep.probeAt = now.Add(d.cooldown(ep.probes))
		case !ep.open && ep.failures >= d.opts.CircuitThreshold:
			ep.open, ep.probes = true, 0
			ep.probeAt = now.Add(d.cooldown(0))
			d.opts.Circuit(r.key.client, true)
			d.log.Warn("callback circuit open: endpoint failing, tries short-circuited", keyClient, r.key.client,
				keyHost, hostOf(r.key.url), keyFailures, ep.failures, keyProbeIn, d.cooldown(0).String())
		}
	}
}

// cooldown is how long an open circuit waits for its next probe after
// probes failed ones: CircuitCooldown doubled each time, up to ten times
// it.
func (d *Dispatcher) cooldown(probes int) time.Duration {
	c := d.opts.CircuitCooldown
	return min(c<<min(probes, 4), 10*c)
}

// prune forgets the endpoints that no client has any more (a reload
// changed or removed the URL), so that their circuits neither linger in
// the gauge nor grow without bound.
func (d *Dispatcher) prune(s *scheduler) {
	for key, ep := range s.endpoints {
		if ep.inflight > 0 || d.hasURL(key) {
			continue
		}
		if ep.open {
			d.opts.Circuit(key.client, false)
		}
		delete(s.endpoints, key)
	}
}

// hasURL reports whether key's client still sends some kind of callback
// to key's URL.
func (d *Dispatcher) hasURL(key endpointKey) bool {
	for _, kind := range []otp.CallbackKind{otp.CallbackReceipt, otp.CallbackMO} {
		if u, _, ok := d.settings(key.client, kind); ok && u == key.url {
			return true
		}
	}
	return false
}

// closeCircuits reports every open circuit closed as Run ends: the next
// Run starts with none.
func (d *Dispatcher) closeCircuits(s *scheduler) {
	for key, ep := range s.endpoints {
		if ep.open {
			d.opts.Circuit(key.client, false)
		}
	}
}
