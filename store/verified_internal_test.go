package store

import (
	"context"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/otpgate/otpgate/otp"
)

// TestMarkVerified_MarkerAndEarlierMessages checks that MarkVerified writes
// only its marker (the message under m/ is not rewritten), that Message
// merges the marker in, and that a message an earlier release stored with
// Verified set still reads as verified.
func TestMarkVerified_MarkerAndEarlierMessages(t *testing.T) {
	ctx := context.Background()
	db, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer db.Close()
	expires := unixCeil(time.Now().Add(time.Hour))
	err = db.update(ctx, func(txn *badger.Txn) error {
		if err := setValue(txn, prefixMessage+"new", otp.Message{RequestID: "new", Carrier: "a"}, expires); err != nil {
			return err
		}
		return setValue(txn, prefixMessage+"old", otp.Message{RequestID: "old", Carrier: "a", Verified: true}, expires)
	})
	if err != nil {
		t.Fatalf("storing messages: %v", err)
	}
	entry := func(k string) (version, expiresAt uint64) {
		if err := db.view(func(txn *badger.Txn) error {
			item, err := txn.Get([]byte(k))
			if err == nil {
				version, expiresAt = item.Version(), item.ExpiresAt()
			}
			return err
		}); err != nil {
			t.Fatalf("reading %s: %v", k, err)
		}
		return version, expiresAt
	}
	version := func(k string) uint64 { v, _ := entry(k); return v }
	before := version(prefixMessage + "new")
	if err := db.MarkVerified(ctx, "new"); err != nil {
		t.Fatalf("MarkVerified: %v", err)
	}
	if after := version(prefixMessage + "new"); after != before {
		t.Errorf("MarkVerified rewrote the message (version %d -> %d); want only its marker written", before, after)
	}
	// The marker lives MessageTTL from the verify: as long as its message
	// at least (fails the test when the marker is missing).
	if _, markerExp := entry(prefixVerified + "new"); markerExp < expires || markerExp > unixCeil(time.Now().Add(DefaultMessageTTL)) {
		t.Errorf("marker expires at %d; want from the message's %d to MessageTTL from now", markerExp, expires)
	}
	for _, id := range []string{"new", "old"} {
		m, err := db.Message(ctx, id)
		if err != nil || !m.Verified {
			t.Errorf("Message(%s): got %+v, %v; want Verified", id, m, err)
		}
	}
}
