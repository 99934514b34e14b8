package store_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpgate/otpgate/otp"
	"github.com/otpgate/otpgate/store"
	"github.com/otpgate/otpgate/store/storetest"
)

// clock is a settable clock for Options.Now.
type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock    { c := &clock{}; c.set(t); return c }
func (c *clock) set(t time.Time)     { c.ns.Store(t.UnixNano()) }
func (c *clock) now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *clock) add(d time.Duration) { c.ns.Add(int64(d)) }

func openDB(tb testing.TB, dir string, opts store.Options) *store.DB {
	tb.Helper()
	db, err := store.Open(dir, opts)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() {
		if err := db.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return db
}

// Fixtures shared with the contract suite.
var (
	message   = storetest.Message
	setRecord = storetest.SetRecord
)

func saveSend(tb testing.TB, db *store.DB, key string, msg otp.Message, fn func(*otp.Record, bool)) otp.Message {
	tb.Helper()
	m, err := db.SaveSend(context.Background(), key, msg, fn)
	if err != nil {
		tb.Fatalf("SaveSend: %v", err)
	}
	return m
}

func TestDB_Reopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	keep := time.Now().Add(time.Hour)
	db, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if _, err := db.SaveSend(ctx, "k", message("r1", "a", "26"), setRecord(keep, 3)); err != nil {
		t.Fatalf("SaveSend: %v", err)
	}
	if _, _, _, err := db.ApplyReceipt(ctx, otp.Receipt{Carrier: "a", MessageID: "99", State: otp.StateDelivered}); err != nil {
		t.Fatalf("ApplyReceipt: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	db = openDB(t, dir, store.Options{})
	rec, err := db.GetOTP(ctx, "k")
	if err != nil || rec.Attempts != 3 {
		t.Fatalf("GetOTP: got %+v, %v", rec, err)
	}
	_, matched, changed, err := db.ApplyReceipt(ctx, otp.Receipt{Carrier: "a", MessageID: "1A", State: otp.StateDelivered})
	if err != nil || !matched || !changed {
		t.Fatalf("ApplyReceipt after reopen: got matched %v changed %v, %v", matched, changed, err)
	}
	m := saveSend(t, db, "k2", message("r2", "a", "99"), setRecord(keep, 0))
	if m.Parts[0].State != otp.StateDelivered {
		t.Fatalf("pending receipt after reopen: got %s, want DELIVERED", m.Parts[0].State)
	}
	// Used up on disk, not only in the pending filter: after another
	// reopen, a message that reuses the id does not get it.
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	db = openDB(t, dir, store.Options{})
	if m := saveSend(t, db, "k3", message("r3", "a", "99"), setRecord(keep, 0)); m.Parts[0].State != otp.StateAccepted {
		t.Fatalf("applied receipt after another reopen: got %s, want ACCEPTED", m.Parts[0].State)
	}
}

// TestDB_TTL checks the badger TTLs of messages and pending receipts: a
// clock set back further than the TTL stores them already expired.
func TestDB_TTL(t *testing.T) {
	ctx := context.Background()
	clk := newClock(time.Now().Add(-2 * time.Hour))
	db := openDB(t, t.TempDir(), store.Options{Now: clk.now, MessageTTL: time.Hour, PendingReceiptTTL: time.Hour})

	saveSend(t, db, "k", message("old", "a", "1"), setRecord(clk.now().Add(3*time.Hour), 0))
	if _, err := db.Message(ctx, "old"); !errors.Is(err, otp.ErrRequestNotFound) {
		t.Fatalf("expired message: got %v, want ErrRequestNotFound", err)
	}
	if _, matched, _, err := db.ApplyReceipt(ctx, otp.Receipt{Carrier: "a", MessageID: "1", State: otp.StateDelivered}); err != nil || matched {
		t.Fatalf("receipt for expired message: got matched %v, %v", matched, err)
	}
	clk.set(time.Now())
	m := saveSend(t, db, "k", message("new", "a", "1"), setRecord(clk.now().Add(time.Hour), 0))
	if m.Parts[0].State != otp.StateAccepted {
		t.Fatalf("expired pending receipt applied: got %s, want ACCEPTED", m.Parts[0].State)
	}
	if _, err := db.Message(ctx, "new"); err != nil {
		t.Fatalf("Message: %v", err)
	}
}

func TestDB_Close(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if !db.Healthy() {
		t.Fatal("Healthy = false on an open DB")
	}
	runErr := make(chan error, 1)
	rctx, cancel := context.WithCancel(ctx)
	go func() { runErr <- db.Run(rctx) }()
	cancel()
	if err := <-runErr; err != nil {
		t.Fatalf("Run: got %v, want nil", err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if db.Healthy() {
		t.Fatal("Healthy = true after Close")
	}
	if _, err := db.GetOTP(ctx, "k"); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("GetOTP after Close: got %v, want ErrClosed", err)
	}
	if _, err := db.SaveSend(ctx, "k", message("r", "a", "1"), nil); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("SaveSend after Close: got %v, want ErrClosed", err)
	}
}

func TestOpen_Errors(t *testing.T) {
	if _, err := store.Open("", store.Options{}); err == nil {
		t.Fatal("Open(\"\"): got nil error")
	}
	dir := t.TempDir()
	openDB(t, dir, store.Options{}) // holds the directory's lock
	if _, err := store.Open(dir, store.Options{}); err == nil {
		t.Fatal("second Open of a locked dir: got nil error")
	}
}
