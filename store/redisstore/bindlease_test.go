package redisstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/otpgate/otpgate/store/redisstore"
)

func fleetNode(id string, at time.Time) redisstore.FleetNode {
	return redisstore.FleetNode{ID: id, SecretFP: "s1", ConfigFP: "c1", Heartbeat: at}
}

// TestBindLease: one holder at a time per slot; the holder renews, another
// takes the slot only after the lease ran out or was given back, and a
// release by a node that no longer holds it changes nothing.
func TestBindLease(t *testing.T) {
	n := nodes(t, 2, redisstore.Options{})
	a, b := n[0], n[1]
	ctx := context.Background()
	// Long enough that a loaded machine's pauses between the steps do
	// not let a's lease run out before the test means it to.
	const ttl = 2 * time.Second
	take := func(db *redisstore.DB, holder string) (bool, string) {
		t.Helper()
		held, cur, err := db.TakeBindLease(ctx, "acme", "trx-0", holder, ttl)
		if err != nil {
			t.Fatal(err)
		}
		return held, cur
	}
	if held, _ := take(a, "node-a"); !held {
		t.Fatal("a: the free slot was not leased")
	}
	if held, cur := take(b, "node-b"); held || cur != "node-a" {
		t.Fatalf("b: got held=%v holder %q, want a's lease to stand", held, cur)
	}
	// Renewed by a, the lease outlives its first ttl.
	for range 3 {
		time.Sleep(ttl / 3)
		if held, _ := take(a, "node-a"); !held {
			t.Fatal("a: renewal refused")
		}
	}
	if held, _ := take(b, "node-b"); held {
		t.Fatal("b took a renewed lease")
	}
	// a stops renewing: b gets the slot once the lease ran out (and holds
	// it for long: what follows must not depend on time).
	deadline := time.Now().Add(10 * time.Second)
	for {
		held, _, err := b.TakeBindLease(ctx, "acme", "trx-0", "node-b", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if held {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("b never got the lease a stopped renewing")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := a.ReleaseBindLease(ctx, "acme", "trx-0", "node-a"); err != nil {
		t.Fatal(err)
	}
	holders, err := a.BindLeaseHolders(ctx, "acme", []string{"trx-0", "trx-1"})
	if err != nil {
		t.Fatal(err)
	}
	if holders[0] != "node-b" || holders[1] != "" {
		t.Fatalf("holders after a's stale release: got %q, want [node-b \"\"]", holders)
	}
	if err := b.ReleaseBindLease(ctx, "acme", "trx-0", "node-b"); err != nil {
		t.Fatal(err)
	}
	if held, _ := take(a, "node-a"); !held {
		t.Fatal("a: the slot b gave back was not leased")
	}
}

// TestFleetNodes: heartbeats are listed with their fingerprints, stale ones
// are dropped, and the fleet's config fingerprint is set once unless
// forced.
func TestFleetNodes(t *testing.T) {
	n := nodes(t, 1, redisstore.Options{})
	db := n[0]
	ctx := context.Background()
	now := time.Now()
	for _, fn := range []struct {
		id string
		at time.Time
	}{{"a", now}, {"b", now.Add(-time.Minute)}} {
		if err := db.Heartbeat(ctx, fleetNode(fn.id, fn.at)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := db.FleetNodes(ctx, now, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != "a" || got[0].SecretFP != "s1" || got[0].ConfigFP != "c1" {
		t.Fatalf("FleetNodes: got %+v, want only a (b is stale)", got)
	}
	if err := db.LeaveFleet(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.FleetNodes(ctx, now, 10*time.Second); len(got) != 0 {
		t.Fatalf("after LeaveFleet: got %+v", got)
	}
	if fp, _ := db.FleetConfig(ctx); fp != "" {
		t.Fatalf("FleetConfig before any: %q", fp)
	}
	if ok, _ := db.SetFleetConfig(ctx, "c1", true); !ok {
		t.Fatal("first SetFleetConfig refused")
	}
	if ok, _ := db.SetFleetConfig(ctx, "c2", true); ok {
		t.Fatal("SetFleetConfig onlyIfUnset replaced a set fingerprint")
	}
	if fp, _ := db.FleetConfig(ctx); fp != "c1" {
		t.Fatalf("FleetConfig: got %q, want c1", fp)
	}
	if ok, _ := db.SetFleetConfig(ctx, "c2", false); !ok {
		t.Fatal("forced SetFleetConfig refused")
	}
	if fp, _ := db.FleetConfig(ctx); fp != "c2" {
		t.Fatalf("FleetConfig after adopt: got %q, want c2", fp)
	}
	if st, err := db.ServerTime(ctx); err != nil || time.Since(st).Abs() > time.Minute {
		t.Fatalf("ServerTime: %v %v", st, err)
	}
}

// TestCallbackBacklog counts queued callbacks, due or not, fleet-wide, and
// forgets those delivered.
func TestCallbackBacklog(t *testing.T) {
	n := nodes(t, 2, redisstore.Options{MinScan: -1})
	a, b := n[0], n[1]
	ctx := context.Background()
	count := func(db *redisstore.DB) int {
		t.Helper()
		c, err := db.CallbackBacklog(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if c := count(a); c != 0 {
		t.Fatalf("empty queue: got %d", c)
	}
	now := time.Now()
	for i := range 3 {
		if err := a.QueueCallback(ctx, moCallback(fmt.Sprintf("bk%d", i), now.Add(time.Duration(i)*time.Hour))); err != nil {
			t.Fatal(err)
		}
	}
	if c := count(b); c != 3 {
		t.Fatalf("through the other node: got %d, want 3", c)
	}
	cbs := due(t, b, now)
	if len(cbs) != 1 {
		t.Fatalf("due: got %d, want 1", len(cbs))
	}
	if err := b.CallbackDone(ctx, cbs[0]); err != nil {
		t.Fatal(err)
	}
	if c := count(a); c != 2 {
		t.Fatalf("after one delivered: got %d, want 2", c)
	}
}
