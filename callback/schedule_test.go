package callback_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpgate/otpgate/callback"
	"github.com/otpgate/otpgate/otp"
)

// hanging returns an endpoint that holds every request until the client
// gives up (or the test ends), counting how many it holds.
func hanging(tb testing.TB, held *atomic.Int32) *endpoint {
	tb.Helper()
	return newEndpoint(tb, func(_ int, _ http.ResponseWriter, r *http.Request) {
		held.Add(1)
		defer held.Add(-1)
		<-r.Context().Done()
	})
}

// waitFor polls cond until it holds or wait has passed.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	for deadline := time.Now().Add(wait); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestDispatcher_DeadEndpointsDoNotStarveOthers: six clients whose
// endpoints hang, each with more callbacks than the per-client limit,
// hold one request each, not the 16 workers; a healthy client's callbacks
// go out at once meanwhile.
func TestDispatcher_DeadEndpointsDoNotStarveOthers(t *testing.T) {
	db := openDB(t, t.TempDir())
	const dead = 6
	var held atomic.Int32
	urls := map[string]string{}
	var deadEPs []*endpoint
	for i := range dead {
		ep := hanging(t, &held)
		deadEPs = append(deadEPs, ep)
		urls[fmt.Sprintf("dead%d", i)] = ep.URL
	}
	live := newEndpoint(t, nil)
	urls["live"] = live.URL
	o := newOutcomes()
	opts := fastOpts(o)
	opts.Timeout = time.Minute // the dead endpoints hold their requests through the test
	run(t, callback.New(db, settingsOf(urls), opts))

	for i := range dead {
		for range 2 * callback.DefaultPerClient {
			deliverReceipt(t, db, fmt.Sprintf("dead%d", i), otp.StateDelivered)
		}
	}
	waitFor(t, "a request held by each dead endpoint", func() bool { return held.Load() == dead })

	const n = 8
	start := time.Now()
	for range n {
		deliverReceipt(t, db, "live", otp.StateDelivered)
	}
	for range n {
		live.next(t)
	}
	t.Logf("%d callbacks of the healthy client delivered in %s while %d dead endpoints held %d requests",
		n, time.Since(start).Round(time.Millisecond), dead, held.Load())
	for i, ep := range deadEPs {
		if c := ep.count(); c != 1 {
			t.Errorf("dead endpoint %d got %d requests, want 1 (one at a time to an endpoint never answered)", i, c)
		}
	}
}

// countingTransport counts the requests in flight to the hosts it
// watches, per host and in all, on the dispatcher's side of the wire.
type countingTransport struct {
	base    http.RoundTripper
	watch   map[string]bool
	mu      sync.Mutex
	perHost map[string]int
	total   map[string]int // requests started per host
	now     int
	max     int // most in flight at once since the last reset
	maxHost int // most in flight to one host at once
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if !c.watch[r.URL.Host] {
		return c.base.RoundTrip(r)
	}
	c.mu.Lock()
	c.perHost[r.URL.Host]++
	c.total[r.URL.Host]++
	c.now++
	c.max = max(c.max, c.now)
	c.maxHost = max(c.maxHost, c.perHost[r.URL.Host])
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.perHost[r.URL.Host]--
		c.now--
		c.mu.Unlock()
	}()
	return c.base.RoundTrip(r)
}

