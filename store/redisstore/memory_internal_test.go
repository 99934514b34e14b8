package redisstore

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/otpgate/otpgate/otp"
)

// TestMemoryPerSend measures (MEMORY USAGE) what one send keeps in Redis:
// its OTP record, its message after a receipt, the message id's index
// entries (a decimal id has a hex alternate) and its callback while
// queued. It logs the figures (go test -v) and fails only if they are far
// beyond what the README promises.
func TestMemoryPerSend(t *testing.T) {
	db := openInternal(t, Options{})
	ctx := context.Background()
	now := time.Now()
	const reqID = "0123456789abcdef01234567" // 12 random bytes in hex, as otp makes them
	const msgID = "3000000042"
	rec := func(r *otp.Record, _ bool) {
		r.CodeHash = make([]byte, 32)
		r.ExpiresAt = now.Add(5 * time.Minute)
		r.RequestID = reqID
		r.Sends = []time.Time{now}
		r.KeepUntil = now.Add(time.Hour)
	}
	m := otp.Message{RequestID: reqID, ClientID: "shop", Number: "919876543210", Display: "+91-98******10",
		Carrier: "carrier-1", Parts: []otp.Part{{MessageID: msgID, State: otp.StateAccepted}}, SubmittedAt: now}
	if _, err := db.SaveSend(ctx, "shop/919876543210", m, rec); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := db.ApplyReceipt(ctx, otp.Receipt{Carrier: "carrier-1", MessageID: msgID, State: otp.StateDelivered, Error: "000", DoneAt: now}); err != nil {
		t.Fatal(err)
	}
	canonical, alts := otp.IDForms(msgID)
	usage := func(key string) int64 {
		n, err := db.rdb.MemoryUsage(ctx, key, 0).Result()
		if err != nil {
			t.Fatalf("MEMORY USAGE %s: %v", key, err)
		}
		return n
	}
	recordB := usage(db.recordKey("shop/919876543210"))
	messageB := usage(db.messageKey(reqID))
	indexB := usage(db.idKey('x', "carrier-1", canonical)) + usage(db.idKey('y', "carrier-1", alts[0]))
	// A queued callback lives in its shard's hashes and the client's
	// sorted set: measure the growth of those keys for 1000 of them.
	k := db.cbKeys(shardOf(reqID))
	before := usage(k.records) + usage(k.due) + usage(k.queue+"shop")
	const n = 1000
	for i := range n {
		cb := otp.Callback{ID: "cb" + strconv.Itoa(i) + "." + strconv.Itoa(shardOf(reqID)), RequestID: reqID, ClientID: "shop",
			PhoneNumber: "+91-98******10", Carrier: "carrier-1", State: otp.StateDelivered, Error: "000", DoneAt: now, FirstAt: now, Due: now}
		if err := db.QueueCallback(ctx, cb); err != nil {
			t.Fatal(err)
		}
	}
	callbackB := (usage(k.records) + usage(k.due) + usage(k.queue+"shop") - before) / n
	t.Logf("bytes in Redis per send: record %d, message %d, id index %d (x and y), total %d; per queued callback %d",
		recordB, messageB, indexB, recordB+messageB+indexB, callbackB)
	if total := recordB + messageB + indexB; total > 2048 {
		t.Fatalf("a send keeps %d bytes, want under 2048", total)
	}
}
