package storetest

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/otpgate/otpgate/otp"
)

// storeCases are the cases of otp.Store.
var storeCases = []testCase{
	{"GetOTP_ErrNotFound", func(t *testing.T, e *env) {
		e.notFound(t, "c1/none")
	}},
	{"SaveSend_RoundTrip", testSaveSendRoundTrip},
	{"SaveSend_ResendKeepsRecord", testSaveSendResend},
	{"UpdateOTP_Put", testUpdatePut},
	{"UpdateOTP_Keep", testUpdateKeep},
	{"UpdateOTP_Delete", testUpdateDelete},
	{"UpdateOTP_ErrorIsCommitted", testUpdateErrorCommitted},
	{"Expiry_KeepUntilPast", testExpiryKeepUntilPast},
	{"Expiry_ByClock", testExpiryByClock},
	{"Concurrent_NoLostUpdates", testConcurrentNoLostUpdates},
	{"Concurrent_OneCodeVerifiesOnce", testConcurrentOneCode},
	{"Concurrent_AttemptsNeverPastMax", testConcurrentWrongGuesses},
	{"Concurrent_MixedGuesses", testConcurrentMixed},
}

// fullRecord sets every field of a record, times with nanoseconds.
func fullRecord(now time.Time) otp.Record {
	ns := 123456789 * time.Nanosecond
	return otp.Record{
		CodeHash:   []byte{0, 1, 2, 0xfe, 0xff},
		ExpiresAt:  now.Add(5*time.Minute + ns),
		RequestID:  "r1",
		Attempts:   2,
		LastFailAt: now.Add(-time.Minute + ns),
		Sends:      []time.Time{now.Add(-30*time.Minute + ns), now.Add(ns)},
		DayFails:   3,
		DayStart:   now.Add(-2*time.Hour + ns),
		Carrier:    "carrier-a",
		KeepUntil:  now.Add(time.Hour + ns),
	}
}

// sameRecord fails tb unless got and want are equal, times compared with
// Equal.
func sameRecord(tb testing.TB, got, want otp.Record) {
	tb.Helper()
	g, w := got, want
	for _, p := range [][2]*time.Time{{&g.ExpiresAt, &w.ExpiresAt}, {&g.LastFailAt, &w.LastFailAt},
		{&g.DayStart, &w.DayStart}, {&g.KeepUntil, &w.KeepUntil}} {
		if !p[0].Equal(*p[1]) {
			tb.Fatalf("got %+v,\nwant %+v", got, want)
		}
		*p[0], *p[1] = time.Time{}, time.Time{}
	}
	if len(g.Sends) != len(w.Sends) {
		tb.Fatalf("got %+v,\nwant %+v", got, want)
	}
	for i := range g.Sends {
		if !g.Sends[i].Equal(w.Sends[i]) {
			tb.Fatalf("got %+v,\nwant %+v", got, want)
		}
	}
	g.Sends, w.Sends = nil, nil
	if !reflect.DeepEqual(g, w) {
		tb.Fatalf("got %+v,\nwant %+v", got, want)
	}
}

// sameMessage fails tb unless got and want are equal, times compared with
// Equal.
func sameMessage(tb testing.TB, got, want otp.Message) {
	tb.Helper()
	if !reflect.DeepEqual(normMessage(got), normMessage(want)) {
		tb.Fatalf("got %+v,\nwant %+v", got, want)
	}
}

// normMessage puts m's times in UTC without monotonic readings and its
// empty slices to nil, so that DeepEqual compares what a store keeps.
func normMessage(m otp.Message) otp.Message {
	utc := func(t time.Time) time.Time { return t.UTC().Round(0) }
	parts := func(ps []otp.Part) []otp.Part {
		if len(ps) == 0 {
			return nil
		}
		out := make([]otp.Part, len(ps))
		for i, p := range ps {
			p.DoneAt = utc(p.DoneAt)
			out[i] = p
		}
		return out
	}
	m.SubmittedAt = utc(m.SubmittedAt)
	m.Parts = parts(m.Parts)
	var earlier []otp.Attempt
	for _, a := range m.Earlier {
		a.SubmittedAt = utc(a.SubmittedAt)
		a.Parts = parts(a.Parts)
		earlier = append(earlier, a)
	}
	m.Earlier = earlier
	return m
}