// TestDispatcher_FailingEndpointsShareHalf: once twelve endpoints have
// failed (they hang until the timeout), they hold at most half of the 16
// workers between them, one request each at most, and a healthy client's
// callbacks go out meanwhile.
func TestDispatcher_FailingEndpointsShareHalf(t *testing.T) {
	db := openDB(t, t.TempDir())
	const dead = 12
	var held atomic.Int32
	urls := map[string]string{}
	var hosts []string
	watch := map[string]bool{}
	for i := range dead {
		ep := hanging(t, &held)
		urls[fmt.Sprintf("dead%02d", i)] = ep.URL
		hosts = append(hosts, ep.Listener.Addr().String())
		watch[ep.Listener.Addr().String()] = true
	}
	live := newEndpoint(t, nil)
	urls["live"] = live.URL
	tr := &countingTransport{base: http.DefaultTransport.(*http.Transport).Clone(), watch: watch, perHost: map[string]int{}, total: map[string]int{}}
	o := newOutcomes()
	opts := fastOpts(o)
	opts.Client = &http.Client{Transport: tr}
	opts.Timeout = 300 * time.Millisecond
	opts.RetryBase, opts.MaxInterval = 10*time.Millisecond, 40*time.Millisecond
	opts.CircuitThreshold = 1 << 20 // no circuit: every due try is a request
	run(t, callback.New(db, settingsOf(urls), opts))

	for i := range dead {
		for range 2 {
			deliverReceipt(t, db, fmt.Sprintf("dead%02d", i), otp.StateDelivered)
		}
	}
	// Once each endpoint has had a second request its first one failed:
	// from then on all twelve are failing endpoints.
	waitFor(t, "a second request to every dead endpoint", func() bool {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		for _, h := range hosts {
			if tr.total[h] < 2 {
				return false
			}
		}
		return true
	})
	tr.mu.Lock()
	tr.max = tr.now
	base := 0
	for _, h := range hosts {
		base += tr.total[h]
	}
	tr.mu.Unlock()

	start := time.Now()
	for range 4 {
		deliverReceipt(t, db, "live", otp.StateDelivered)
	}
	for range 4 {
		live.next(t)
	}
	t.Logf("4 callbacks of the healthy client delivered in %s among 12 failing endpoints", time.Since(start).Round(time.Millisecond))
	// Let the failing endpoints cycle through a few dozen more tries.
	waitFor(t, "more tries to the dead endpoints", func() bool {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		n := 0
		for _, h := range hosts {
			n += tr.total[h]
		}
		return n >= base+3*dead
	})
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.max > 16/2 {
		t.Errorf("failing endpoints held %d workers at once, want at most 8 (half of 16)", tr.max)
	}
	if tr.maxHost > 1 {
		t.Errorf("a failing endpoint had %d requests in flight, want 1", tr.maxHost)
	}
}

// TestDispatcher_Circuit: after 5 failed tries the endpoint's circuit
// opens: its callbacks are short-circuited, no request, until the probe
// after the cool-down; the endpoint answers again, the probe closes the
// circuit and every callback is delivered.
func TestDispatcher_Circuit(t *testing.T) {
	db := openDB(t, t.TempDir())
	var down atomic.Bool
	down.Store(true)
	ep := newEndpoint(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		if down.Load() {
			w.WriteHeader(http.StatusInternalServerError)
		}
	})
	var offset atomic.Int64 // added to the clock
	type change struct {
		client string
		open   bool
	}
	changes := make(chan change, 10)
	o := newOutcomes()
	opts := fastOpts(o)
	opts.MaxInterval = 100 * time.Millisecond
	opts.CircuitCooldown = time.Hour // no probe until the clock jumps
	opts.Now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	opts.Circuit = func(client string, open bool) { changes <- change{client, open} }
	run(t, callback.New(db, settingsOf(map[string]string{"c1": ep.URL}), opts))

	for range 3 {
		deliverReceipt(t, db, "c1", otp.StateDelivered)
	}
	nextChange := func() change {
		t.Helper()
		select {
		case c := <-changes:
			return c
		case <-time.After(wait):
			t.Fatal("the circuit never changed")
			return change{}
		}
	}
	if c := nextChange(); c != (change{"c1", true}) {
		t.Fatalf("got %+v, want c1's circuit open", c)
	}
	if n := ep.count(); n != callback.DefaultCircuitThreshold {
		t.Fatalf("got %d requests when the circuit opened, want %d", n, callback.DefaultCircuitThreshold)
	}
	shorts := func() int {
		o.mu.Lock()
		defer o.mu.Unlock()
		n := 0
		for _, s := range o.got {
			if s == callback.OutcomeShortCircuited {
				n++
			}
		}
		return n
	}
	waitFor(t, "six short-circuited tries", func() bool { return shorts() >= 6 })
	if n := ep.count(); n != callback.DefaultCircuitThreshold {
		t.Fatalf("got %d requests while the circuit was open, want none past the %d that opened it", n-callback.DefaultCircuitThreshold,
			callback.DefaultCircuitThreshold)
	}
	cbs := queued(t, db)
	if len(cbs) != 3 {
		t.Fatalf("queue: got %d callbacks, want 3", len(cbs))
	}

	down.Store(false)
	offset.Store(int64(time.Hour)) // the cool-down is over: one probe
	if c := nextChange(); c != (change{"c1", false}) {
		t.Fatalf("got %+v, want c1's circuit closed", c)
	}
	waitEmpty(t, db)
	if n := ep.count(); n != callback.DefaultCircuitThreshold+3 {
		t.Fatalf("got %d requests in all, want %d failed and 3 delivered", n, callback.DefaultCircuitThreshold)
	}
}

