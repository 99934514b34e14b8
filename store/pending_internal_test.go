package store

import (
	"context"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/otpgate/otpgate/otp"
)

// TestKeepPending_ExactKeepsExpiry: a receipt waiting for its message that
// comes again, now known to carry an exact id, is marked Exact and keeps
// the expiry it was first given (it is not kept longer, nor for ever).
func TestKeepPending_ExactKeepsExpiry(t *testing.T) {
	// badger expires entries by the real clock, so the store's starts there.
	clock := time.Now().Truncate(time.Second)
	now := func() time.Time { return clock }
	db := openTest(t, Options{Now: now, PendingReceiptTTL: time.Hour})
	ctx := context.Background()
	r := otp.Receipt{Carrier: "c1", MessageID: "0a1b", State: otp.StateDelivered, DoneAt: clock}
	if _, matched, _, err := db.ApplyReceipt(ctx, r); err != nil || matched {
		t.Fatalf("first receipt: matched %v, err %v; want kept pending", matched, err)
	}
	key := prefixPending + "c1/" + otp.CanonicalID("0a1b")
	read := func() (pendingReceipt, uint64) {
		var pr pendingReceipt
		var exp uint64
		err := db.view(func(txn *badger.Txn) error {
			var err error
			var ok bool
			exp, ok, err = getValueExpiry(txn, key, &pr)
			if err == nil && !ok {
				t.Fatalf("no pending receipt under %q", key)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return pr, exp
	}
	first, firstExp := read()
	if first.Exact || firstExp != unixCeil(clock.Add(time.Hour)) {
		t.Fatalf("kept: exact %v, expires %d; want not exact, expiring at %d", first.Exact, firstExp, unixCeil(clock.Add(time.Hour)))
	}
	clock = clock.Add(10 * time.Minute)
	r.Exact = true
	if _, matched, _, err := db.ApplyReceipt(ctx, r); err != nil || matched {
		t.Fatalf("exact receipt: matched %v, err %v; want kept pending", matched, err)
	}
	again, exp := read()
	if !again.Exact || exp != firstExp {
		t.Fatalf("after the exact receipt: exact %v, expires %d; want exact, expiring at %d as first kept", again.Exact, exp, firstExp)
	}
}