func testSaveSendRoundTrip(t *testing.T, e *env) {
	want := fullRecord(e.clk.now())
	want.Key = "c1/1"
	msg := Message("r1", "a", "A1", "A2")
	msg.Parts[1] = otp.Part{MessageID: "A2", State: otp.StateAccepted, Error: "000", DoneAt: e.clk.now()}
	var sawFound, sawKey = true, ""
	stored := e.saveSend(t, "c1/1", msg, func(r *otp.Record, found bool) {
		sawFound, sawKey = found, r.Key
		*r = fullRecord(e.clk.now())
	})
	if sawFound || sawKey != "c1/1" {
		t.Errorf("fn got found %v, Key %q; want false, c1/1", sawFound, sawKey)
	}
	sameMessage(t, stored, msg)
	sameRecord(t, e.getOTP(t, "c1/1"), want)
	sameMessage(t, e.message(t, "r1"), msg)
}

func testSaveSendResend(t *testing.T, e *env) {
	keep := e.clk.now().Add(time.Hour)
	e.saveSend(t, "k", Message("r1", "a", "1"), SetRecord(keep, 4))
	var sawFound bool
	var saw otp.Record
	e.saveSend(t, "k", Message("r2", "a", "2"), func(r *otp.Record, found bool) {
		sawFound, saw = found, *r
		r.RequestID = "r2"
	})
	if !sawFound || saw.Attempts != 4 || string(saw.CodeHash) != "hash" || saw.Key != "k" {
		t.Fatalf("fn got found %v, %+v; want the first send's record", sawFound, saw)
	}
	if rec := e.getOTP(t, "k"); rec.Attempts != 4 || rec.RequestID != "r2" {
		t.Fatalf("got %+v, want Attempts 4, RequestID r2", rec)
	}
	// Both messages are kept.
	e.message(t, "r1")
	e.message(t, "r2")
}

func testUpdatePut(t *testing.T, e *env) {
	now := e.clk.now()
	var sawFound, sawKey = true, ""
	e.update(t, "c1/new", func(r *otp.Record, found bool) (otp.Change, error) {
		sawFound, sawKey = found, r.Key
		*r = fullRecord(now)
		return otp.Put, nil
	})
	if sawFound || sawKey != "c1/new" {
		t.Errorf("fn got found %v, Key %q; want false, c1/new", sawFound, sawKey)
	}
	want := fullRecord(now)
	want.Key = "c1/new"
	sameRecord(t, e.getOTP(t, "c1/new"), want)

	var saw otp.Record
	e.update(t, "c1/new", func(r *otp.Record, found bool) (otp.Change, error) {
		sawFound, saw = found, *r
		r.Attempts++
		r.Key = "c1/elsewhere" // Key is the store's: the record stays under its key
		return otp.Put, nil
	})
	if !sawFound {
		t.Fatal("fn got found false for a live record")
	}
	sameRecord(t, saw, want)
	want.Attempts++
	sameRecord(t, e.getOTP(t, "c1/new"), want)
	e.notFound(t, "c1/elsewhere")
	e.notFound(t, "c1/ne") // a prefix of the key is another key
}

func testUpdateKeep(t *testing.T, e *env) {
	keep := e.clk.now().Add(time.Hour)
	e.saveSend(t, "k", Message("r1", "a", "1"), SetRecord(keep, 1))
	err := e.b.UpdateOTP(context.Background(), "k", func(r *otp.Record, _ bool) (otp.Change, error) {
		r.Attempts = 99
		r.CodeHash = nil
		return otp.Keep, otp.ErrMaxAttempts
	})
	if !errors.Is(err, otp.ErrMaxAttempts) {
		t.Fatalf("got %v, want ErrMaxAttempts", err)
	}
	if rec := e.getOTP(t, "k"); rec.Attempts != 1 || string(rec.CodeHash) != "hash" {
		t.Fatalf("got %+v, want the record unchanged", rec)
	}
	// Keep on a missing key writes nothing either.
	e.update(t, "k2", func(r *otp.Record, _ bool) (otp.Change, error) {
		r.KeepUntil = keep
		return otp.Keep, nil
	})
	e.notFound(t, "k2")
}

