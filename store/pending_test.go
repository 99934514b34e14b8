package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/otpgate/otpgate/otp"
	"github.com/otpgate/otpgate/store"
)

// TestDB_PendingCapPerCarrier: beyond the cap, a carrier's oldest
// unmatched receipts are dropped (and counted); the newest are kept, and
// other carriers are not touched. The order survives a reopen.
func TestDB_PendingCapPerCarrier(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	var mu sync.Mutex
	dropped := map[string]int{}
	// A minute between receipts: the order must survive the reopen, where
	// only the expiry times tell it.
	clk := newClock(time.Now())
	opts := store.Options{Now: clk.now, MaxPendingPerCarrier: 3, PendingDropped: func(c string) {
		mu.Lock()
		dropped[c]++
		mu.Unlock()
	}}
	db, err := store.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	apply := func(db *store.DB, carrier, id string) {
		t.Helper()
		if _, matched, _, err := db.ApplyReceipt(ctx, otp.Receipt{Carrier: carrier, MessageID: id, State: otp.StateDelivered}); err != nil || matched {
			t.Fatalf("ApplyReceipt %s: matched %v, %v", id, matched, err)
		}
		clk.add(time.Minute)
	}
	// Ids whose order by key is the reverse of their age.
	ids := []string{"5", "4", "3", "2", "1"}
	apply(db, "b", "900")
	for _, id := range ids { // 5 and 4 are dropped
		apply(db, "a", id)
	}
	apply(db, "a", "1") // a repeat is no new receipt
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if dropped["a"] != 2 || dropped["b"] != 0 {
		t.Fatalf("dropped: got %v, want a:2", dropped)
	}
	mu.Unlock()

	// After a reopen, receipt 3 is the oldest: one more drops it.
	clk.add(time.Minute)
	db = openDB(t, dir, opts)
	apply(db, "a", "6")
	keep := time.Now().Add(time.Hour)
	for _, tt := range []struct {
		carrier, id string
		want        otp.State
	}{
		{"a", "5", otp.StateAccepted}, {"a", "4", otp.StateAccepted}, {"a", "3", otp.StateAccepted},
		{"a", "2", otp.StateDelivered}, {"a", "1", otp.StateDelivered}, {"a", "6", otp.StateDelivered},
		{"b", "900", otp.StateDelivered},
	} {
		m := saveSend(t, db, "k"+tt.id, message("r"+tt.id, tt.carrier, tt.id), setRecord(keep, 0))
		if got := m.Parts[0].State; got != tt.want {
			t.Errorf("%s/%s: got %s, want %s", tt.carrier, tt.id, got, tt.want)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if dropped["a"] != 3 {
		t.Fatalf("dropped after reopen: got %d, want 3", dropped["a"])
	}
}

// TestDB_PendingAppliedFreesCap: receipts used up by their SaveSend no
// longer count against the cap, so a busy carrier whose receipts often
// beat their acknowledgement drops none.
func TestDB_PendingAppliedFreesCap(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	dropped := 0
	db := openDB(t, t.TempDir(), store.Options{MaxPendingPerCarrier: 2, PendingDropped: func(string) {
		mu.Lock()
		dropped++
		mu.Unlock()
	}})
	keep := time.Now().Add(time.Hour)
	for i := range 10 {
		id := fmt.Sprint(i)
		if _, _, _, err := db.ApplyReceipt(ctx, otp.Receipt{Carrier: "a", MessageID: id, State: otp.StateDelivered}); err != nil {
			t.Fatal(err)
		}
		if m := saveSend(t, db, "k"+id, message("r"+id, "a", id), setRecord(keep, 0)); m.Parts[0].State != otp.StateDelivered {
			t.Fatalf("%s: got %s, want DELIVERED", id, m.Parts[0].State)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if dropped != 0 {
		t.Fatalf("dropped %d, want 0", dropped)
	}
}

// TestDB_QueueCallback_Invalid: a callback without id or client is
// refused (the round trip is in the contract suite).
func TestDB_QueueCallback_Invalid(t *testing.T) {
	db := openDB(t, t.TempDir(), store.Options{})
	for _, cb := range []otp.Callback{{}, {ID: "mo1"}, {ClientID: "c1"}} {
		if err := db.QueueCallback(context.Background(), cb); err == nil {
			t.Fatalf("queued %+v", cb)
		}
	}
}
