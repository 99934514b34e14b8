package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/otpgate/otpgate/otp"
)

// holdWriter makes the writer run a closure that waits for the returned
// release, so that the writes queued meanwhile all go into the next batch.
func holdWriter(tb testing.TB, db *DB) (release func()) {
	tb.Helper()
	started, unblock := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- db.update(context.Background(), func(*badger.Txn) error {
			close(started)
			<-unblock
			return nil
		})
	}()
	select {
	case <-started:
	case err := <-done:
		tb.Fatalf("holding write ended before it held the writer: %v", err)
	case <-time.After(waitLimit):
		tb.Fatal("the writer never ran the holding write")
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			close(unblock)
			select {
			case err := <-done:
				if err != nil {
					tb.Errorf("holding write: %v", err)
				}
			case <-time.After(waitLimit):
				tb.Error("the holding write was never committed")
			}
		})
	}
	tb.Cleanup(release)
	return release
}

// waitLimit bounds every wait of these tests: far beyond what any of them
// takes, so that a broken writer fails the test instead of hanging it.
const waitLimit = 10 * time.Second

// queued runs op in a goroutine and returns once it waits in the writer's
// queue behind n-1 others, so that ops run in the order they are queued.
// An op that never queues a write fails the test after waitLimit.
func queued(tb testing.TB, db *DB, n int, op func()) {
	tb.Helper()
	go op()
	for deadline := time.Now().Add(waitLimit); len(db.writes) < n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			tb.Fatalf("write %d never reached the writer's queue (%d queued)", n, len(db.writes))
		}
	}
}

// TestBatch_Interleaved queues reads-modify-writes of one record, a send, a
// receipt for it, a failing write and a panicking one, all into one group
// commit, and checks each saw the writes committed before it in the same
// transaction and that the failures left nothing behind.
func TestBatch_Interleaved(t *testing.T) {
	ctx := context.Background()
	db, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	// A cleanup, not a defer: it runs after holdWriter's release, so that a
	// test failing while the writer is held does not wait forever in Close.
	t.Cleanup(func() { db.Close() })
	keep := time.Now().Add(time.Hour)
	if _, err := db.SaveSend(ctx, "c/1", otp.Message{RequestID: "r0", Carrier: "a"}, func(r *otp.Record, _ bool) {
		r.CodeHash, r.KeepUntil = []byte("h"), keep
	}); err != nil {
		t.Fatalf("SaveSend: %v", err)
	}

	const maxAttempts = 2
	guess := func(right bool) func(*otp.Record, bool) (otp.Change, error) {
		return func(r *otp.Record, found bool) (otp.Change, error) {
			if !found || r.CodeHash == nil {
				return otp.Keep, otp.ErrNotFound
			}
			if r.Attempts >= maxAttempts {
				return otp.Keep, otp.ErrMaxAttempts
			}
			if !right {
				r.Attempts++
				return otp.Put, otp.ErrInvalidOTP
			}
			r.CodeHash, r.Attempts = nil, 0
			return otp.Put, nil
		}
	}

	type result struct {
		name string
		err  error
	}
	var (
		mu      sync.Mutex
		results = map[string]error{}
		wg      sync.WaitGroup
	)
	record := func(name string, err error) {
		mu.Lock()
		results[name] = err
		mu.Unlock()
	}
	var receiptMatched bool
	var panicked any
	ops := []struct {
		name string
		fn   func() error
	}{
		{"wrong1", func() error { return db.UpdateOTP(ctx, "c/1", guess(false)) }},
		// Writes, then fails: its write must not be committed.
		{"partial", func() error {
			return db.update(ctx, func(txn *badger.Txn) error {
				if err := txn.Set([]byte(prefixOTP+"c/partial"), []byte("{}")); err != nil {
					return err
				}
				return errors.New("boom")
			})
		}},
		{"right", func() error { return db.UpdateOTP(ctx, "c/1", guess(true)) }},
		{"rightAgain", func() error { return db.UpdateOTP(ctx, "c/1", guess(true)) }},
		{"lateAckUnknown", func() error {
			_, _, err := db.RecordLateAck(ctx, otp.Ack{RequestID: "nope", Carrier: "a", MessageID: "1", Parts: 1})
			return err
		}},
		{"send2", func() error {
			_, err := db.SaveSend(ctx, "c/2", otp.Message{RequestID: "r2", Carrier: "a",
				Parts: []otp.Part{{MessageID: "00000000A2", State: otp.StateAccepted}}}, func(r *otp.Record, _ bool) {
				r.CodeHash, r.KeepUntil = []byte("h2"), keep
			})
			return err
		}},
		{"receipt2", func() error {
			_, matched, _, err := db.ApplyReceipt(ctx, otp.Receipt{Carrier: "a", MessageID: "162", State: otp.StateDelivered})
			receiptMatched = matched
			return err
		}},
		{"panic", func() (err error) {
			defer func() { panicked = recover() }()
			return db.update(ctx, func(txn *badger.Txn) error {
				_ = txn.Set([]byte(prefixOTP+"c/panic"), []byte("{}"))
				panic("closure panic")
			})
		}},
		{"wrong2", func() error { return db.UpdateOTP(ctx, "c/2", guess(false)) }},
		{"wrong3", func() error { return db.UpdateOTP(ctx, "c/2", guess(false)) }},
		{"wrong4", func() error { return db.UpdateOTP(ctx, "c/2", guess(false)) }},
		{"mark2", func() error { return db.MarkVerified(ctx, "r2") }},
	}

	release := holdWriter(t, db)
	for i, op := range ops {
		wg.Add(1)
		queued(t, db, i+1, func() {
			defer wg.Done()
			record(op.name, op.fn())
		})
	}
	release()
	wg.Wait()

	for _, w := range []result{
		{"wrong1", otp.ErrInvalidOTP},
		{"right", nil},
		{"rightAgain", otp.ErrNotFound},
		{"lateAckUnknown", otp.ErrRequestNotFound},
		{"send2", nil},
		{"receipt2", nil},
		{"wrong2", otp.ErrInvalidOTP},
		{"wrong3", otp.ErrInvalidOTP},
		{"wrong4", otp.ErrMaxAttempts},
		{"mark2", nil},
	} {
		if got := results[w.name]; !errors.Is(got, w.err) || (w.err == nil && got != nil) {
			t.Errorf("%s: got %v, want %v", w.name, got, w.err)
		}
	}
	if err := results["partial"]; err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("partial: got %v, want boom", err)
	}
	if panicked != "closure panic" {
		t.Errorf("panic: got %v re-raised in the caller, want closure panic", panicked)
	}
	if !receiptMatched {
		t.Error("receipt did not match the message saved before it in the batch")
	}

	rec, err := db.GetOTP(ctx, "c/1")
	if err != nil || rec.CodeHash != nil || rec.Attempts != 0 {
		t.Errorf("c/1: got %+v, %v; want verified (no code, 0 attempts)", rec, err)
	}
	rec, err = db.GetOTP(ctx, "c/2")
	if err != nil || rec.Attempts != maxAttempts {
		t.Errorf("c/2: got Attempts %d, %v; want %d", rec.Attempts, err, maxAttempts)
	}
	for _, k := range []string{"c/partial", "c/panic"} {
		if _, err := db.GetOTP(ctx, k); !errors.Is(err, otp.ErrNotFound) {
			t.Errorf("%s: got %v, want ErrNotFound (a failed write left data)", k, err)
		}
	}
	m, err := db.Message(ctx, "r2")
	if err != nil || !m.Verified || m.Parts[0].State != otp.StateDelivered {
		t.Errorf("r2: got %+v, %v; want verified and delivered", m, err)
	}
}

