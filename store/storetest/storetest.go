package storetest

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpgate/otpgate/otp"
)

// Backend is a store under test: the ports the gateway uses, all served by
// one backend so that a receipt's change and its callback can share a
// transaction.
type Backend interface {
	otp.Store
	otp.ReceiptStore
	otp.CallbackQueue
	otp.MOQueue
}

// Options is what the suite asks of a backend it opens.
type Options struct {
	// Now is the clock the backend must read wherever it needs the time:
	// record expiry (KeepUntil), the times of the callbacks it queues, the
	// refill of a limiter's buckets. The suite moves it instead of
	// sleeping. It starts at the real time and only moves forward, by at
	// most a few hours in a case, so that a backend whose TTLs run on a
	// real clock (badger's expiry, a Redis PEXPIRE computed from Now) keeps
	// everything the case needs.
	Now func() time.Time
	// WantsCallback, when not nil, says whether a client has a callback
	// URL: delivery-state changes of the other clients' messages queue no
	// callback. Nil queues them all.
	WantsCallback func(clientID string) bool
}

// Opener returns a new backend for one case of the suite. The backend must
// hold no state of other cases (a new directory; on a shared server a key
// prefix of its own) and use opts; the opener registers its cleanup with
// t.Cleanup and fails t if it cannot open one.
type Opener func(t *testing.T, opts Options) Backend

// LimiterOpener returns a new limiter, with no buckets, reading the time
// from opts.Now.
type LimiterOpener func(t *testing.T, opts Options) otp.Limiter

// Run runs the contract of otp.Store, otp.ReceiptStore, otp.CallbackQueue
// and otp.MOQueue against the backends that open returns, one per case.
func Run(t *testing.T, open Opener) {
	t.Helper()
	for _, g := range []struct {
		name  string
		cases []testCase
	}{
		{"Store", storeCases},
		{"Receipts", receiptCases},
		{"Callbacks", callbackCases},
	} {
		t.Run(g.name, func(t *testing.T) {
			for _, c := range g.cases {
				t.Run(c.name, func(t *testing.T) {
					e := &env{clk: newClock(), open: open}
					e.b = e.openBackend(t, nil)
					c.run(t, e)
				})
			}
		})
	}
}

// testCase is one case of the suite, run on a backend of its own.
type testCase struct {
	name string
	run  func(t *testing.T, e *env)
}

// env is a case's backend and clock.
type env struct {
	b    Backend
	clk  *clock
	open Opener
}

// openBackend opens another backend on the case's clock, with the options that
// adjust sets (nil: the defaults).
func (e *env) openBackend(t *testing.T, adjust func(*Options)) Backend {
	t.Helper()
	opts := Options{Now: e.clk.now}
	if adjust != nil {
		adjust(&opts)
	}
	b := e.open(t, opts)
	if b == nil {
		t.Fatal("open returned a nil backend")
	}
	return b
}

// clock is the settable clock behind Options.Now. It starts at the real
// time, nanoseconds included: the domain finds a send again by its time
// (otp.Service's unreserve compares Record.Sends with Equal), so a backend
// must keep times to the nanosecond.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Now().UnixNano())
	return c
}

func (c *clock) now() time.Time { return time.Unix(0, c.ns.Load()) }

// add moves the clock forward by d.
func (c *clock) add(d time.Duration) {
	if d < 0 {
		panic("storetest: the clock only moves forward")
	}
	c.ns.Add(int64(d))
}