func testUpdateDelete(t *testing.T, e *env) {
	keep := e.clk.now().Add(time.Hour)
	e.saveSend(t, "k", Message("r1", "a", "1"), SetRecord(keep, 0))
	e.saveSend(t, "k2", Message("r2", "a", "2"), SetRecord(keep, 0))
	e.update(t, "k", func(*otp.Record, bool) (otp.Change, error) { return otp.Delete, nil })
	e.notFound(t, "k")
	var sawFound = true
	e.update(t, "k", func(_ *otp.Record, found bool) (otp.Change, error) {
		sawFound = found
		return otp.Keep, nil
	})
	if sawFound {
		t.Fatal("fn got found true after Delete")
	}
	// Deleting a record leaves its messages and other records.
	e.message(t, "r1")
	e.getOTP(t, "k2")
	// Deleting a missing key is no error.
	e.update(t, "none", func(*otp.Record, bool) (otp.Change, error) { return otp.Delete, nil })
}

// testUpdateErrorCommitted: fn's error comes back once its change is
// committed (a wrong guess is counted and answered ErrInvalidOTP).
func testUpdateErrorCommitted(t *testing.T, e *env) {
	keep := e.clk.now().Add(time.Hour)
	e.saveSend(t, "k", Message("r1", "a", "1"), SetRecord(keep, 0))
	errOwn := errors.New("own error")
	for i, want := range []error{otp.ErrInvalidOTP, errOwn} {
		err := e.b.UpdateOTP(context.Background(), "k", func(r *otp.Record, _ bool) (otp.Change, error) {
			r.Attempts++
			return otp.Put, want
		})
		if !errors.Is(err, want) {
			t.Fatalf("got %v, want %v", err, want)
		}
		if rec := e.getOTP(t, "k"); rec.Attempts != i+1 {
			t.Fatalf("got Attempts %d, want %d", rec.Attempts, i+1)
		}
	}
}

// testExpiryKeepUntilPast: a record written with a KeepUntil that is zero
// or past is gone at once, for GetOTP and for the next UpdateOTP.
func testExpiryKeepUntilPast(t *testing.T, e *env) {
	now := e.clk.now()
	for _, tt := range []struct {
		name string
		keep time.Time
	}{{"Past", now.Add(-time.Second)}, {"Zero", time.Time{}}} {
		t.Run(tt.name, func(t *testing.T) {
			key := "c1/" + tt.name
			e.saveSend(t, key, Message("s"+tt.name, "a", "1"), SetRecord(now.Add(time.Hour), 3))
			e.update(t, key, func(r *otp.Record, _ bool) (otp.Change, error) {
				r.KeepUntil = tt.keep
				return otp.Put, nil
			})
			e.notFound(t, key)
			// SaveSend writing such a record stores the message alone.
			e.saveSend(t, key, Message("r"+tt.name, "a", "2"), SetRecord(tt.keep, 3))
			e.notFound(t, key)
			e.message(t, "r"+tt.name)
			var sawFound = true
			e.update(t, key, func(_ *otp.Record, found bool) (otp.Change, error) {
				sawFound = found
				return otp.Keep, nil
			})
			if sawFound {
				t.Fatal("UpdateOTP: fn got found true")
			}
		})
	}
}

