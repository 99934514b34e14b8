package store_test

import (
	"context"
	"fmt"
	"reflect"
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

func TestDB_Callbacks_Enqueue(t *testing.T) {
	clk := newClock(time.Now().Truncate(time.Second))
	db := openDB(t, t.TempDir(), store.Options{Now: clk.now})
	keep := clk.now().Add(time.Hour)
	done := clk.now().Add(-time.Minute).UTC()

	t.Run("OK", func(t *testing.T) {
		saveSend(t, db, "c1/1", message("r1", "a", "A1"), setRecord(keep, 0))
		if got := due(t, db, clk.now(), 10); len(got) != 0 {
			t.Fatalf("got %d callbacks after a send, want 0", len(got))
		}
		applyReceipt(t, db, otp.Receipt{Carrier: "a", MessageID: "a1", State: otp.StateDelivered, Error: "000", DoneAt: done})
		got := due(t, db, clk.now(), 10)
		if len(got) != 1 {
			t.Fatalf("got %d callbacks, want 1", len(got))
		}
		cb := got[0]
		want := otp.Callback{ID: cb.ID, RequestID: "r1", ClientID: "c1", PhoneNumber: "+91-98******10", Carrier: "a",
			State: otp.StateDelivered, Error: "000", DoneAt: done, FirstAt: clk.now(), Due: clk.now()}
		if cb.ID == "" || !cb.DoneAt.Equal(want.DoneAt) || !cb.FirstAt.Equal(want.FirstAt) || !cb.Due.Equal(want.Due) {
			t.Fatalf("got %+v, want %+v", cb, want)
		}
		cb.DoneAt, cb.FirstAt, cb.Due = want.DoneAt, want.FirstAt, want.Due
		if !reflect.DeepEqual(cb, want) {
			t.Fatalf("got %+v, want %+v", cb, want)
		}
		// A duplicate receipt, and a later non-final one, queue nothing.
		applyReceipt(t, db, otp.Receipt{Carrier: "a", MessageID: "A1", State: otp.StateDelivered, DoneAt: done})
		applyReceipt(t, db, otp.Receipt{Carrier: "a", MessageID: "A1", State: otp.StateAccepted, DoneAt: done})
		if got := due(t, db, clk.now(), 10); len(got) != 1 {
			t.Fatalf("got %d callbacks after duplicates, want 1", len(got))
		}
		if err := db.CallbackDone(context.Background(), got[0]); err != nil {
			t.Fatal(err)
		}
		if got := due(t, db, clk.now(), 10); len(got) != 0 {
			t.Fatalf("got %d callbacks after CallbackDone, want 0", len(got))
		}
	})

	t.Run("ReceiptBeforeSend", func(t *testing.T) {
		// The receipt waits for its message; SaveSend applies it and queues
		// the callback in its own transaction.
		if matched, _ := applyReceipt(t, db, otp.Receipt{Carrier: "a", MessageID: "00B2", State: otp.StateUndeliverable,
			Error: "001", DoneAt: done}); matched {
			t.Fatal("matched a message not yet saved")
		}
		if got := due(t, db, clk.now(), 10); len(got) != 0 {
			t.Fatalf("got %d callbacks for a pending receipt, want 0", len(got))
		}
		saveSend(t, db, "c1/2", message("r2", "a", "B2"), setRecord(keep, 0))
		got := due(t, db, clk.now(), 10)
		if len(got) != 1 || got[0].RequestID != "r2" || got[0].State != otp.StateUndeliverable || got[0].Error != "001" {
			t.Fatalf("got %+v, want one UNDELIVERABLE callback of r2", got)
		}
		if err := db.CallbackDone(context.Background(), got...); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("MultiPart", func(t *testing.T) {
		saveSend(t, db, "c1/3", message("r3", "a", "C1", "C2"), setRecord(keep, 0))
		applyReceipt(t, db, otp.Receipt{Carrier: "a", MessageID: "C1", State: otp.StateDelivered, Error: "000", DoneAt: done})
		if got := due(t, db, clk.now(), 10); len(got) != 0 {
			t.Fatalf("got %+v after the first of two parts, want none", got)
		}
		applyReceipt(t, db, otp.Receipt{Carrier: "a", MessageID: "C2", State: otp.StateDelivered, Error: "000", DoneAt: done})
		if got := due(t, db, clk.now(), 10); len(got) != 1 || got[0].State != otp.StateDelivered {
			t.Fatalf("got %+v after both parts, want one DELIVERED", got)
		}
	})
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

func TestDB_DueCallbacks(t *testing.T) {
	ctx := context.Background()
	clk := newClock(time.Now().Truncate(time.Second))
	db := openDB(t, t.TempDir(), store.Options{Now: clk.now})
	keep := clk.now().Add(time.Hour)
	// Client "a" has a backlog queued first; "ab" (whose hex key starts
	// like a's) and "b" come later.
	queue(t, db, "a", 20, keep)
	clk.add(time.Second)
	queue(t, db, "ab", 1, keep)
	queue(t, db, "b", 3, keep)

	t.Run("PerClient", func(t *testing.T) {
		got := due(t, db, clk.now(), 2)
		per := map[string]int{}
		for _, cb := range got {
			per[cb.ClientID]++
		}
		if per["a"] != 2 || per["ab"] != 1 || per["b"] != 2 || len(got) != 5 {
			t.Fatalf("got per client %v, want a:2 ab:1 b:2", per)
		}
	})

	t.Run("NotYetDue", func(t *testing.T) {
		got := due(t, db, clk.now().Add(-time.Millisecond), 100)
		if len(got) != 20 {
			t.Fatalf("got %d due before the later ones were queued, want a's 20", len(got))
		}
	})

	t.Run("Reschedule", func(t *testing.T) {
		cb := due(t, db, clk.now(), 1)[0]
		cb.Attempts = 1
		next := clk.now().Add(5 * time.Second)
		if err := db.RescheduleCallback(ctx, cb, next); err != nil {
			t.Fatal(err)
		}
		for _, c := range due(t, db, clk.now(), 100) {
			if c.ID == cb.ID {
				t.Fatalf("rescheduled callback still due: %+v", c)
			}
		}
		var found *otp.Callback
		for _, c := range due(t, db, next, 100) {
			if c.ID == cb.ID {
				found = &c
			}
		}
		if found == nil || found.Attempts != 1 || !found.Due.Equal(next) {
			t.Fatalf("got %+v at the new due time, want attempts 1 due %v", found, next)
		}
		// Rescheduling a callback no longer queued writes nothing.
		if err := db.CallbackDone(ctx, *found); err != nil {
			t.Fatal(err)
		}
		if err := db.RescheduleCallback(ctx, *found, next); err != nil {
			t.Fatal(err)
		}
		for _, c := range due(t, db, next.Add(time.Hour), 100) {
			if c.ID == cb.ID {
				t.Fatalf("a callback done came back: %+v", c)
			}
		}
	})
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