// TestBatch_TxnTooBig checks that a batch that outgrows one badger
// transaction is committed in several, and a write too big on its own fails
// alone.
func TestBatch_TxnTooBig(t *testing.T) {
	ctx := context.Background()
	db, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	// A cleanup, not a defer: it runs after holdWriter's release, so that a
	// test failing while the writer is held does not wait forever in Close.
	t.Cleanup(func() { db.Close() })
	// badger's default limit is about 9.6 MB per transaction, counting the
	// values under its 1 MB value threshold in full: 6 writes of 1.8 MB do
	// not fit in one, and one of 10.8 MB fits in none.
	big := strings.Repeat("x", 900<<10)
	const n = 6
	errs := make([]error, n+1)
	var wg sync.WaitGroup
	release := holdWriter(t, db)
	for i := range n {
		wg.Add(1)
		queued(t, db, i+1, func() {
			defer wg.Done()
			errs[i] = db.update(ctx, func(txn *badger.Txn) error {
				if err := txn.Set([]byte{'b', byte('0' + i)}, []byte(big)); err != nil {
					return err
				}
				return txn.Set([]byte{'c', byte('0' + i)}, []byte(big))
			})
		})
	}
	wg.Add(1)
	queued(t, db, n+1, func() {
		defer wg.Done()
		errs[n] = db.update(ctx, func(txn *badger.Txn) error {
			for j := range 12 {
				if err := txn.Set([]byte{'h', byte('0' + j)}, []byte(big)); err != nil {
					return err
				}
			}
			return nil
		})
	})
	release()
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Errorf("write %d: got %v, want nil", i, errs[i])
		}
	}
	if !errors.Is(errs[n], badger.ErrTxnTooBig) {
		t.Errorf("huge write: got %v, want ErrTxnTooBig", errs[n])
	}
	err = db.view(func(txn *badger.Txn) error {
		for i := range n {
			for _, k := range []byte("bc") {
				if _, err := txn.Get([]byte{k, byte('0' + i)}); err != nil {
					return fmt.Errorf("write %d: %w", i, err)
				}
			}
		}
		_, err := txn.Get([]byte{'h', '0'})
		if !errors.Is(err, badger.ErrKeyNotFound) {
			return errors.New("part of the huge write was committed")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