// TestDispatcher_CircuitProbeFails: a failed probe keeps the circuit open
// and the next probe waits for the cool-down again.
func TestDispatcher_CircuitProbeFails(t *testing.T) {
	db := openDB(t, t.TempDir())
	ep := newEndpoint(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadGateway) })
	var offset atomic.Int64
	var changes atomic.Int32
	o := newOutcomes()
	opts := fastOpts(o)
	opts.MaxInterval = 50 * time.Millisecond
	opts.CircuitThreshold = 2
	opts.CircuitCooldown = time.Hour
	opts.Now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	opts.Circuit = func(string, bool) { changes.Add(1) }
	run(t, callback.New(db, settingsOf(map[string]string{"c1": ep.URL}), opts))

	deliverReceipt(t, db, "c1", otp.StateDelivered)
	waitFor(t, "the circuit to open", func() bool { return changes.Load() == 1 })
	offset.Store(int64(time.Hour))
	waitFor(t, "the probe", func() bool { return ep.count() == 3 })
	// The probe failed: the next is two hours (the doubled cool-down) on.
	time.Sleep(300 * time.Millisecond) // several due times of the callback
	if n := ep.count(); n != 3 {
		t.Fatalf("got %d requests after the failed probe, want none until the next cool-down", n-3)
	}
	if c := changes.Load(); c != 1 {
		t.Fatalf("got %d circuit changes, want 1 (still open)", c)
	}
	offset.Store(int64(3*time.Hour + time.Minute))
	waitFor(t, "the second probe", func() bool { return ep.count() == 4 })
}

// TestDispatcher_RoundRobin: with one worker, clients with a backlog take
// turns instead of the first in the queue's order being drained first.
func TestDispatcher_RoundRobin(t *testing.T) {
	db := openDB(t, t.TempDir())
	ep := newEndpoint(t, nil)
	clients := []string{"a", "b", "c"}
	for range 3 {
		for _, c := range clients {
			deliverReceipt(t, db, c, otp.StateDelivered)
		}
	}
	o := newOutcomes()
	opts := fastOpts(o)
	opts.Workers = 1
	run(t, callback.New(db, settingsOf(map[string]string{"a": ep.URL, "b": ep.URL, "c": ep.URL}), opts))
	var got []string
	for range 9 {
		var b struct{ ClientID string }
		if err := json.Unmarshal([]byte(ep.next(t).body), &b); err != nil {
			t.Fatal(err)
		}
		got = append(got, b.ClientID)
	}
	if want := []string{"a", "b", "c", "a", "b", "c", "a", "b", "c"}; !slices.Equal(got, want) {
		t.Fatalf("clients served in order %v, want %v", got, want)
	}
}

// TestDispatcher_CircuitForgottenWithURL: a reload that gives the client
// another URL forgets the old URL's open circuit (the gauge goes back),
// and the new URL gets the callback at once.
func TestDispatcher_CircuitForgottenWithURL(t *testing.T) {
	db := openDB(t, t.TempDir())
	old := newEndpoint(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	fixed := newEndpoint(t, nil)
	var url atomic.Value
	url.Store(old.URL)
	var open atomic.Int32
	o := newOutcomes()
	opts := fastOpts(o)
	opts.MaxInterval = 50 * time.Millisecond
	opts.CircuitThreshold = 2
	opts.CircuitCooldown = time.Hour
	opts.Circuit = func(_ string, o bool) {
		if o {
			open.Add(1)
		} else {
			open.Add(-1)
		}
	}
	settings := func(string, otp.CallbackKind) (string, string, bool) { return url.Load().(string), secret, true }
	run(t, callback.New(db, settings, opts))

	deliverReceipt(t, db, "c1", otp.StateDelivered)
	waitFor(t, "the circuit to open", func() bool { return open.Load() == 1 })
	url.Store(fixed.URL)
	fixed.next(t)
	waitFor(t, "the old circuit to be forgotten", func() bool { return open.Load() == 0 })
	waitEmpty(t, db)
}