// testExpiryByClock: a record is live until its KeepUntil, by the clock
// of Options.Now, and then reads as missing: GetOTP answers ErrNotFound
// and UpdateOTP and SaveSend hand fn a fresh record.
func testExpiryByClock(t *testing.T, e *env) {
	keep := e.clk.now().Add(time.Minute)
	e.saveSend(t, "k", Message("r1", "a", "1"), SetRecord(keep, 3))
	e.saveSend(t, "k2", Message("r2", "a", "2"), SetRecord(keep, 3))
	e.clk.add(time.Minute - time.Millisecond)
	if rec := e.getOTP(t, "k"); rec.Attempts != 3 {
		t.Fatalf("before KeepUntil: got %+v", rec)
	}
	e.clk.add(2 * time.Millisecond)
	e.notFound(t, "k")
	var sawFound = true
	var saw otp.Record
	e.update(t, "k", func(r *otp.Record, found bool) (otp.Change, error) {
		sawFound, saw = found, *r
		return otp.Keep, nil
	})
	if sawFound || saw.Attempts != 0 || saw.CodeHash != nil || saw.Key != "k" {
		t.Fatalf("UpdateOTP: fn got found %v, %+v; want a fresh record", sawFound, saw)
	}
	e.saveSend(t, "k2", Message("r3", "a", "3"), func(r *otp.Record, found bool) {
		sawFound, saw = found, *r
		r.KeepUntil = e.clk.now().Add(time.Hour)
	})
	if sawFound || saw.Attempts != 0 || saw.CodeHash != nil || saw.Key != "k2" {
		t.Fatalf("SaveSend: fn got found %v, %+v; want a fresh record", sawFound, saw)
	}
	if rec := e.getOTP(t, "k2"); rec.Attempts != 0 || rec.CodeHash != nil {
		t.Fatalf("record written over an expired one: got %+v", rec)
	}
}

// The concurrent cases run n read-modify-writes of one record at once, as
// otp.Service.Verify does them: each must see the writes of the ones
// committed before it (fn may run more than once to get there).
const (
	concurrency = 30
	maxAttempts = 5
)

// verify is otp.Service.Verify's update: a wrong guess is counted and
// answered ErrInvalidOTP, maxAttempts of them block the code, a right one
// uses the code up. requestID gets the matched send (its last run's).
func verify(guess []byte, now time.Time, requestID *string) func(*otp.Record, bool) (otp.Change, error) {
	return func(r *otp.Record, found bool) (otp.Change, error) {
		*requestID = ""
		if !found {
			return otp.Keep, otp.ErrNotFound
		}
		if r.Attempts >= maxAttempts {
			return otp.Keep, otp.ErrMaxAttempts
		}
		if r.CodeHash == nil || !now.Before(r.ExpiresAt) {
			return otp.Keep, otp.ErrNotFound
		}
		if !bytes.Equal(r.CodeHash, guess) {
			r.Attempts++
			r.LastFailAt = now
			return otp.Put, otp.ErrInvalidOTP
		}
		*requestID = r.RequestID
		r.CodeHash, r.ExpiresAt, r.RequestID = nil, time.Time{}, ""
		r.Attempts, r.LastFailAt = 0, time.Time{}
		return otp.Put, nil
	}
}

// verifyAll runs concurrent verifies of the record under key, guess(i)
// being the i-th one's code, and counts the outcomes.
func verifyAll(t *testing.T, e *env, key string, guess func(i int) []byte) (ok, invalid, maxed, notFound int) {
	t.Helper()
	errs := make([]error, concurrency)
	ids := make([]string, concurrency)
	now := e.clk.now()
	parallel(concurrency, func(i int) {
		errs[i] = e.b.UpdateOTP(context.Background(), key, verify(guess(i), now, &ids[i]))
	})
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
			if ids[i] != "r1" {
				t.Errorf("verify %d: matched request %q, want r1", i, ids[i])
			}
		case errors.Is(err, otp.ErrInvalidOTP):
			invalid++
		case errors.Is(err, otp.ErrMaxAttempts):
			maxed++
		case errors.Is(err, otp.ErrNotFound):
			notFound++
		default:
			t.Fatalf("verify %d: %v", i, err)
		}
	}
	return ok, invalid, maxed, notFound
}

// saveCode stores the live code "hash" of request r1 under key.
func saveCode(t *testing.T, e *env, key string) {
	t.Helper()
	e.saveSend(t, key, Message("r1", "a", "1"), func(r *otp.Record, _ bool) {
		r.CodeHash = []byte("hash")
		r.RequestID = "r1"
		r.ExpiresAt = e.clk.now().Add(5 * time.Minute)
		r.KeepUntil = e.clk.now().Add(time.Hour)
	})
}

