package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/otpgate/otpgate/otp"
	"github.com/otpgate/otpgate/store"
)

func backlog(tb testing.TB, db *store.DB) int {
	tb.Helper()
	n, err := db.CallbackBacklog(context.Background())
	if err != nil {
		tb.Fatalf("CallbackBacklog: %v", err)
	}
	return n
}

// TestDB_CallbackBacklog: the backlog counts every queued callback, due
// or not, of every client, and drops those done.
func TestDB_CallbackBacklog(t *testing.T) {
	db, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if n := backlog(t, db); n != 0 {
		t.Fatalf("empty queue: got %d, want 0", n)
	}
	now := time.Now()
	for i, c := range []struct {
		client string
		due    time.Time
	}{{"a", now}, {"a", now.Add(time.Hour)}, {"b", now}} {
		cb := otp.Callback{ID: string(rune('p' + i)), ClientID: c.client, Kind: otp.CallbackMO, FirstAt: now, Due: c.due}
		if err := db.QueueCallback(context.Background(), cb); err != nil {
			t.Fatal(err)
		}
	}
	if n := backlog(t, db); n != 3 {
		t.Fatalf("got %d, want 3", n)
	}
	cbs, err := db.DueCallbacks(context.Background(), now, 10)
	if err != nil || len(cbs) != 2 {
		t.Fatalf("due: got %d (%v), want 2", len(cbs), err)
	}
	if err := db.CallbackDone(context.Background(), cbs[0]); err != nil {
		t.Fatal(err)
	}
	if n := backlog(t, db); n != 2 {
		t.Fatalf("after one done: got %d, want 2", n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := db.CallbackBacklog(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("ended ctx: got %v, want context.Canceled", err)
	}
	db.Close()
	if _, err := db.CallbackBacklog(context.Background()); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("after Close: got %v, want ErrClosed", err)
	}
}
