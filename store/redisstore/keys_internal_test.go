package redisstore

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/otpgate/otpgate/otp"
	"github.com/otpgate/otpgate/store/redisstore/redistest"
)

// TestKeySlot: keySlot agrees with the server's CLUSTER KEYSLOT, hash tags
// included.
func TestKeySlot(t *testing.T) {
	c := redistest.Shared(t)
	for _, k := range []string{"123456789", "foo", "{user1000}.following", "a{}b", "{}{x}", "x{y", "otpgate:m:{s12}:abc", "p:{a/0x1}"} {
		out, err := c.Nodes[0].CLI("CLUSTER", "KEYSLOT", k)
		if err != nil {
			t.Fatal(err)
		}
		if want, _ := strconv.Atoi(out); int(keySlot(k)) != want {
			t.Errorf("keySlot(%q) = %d, server says %d", k, keySlot(k), want)
		}
	}
}

// TestSlots: the keys of each atomic write share a slot, and the shard
// tags spread messages evenly over the slot ranges.
func TestSlots(t *testing.T) {
	db := &DB{prefix: DefaultPrefix}
	for i, tg := range shardTags {
		if s := int(keySlot("{"+tg+"}")) * numShards / clusterSlots; s != i {
			t.Errorf("shard %d: tag %q in range %d", i, tg, s)
		}
	}
	for _, id := range []string{"r1", "0123456789abcdef0123", "x"} {
		s := shardOf(id)
		k := db.cbKeys(s)
		want := keySlot(db.messageKey(id))
		for _, key := range []string{k.records, k.due, k.owner, k.clients, k.queue + "client{1}"} {
			if got := keySlot(key); got != want {
				t.Errorf("%s: slot %d, message %s in %d", key, got, id, want)
			}
		}
		cb := "0011223344556677." + strconv.Itoa(s)
		if callbackShard(cb) != s {
			t.Errorf("callback id %s: shard %d, want %d", cb, callbackShard(cb), s)
		}
	}
	for _, carrier := range []string{"a", "we{ird}", "100%"} {
		x, y, p := db.idKey('x', carrier, "1F"), db.idKey('y', carrier, "1F"), db.idKey('p', carrier, "1F")
		if keySlot(x) != keySlot(y) || keySlot(y) != keySlot(p) {
			t.Errorf("carrier %q: x, y, p in slots %d %d %d", carrier, keySlot(x), keySlot(y), keySlot(p))
		}
		if db.idKey('x', carrier, "1F") == db.idKey('x', carrier+"}", "1F") {
			t.Errorf("carrier %q: escaping makes two carriers one key", carrier)
		}
	}
}

// TestTTLs: records expire in Redis at their KeepUntil, messages and their
// index entries MessageTTL after the send, pending receipts after
// PendingReceiptTTL; a message update keeps the message's expiry.
func TestTTLs(t *testing.T) {
	db := openInternal(t, Options{MessageTTL: 2 * time.Hour, PendingReceiptTTL: 3 * time.Hour})
	ctx := context.Background()
	now := time.Now()
	keep := now.Add(90 * time.Minute).Add(123456 * time.Nanosecond)
	if _, _, _, err := db.ApplyReceipt(ctx, otp.Receipt{Carrier: "a", MessageID: "42", State: otp.StateAccepted}); err != nil {
		t.Fatal(err)
	}
	expiresNear(t, db, db.idKey('p', "a", "42"), now.Add(3*time.Hour))
	if _, err := db.SaveSend(ctx, "c1/1", oneMessage("r1", "a", "1A"), func(r *otp.Record, _ bool) { r.KeepUntil = keep }); err != nil {
		t.Fatal(err)
	}
	pt, err := db.rdb.PExpireTime(ctx, db.recordKey("c1/1")).Result()
	if err != nil || time.UnixMilli(int64(pt/time.Millisecond)) != time.UnixMilli(keep.UnixMilli()+1) {
		t.Fatalf("record expires at %v (%v), want %v rounded up to the ms", pt, err, keep)
	}
	for _, k := range []string{db.messageKey("r1"), db.idKey('x', "a", "1A"), db.idKey('y', "a", "26")} {
		expiresNear(t, db, k, now.Add(2*time.Hour))
	}
	if _, _, _, err := db.ApplyReceipt(ctx, otp.Receipt{Carrier: "a", MessageID: "26", State: otp.StateDelivered}); err != nil {
		t.Fatal(err)
	}
	expiresNear(t, db, db.messageKey("r1"), now.Add(2*time.Hour))
}

// expiresNear fails t unless key expires within a few seconds of at.
func expiresNear(t *testing.T, db *DB, key string, at time.Time) {
	t.Helper()
	pt, err := db.rdb.PExpireTime(context.Background(), key).Result()
	if err != nil {
		t.Fatal(err)
	}
	if d := time.UnixMilli(int64(pt / time.Millisecond)).Sub(at); d < -5*time.Second || d > 5*time.Second {
		t.Fatalf("%s expires at %v, want about %v", key, time.UnixMilli(int64(pt/time.Millisecond)), at)
	}
}