func testConcurrentNoLostUpdates(t *testing.T, e *env) {
	keep := e.clk.now().Add(time.Hour)
	var errs [concurrency]error
	parallel(concurrency, func(i int) {
		errs[i] = e.b.UpdateOTP(context.Background(), "k", func(r *otp.Record, _ bool) (otp.Change, error) {
			r.Attempts++
			r.KeepUntil = keep
			return otp.Put, nil
		})
	})
	for _, err := range errs {
		if err != nil {
			t.Fatalf("UpdateOTP: %v", err)
		}
	}
	if rec := e.getOTP(t, "k"); rec.Attempts != concurrency {
		t.Fatalf("got Attempts %d, want %d", rec.Attempts, concurrency)
	}
}

// testConcurrentOneCode: the same right code sent 30 times at once
// verifies once; the others find it used.
func testConcurrentOneCode(t *testing.T, e *env) {
	saveCode(t, e, "k")
	ok, invalid, maxed, notFound := verifyAll(t, e, "k", func(int) []byte { return []byte("hash") })
	if ok != 1 || notFound != concurrency-1 || invalid+maxed != 0 {
		t.Fatalf("got %d ok, %d not found, %d invalid, %d max attempts; want 1 ok, %d not found",
			ok, notFound, invalid, maxed, concurrency-1)
	}
	if rec := e.getOTP(t, "k"); rec.CodeHash != nil || rec.RequestID != "" {
		t.Fatalf("got %+v, want the code used up", rec)
	}
}

// testConcurrentWrongGuesses: 30 wrong guesses at once count exactly
// maxAttempts; the rest are refused without being counted.
func testConcurrentWrongGuesses(t *testing.T, e *env) {
	saveCode(t, e, "k")
	ok, invalid, maxed, notFound := verifyAll(t, e, "k", func(int) []byte { return []byte("wrong") })
	if invalid != maxAttempts || maxed != concurrency-maxAttempts || ok+notFound != 0 {
		t.Fatalf("got %d invalid, %d max attempts, %d ok, %d not found; want %d invalid, %d max attempts",
			invalid, maxed, ok, notFound, maxAttempts, concurrency-maxAttempts)
	}
	if rec := e.getOTP(t, "k"); rec.Attempts != maxAttempts || rec.CodeHash == nil {
		t.Fatalf("got Attempts %d (code %v), want %d and the code kept", rec.Attempts, rec.CodeHash != nil, maxAttempts)
	}
}

// testConcurrentMixed: three right guesses among 27 wrong ones, at once.
// Whatever the order, the outcomes are those of some serial order: at
// most one success, and never more than maxAttempts counted.
func testConcurrentMixed(t *testing.T, e *env) {
	saveCode(t, e, "k")
	ok, invalid, maxed, notFound := verifyAll(t, e, "k", func(i int) []byte {
		if i%10 == 3 {
			return []byte("hash")
		}
		return []byte("wrong")
	})
	rec := e.getOTP(t, "k")
	switch ok {
	case 1: // verified before maxAttempts wrong guesses: the rest found it used
		if invalid >= maxAttempts || maxed != 0 || notFound != concurrency-1-invalid || rec.CodeHash != nil || rec.Attempts != 0 {
			t.Fatalf("one success with %d invalid, %d max attempts, %d not found, record %+v: no serial order gives that",
				invalid, maxed, notFound, rec)
		}
	case 0: // maxAttempts wrong guesses first: the code is blocked
		if invalid != maxAttempts || maxed != concurrency-maxAttempts || rec.Attempts != maxAttempts || rec.CodeHash == nil {
			t.Fatalf("no success with %d invalid, %d max attempts, %d not found, record %+v: no serial order gives that",
				invalid, maxed, notFound, rec)
		}
	default:
		t.Fatalf("got %d successes, want at most 1", ok)
	}
}
