package redisstore

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/otpgate/otpgate/otp"
	"github.com/otpgate/otpgate/store/redisstore/redistest"
)

// openInternal opens a DB on the shared cluster under a key prefix of its
// own, closed when t ends.
func openInternal(t *testing.T, opts Options) *DB {
	t.Helper()
	c := redistest.Shared(t)
	opts.Addrs = c.Addrs
	opts.Prefix = fmt.Sprintf("i%d:", time.Now().UnixNano())
	opts.WaitTimeout = 5 * time.Second // a starved replica is no shortfall here
	db, err := Open(context.Background(), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// setHook sets *hook to call fn once, and clears it when t ends.
func setHook(t *testing.T, hook *func(), fn func()) {
	var once sync.Once
	*hook = func() { once.Do(fn) }
	t.Cleanup(func() { *hook = nil })
}

func oneMessage(id, carrier, partID string) otp.Message {
	return otp.Message{RequestID: id, ClientID: "c1", Number: "919876543210", Display: "+91-98******10",
		Carrier: carrier, Parts: []otp.Part{{MessageID: partID, State: otp.StateAccepted}}, SubmittedAt: time.Now()}
}

func keepHour(r *otp.Record, _ bool) { r.KeepUntil = time.Now().Add(time.Hour) }

// TestIndexWrite_ReceiptInBetween: a receipt that is stored as pending
// after SaveSend wrote the message, just before it writes the index entry,
// is not lost: the entry's write reads the pending receipt in the same
// step, and SaveSend applies it.
func TestIndexWrite_ReceiptInBetween(t *testing.T) {
	db := openInternal(t, Options{})
	ctx := context.Background()
	setHook(t, &beforeIndexWrite, func() {
		_, matched, _, err := db.ApplyReceipt(ctx, otp.Receipt{Carrier: "a", MessageID: "77", State: otp.StateDelivered})
		if err != nil || matched {
			t.Errorf("ApplyReceipt in between: matched %v, %v; want kept pending", matched, err)
		}
	})
	m, err := db.SaveSend(ctx, "c1/1", oneMessage("r77", "a", "77"), keepHour)
	if err != nil {
		t.Fatal(err)
	}
	if m.Parts[0].State != otp.StateDelivered {
		t.Fatalf("SaveSend returned part %s, want DELIVERED", m.Parts[0].State)
	}
	if got, _ := db.Message(ctx, "r77"); got.Parts[0].State != otp.StateDelivered {
		t.Fatalf("stored part %s, want DELIVERED", got.Parts[0].State)
	}
}

// TestPendingWrite_IndexInBetween: a receipt that found no index entry
// and is about to be kept pending when SaveSend writes the entry is not
// lost: its pending write is guarded by the missing entry, fails, and it
// reads again and matches the message.
func TestPendingWrite_IndexInBetween(t *testing.T) {
	db := openInternal(t, Options{})
	ctx := context.Background()
	setHook(t, &afterReceiptRead, func() {
		if _, err := db.SaveSend(ctx, "c1/1", oneMessage("r88", "a", "88"), keepHour); err != nil {
			t.Errorf("SaveSend in between: %v", err)
		}
	})
	m, matched, changed, err := db.ApplyReceipt(ctx, otp.Receipt{Carrier: "a", MessageID: "88", State: otp.StateDelivered})
	if err != nil || !matched || !changed || m.RequestID != "r88" {
		t.Fatalf("ApplyReceipt: %s matched %v changed %v, %v; want r88 matched and changed", m.RequestID, matched, changed, err)
	}
	if got, _ := db.Message(ctx, "r88"); got.Parts[0].State != otp.StateDelivered {
		t.Fatalf("stored part %s, want DELIVERED", got.Parts[0].State)
	}
}
