package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/otpgate/otpgate/otp"
	"github.com/otpgate/otpgate/store"
)

func TestDB_RecordLateAck(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, t.TempDir(), store.Options{})
	keep := time.Now().Add(time.Hour)

	t.Run("ErrRequestNotFound", func(t *testing.T) {
		err := db.RecordLateAck(ctx, otp.Ack{RequestID: "none", Carrier: "a", MessageID: "1", Parts: 1})
		if !errors.Is(err, otp.ErrRequestNotFound) {
			t.Fatalf("got %v, want ErrRequestNotFound", err)
		}
	})
	t.Run("ReceiptBeforeAndAfter", func(t *testing.T) {
		// A message of unknown outcome: no carrier, no parts.
		saveSend(t, db, "c1/1", message("r1", ""), setRecord(keep, 0))
		// Part 2's receipt came before its late ack: kept pending.
		if _, matched, _, err := db.ApplyReceipt(ctx, otp.Receipt{Carrier: "a", MessageID: "B2", State: otp.StateDelivered}); err != nil || matched {
			t.Fatalf("early receipt: matched %v, %v", matched, err)
		}
		for i, id := range []string{"A1", "B2"} {
			if err := db.RecordLateAck(ctx, otp.Ack{RequestID: "r1", Carrier: "a", MessageID: id, Part: i, Parts: 2}); err != nil {
				t.Fatalf("RecordLateAck %s: %v", id, err)
			}
		}
		m, err := db.Message(ctx, "r1")
		if err != nil {
			t.Fatal(err)
		}
		if m.Carrier != "a" || len(m.Parts) != 2 || m.Parts[0].MessageID != "A1" || m.Parts[1].State != otp.StateDelivered {
			t.Fatalf("message %+v: want carrier a, parts A1 (accepted) and B2 (delivered)", m)
		}
		// Part 1's receipt after its late ack matches through the index.
		_, matched, changed, err := db.ApplyReceipt(ctx, otp.Receipt{Carrier: "a", MessageID: "A1", State: otp.StateDelivered})
		if err != nil || !matched || !changed {
			t.Fatalf("receipt after the late ack: matched %v changed %v %v", matched, changed, err)
		}
	})
	t.Run("OtherCarrierUnchanged", func(t *testing.T) {
		// The send failed over and went out through b: a's late ack of
		// its copy changes nothing.
		saveSend(t, db, "c1/2", message("r2", "b", "B-1"), setRecord(keep, 0))
		if err := db.RecordLateAck(ctx, otp.Ack{RequestID: "r2", Carrier: "a", MessageID: "X", Parts: 1}); err != nil {
			t.Fatal(err)
		}
		if m, _ := db.Message(ctx, "r2"); m.Carrier != "b" || m.Parts[0].MessageID != "B-1" {
			t.Fatalf("message %+v changed by another carrier's late ack", m)
		}
	})
	t.Run("BadPart", func(t *testing.T) {
		if err := db.RecordLateAck(ctx, otp.Ack{RequestID: "r1", Carrier: "a", MessageID: "X", Part: 2, Parts: 2}); err == nil {
			t.Fatal("part 2 of 2 accepted")
		}
	})
}
