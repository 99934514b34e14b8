package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/otpgate/otpgate/otp"
)

// Message returns a message of client c1 sent through carrier, one
// ACCEPTED part per id.
func Message(id, carrier string, partIDs ...string) otp.Message {
	m := otp.Message{RequestID: id, ClientID: "c1", Number: "919876543210", Display: "+91-98******10",
		Carrier: carrier, SubmittedAt: time.Unix(1_700_000_000, 0).UTC()}
	for _, p := range partIDs {
		m.Parts = append(m.Parts, otp.Part{MessageID: p, State: otp.StateAccepted})
	}
	return m
}

// SetRecord returns a SaveSend fn that stores a live code, attempts wrong
// guesses and KeepUntil keep.
func SetRecord(keep time.Time, attempts int) func(*otp.Record, bool) {
	return func(r *otp.Record, _ bool) {
		r.CodeHash = []byte("hash")
		r.ExpiresAt = keep
		r.Attempts = attempts
		r.KeepUntil = keep
	}
}

func (e *env) saveSend(tb testing.TB, key string, msg otp.Message, fn func(*otp.Record, bool)) otp.Message {
	tb.Helper()
	m, err := e.b.SaveSend(context.Background(), key, msg, fn)
	if err != nil {
		tb.Fatalf("SaveSend %s: %v", msg.RequestID, err)
	}
	return m
}

// send saves msg under a key of its own with a record living an hour.
func (e *env) send(tb testing.TB, msg otp.Message) otp.Message {
	tb.Helper()
	return e.saveSend(tb, msg.ClientID+"/"+msg.RequestID, msg, SetRecord(e.clk.now().Add(time.Hour), 0))
}

func (e *env) getOTP(tb testing.TB, key string) otp.Record {
	tb.Helper()
	rec, err := e.b.GetOTP(context.Background(), key)
	if err != nil {
		tb.Fatalf("GetOTP %s: %v", key, err)
	}
	return rec
}

// notFound fails tb unless key has no live record.
func (e *env) notFound(tb testing.TB, key string) {
	tb.Helper()
	if rec, err := e.b.GetOTP(context.Background(), key); !errors.Is(err, otp.ErrNotFound) {
		tb.Fatalf("GetOTP %s: got %+v, %v; want ErrNotFound", key, rec, err)
	}
}

func (e *env) update(tb testing.TB, key string, fn func(*otp.Record, bool) (otp.Change, error)) {
	tb.Helper()
	if err := e.b.UpdateOTP(context.Background(), key, fn); err != nil {
		tb.Fatalf("UpdateOTP %s: %v", key, err)
	}
}

func (e *env) apply(tb testing.TB, r otp.Receipt) (m otp.Message, matched, changed bool) {
	tb.Helper()
	m, matched, changed, err := e.b.ApplyReceipt(context.Background(), r)
	if err != nil {
		tb.Fatalf("ApplyReceipt %s/%s: %v", r.Carrier, r.MessageID, err)
	}
	return m, matched, changed
}

// pending applies r, which must match no message yet.
func (e *env) pending(tb testing.TB, r otp.Receipt) {
	tb.Helper()
	if m, matched, changed := e.apply(tb, r); matched || changed {
		tb.Fatalf("ApplyReceipt %s/%s: got matched %v changed %v (%s), want it kept pending",
			r.Carrier, r.MessageID, matched, changed, m.RequestID)
	}
}

func (e *env) message(tb testing.TB, requestID string) otp.Message {
	tb.Helper()
	m, err := e.b.Message(context.Background(), requestID)
	if err != nil {
		tb.Fatalf("Message %s: %v", requestID, err)
	}
	return m
}

func (e *env) due(tb testing.TB, now time.Time, perClient int) []otp.Callback {
	tb.Helper()
	cbs, err := e.b.DueCallbacks(context.Background(), now, perClient)
	if err != nil {
		tb.Fatalf("DueCallbacks: %v", err)
	}
	return cbs
}

// dueNow returns every callback due at the clock's time.
func (e *env) dueNow(tb testing.TB) []otp.Callback {
	tb.Helper()
	return e.due(tb, e.clk.now(), 1000)
}

func (e *env) done(tb testing.TB, cbs ...otp.Callback) {
	tb.Helper()
	if err := e.b.CallbackDone(context.Background(), cbs...); err != nil {
		tb.Fatalf("CallbackDone: %v", err)
	}
}

// parallel runs fn(i) for i in [0, n) in n goroutines released together.
func parallel(n int, fn func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			fn(i)
		})
	}
	close(start)
	wg.Wait()
}

// states returns the states of m's parts.
func states(m otp.Message) []otp.State {
	out := make([]otp.State, len(m.Parts))
	for i, p := range m.Parts {
		out[i] = p.State
	}
	return out
}
