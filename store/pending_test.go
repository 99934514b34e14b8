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

// TestDB_PendingFinalNeverReplaced: receipts that come before their
// message follow the same rule as those that find it: the first final
// state decides, a later one (final or not) changes nothing.
func TestDB_PendingFinalNeverReplaced(t *testing.T) {
	tests := []struct {
		name   string
		states []otp.State
		want   otp.State
	}{
		{"DeliveredThenUndeliverable", []otp.State{otp.StateDelivered, otp.StateUndeliverable}, otp.StateDelivered},
		{"DeliveredThenAccepted", []otp.State{otp.StateDelivered, otp.StateAccepted}, otp.StateDelivered},
		{"AcceptedThenDelivered", []otp.State{otp.StateAccepted, otp.StateDelivered}, otp.StateDelivered},
		{"ExpiredThenDelivered", []otp.State{otp.StateExpired, otp.StateDelivered}, otp.StateExpired},
	}
	ctx := context.Background()
	db := openDB(t, t.TempDir(), store.Options{})
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := fmt.Sprint(500 + i)
			for _, st := range tt.states {
				if _, matched, _, err := db.ApplyReceipt(ctx, otp.Receipt{Carrier: "a", MessageID: id, State: st}); err != nil || matched {
					t.Fatalf("ApplyReceipt: matched %v, %v", matched, err)
				}
			}
			m := saveSend(t, db, "k"+id, message("r"+id, "a", id), setRecord(time.Now().Add(time.Hour), 0))
			if got := m.Parts[0].State; got != tt.want {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
		})
	}
}

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

func TestDB_QueueCallback(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, t.TempDir(), store.Options{})
	now := time.Now().UTC().Truncate(time.Second) // the record expires a day after FirstAt
	cb := otp.Callback{ID: "mo1", Kind: otp.CallbackMO, ClientID: "c1", Carrier: "a", From: "+919876543210",
		To: "OTPGATE", Text: "STOP", DoneAt: now, FirstAt: now, Due: now}
	if err := db.QueueCallback(ctx, cb); err != nil {
		t.Fatal(err)
	}
	if err := db.QueueCallback(ctx, otp.Callback{}); err == nil {
		t.Fatal("queued a callback without id or client")
	}
	got, err := db.DueCallbacks(ctx, now, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Kind != otp.CallbackMO || got[0].From != cb.From || got[0].Text != "STOP" || got[0].To != "OTPGATE" || !got[0].DoneAt.Equal(now) {
		t.Fatalf("got %+v, want %+v", got, cb)
	}
}
