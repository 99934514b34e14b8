package store_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpgate/otpgate/otp"
	"github.com/otpgate/otpgate/store"
)

func due(tb testing.TB, db *store.DB, now time.Time, perClient int) []otp.Callback {
	tb.Helper()
	cbs, err := db.DueCallbacks(context.Background(), now, perClient)
	if err != nil {
		tb.Fatalf("DueCallbacks: %v", err)
	}
	return cbs
}

func applyReceipt(tb testing.TB, db *store.DB, r otp.Receipt) (matched, changed bool) {
	tb.Helper()
	_, matched, changed, err := db.ApplyReceipt(context.Background(), r)
	if err != nil {
		tb.Fatalf("ApplyReceipt: %v", err)
	}
	return matched, changed
}

// queue puts n callbacks of client in the queue, one receipt each, at the
// clock's time.
func queue(tb testing.TB, db *store.DB, client string, n int, keep time.Time) {
	tb.Helper()
	for i := range n {
		id := fmt.Sprintf("%s-%d", client, i)
		m := message(id, "a", id)
		m.ClientID = client
		saveSend(tb, db, client+"/"+id, m, setRecord(keep, 0))
		applyReceipt(tb, db, otp.Receipt{Carrier: "a", MessageID: id, State: otp.StateDelivered, Error: "000"})
	}
}

func TestDB_Callbacks_Reopen(t *testing.T) {
	dir := t.TempDir()
	clk := newClock(time.Now().Truncate(time.Second))
	db, err := store.Open(dir, store.Options{Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	queue(t, db, "c1", 1, clk.now().Add(time.Hour))
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openDB(t, dir, store.Options{Now: clk.now})
	if got := due(t, db, clk.now(), 10); len(got) != 1 {
		t.Fatalf("got %d callbacks after reopening, want 1", len(got))
	}
}

func TestDB_WatchCallbacks(t *testing.T) {
	db := openDB(t, t.TempDir(), store.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	var calls atomic.Int32
	woke := make(chan struct{}, 1)
	stopped := make(chan error, 1)
	go func() {
		stopped <- db.WatchCallbacks(ctx, func() {
			calls.Add(1)
			select {
			case woke <- struct{}{}:
			default:
			}
		})
	}()
	// The subscription starts asynchronously: queue until it is heard.
	keep := time.Now().Add(time.Hour)
	for i := 0; ; i++ {
		queue(t, db, fmt.Sprintf("w%d", i), 1, keep)
		select {
		case <-woke:
		case <-time.After(100 * time.Millisecond):
			if i < 100 {
				continue
			}
			t.Fatal("no notification after 100 callbacks queued")
		}
		break
	}
	cancel()
	if err := <-stopped; err != nil {
		t.Fatalf("WatchCallbacks returned %v, want nil", err)
	}
}
