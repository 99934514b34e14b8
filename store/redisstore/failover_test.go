package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/otpgate/otpgate/otp"
	"github.com/otpgate/otpgate/store/redisstore"
	"github.com/otpgate/otpgate/store/redisstore/redistest"
)

// TestFailover_MasterKilled kills a master (SIGKILL) of a cluster of its
// own, with one replica per master. Every record whose write was
// confirmed before is read back once the replica has taken over. The
// promoted replica has no replica of its own, so a write to its slots
// cannot be made durable on two machines: it fails with ErrShortfall, never
// a silent success, while the other shards take writes. Once the dead node
// is back (it rejoins as a replica) every write is accepted again. It logs
// the times.
func TestFailover_MasterKilled(t *testing.T) {
	c := redistest.New(t)
	// Each write to the shard without a replica waits this long.
	db := open(t, redisstore.Options{Addrs: c.Addrs, WaitTimeout: time.Second})
	ctx := context.Background()
	const n = 60 // spread over every master
	keep := time.Now().Add(time.Hour)
	key := func(i int) string { return fmt.Sprintf("c1/9198765%05d", i) }
	put := func(i, attempts int) error {
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		return db.UpdateOTP(wctx, key(i), func(r *otp.Record, _ bool) (otp.Change, error) {
			r.Attempts, r.KeepUntil = attempts, keep
			return otp.Put, nil
		})
	}
	for i := range n {
		if err := put(i, 1); err != nil {
			t.Fatal(err)
		}
	}
	victim := c.Masters()[0]
	victim.Kill()
	killed := time.Now()
	within := func(what string, d time.Duration, cond func() error) time.Duration {
		t.Helper()
		for {
			err := cond()
			if err == nil {
				return time.Since(killed).Round(10 * time.Millisecond)
			}
			if time.Since(killed) > d {
				t.Fatalf("%s: not within %s of the kill: %v", what, d, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	readable := within("every confirmed record read back", time.Minute, func() error {
		for i := range n {
			rec, err := db.GetOTP(ctx, key(i))
			if err != nil {
				return err
			}
			if rec.Attempts != 1 {
				return fmt.Errorf("record %d: %+v", i, rec)
			}
		}
		return nil
	})
	short, ok := 0, 0
	for i := range n {
		switch err := put(i, 2); {
		case err == nil:
			ok++
		case errors.Is(err, redisstore.ErrShortfall):
			short++
		default:
			t.Fatalf("record %d: write after the promotion: %v", i, err)
		}
	}
	if short == 0 || ok == 0 {
		t.Fatalf("after the promotion: %d writes refused, %d accepted; want the dead master's refused, the others accepted", short, ok)
	}
	if err := victim.Restart(); err != nil {
		t.Fatal(err)
	}
	restarted := time.Since(killed).Round(10 * time.Millisecond)
	writable := within("every write accepted after the dead node rejoined", 2*time.Minute, func() error {
		for i := range n {
			if err := put(i, 3); err != nil {
				return fmt.Errorf("record %d: %w", i, err)
			}
		}
		return nil
	})
	t.Logf("master killed at 0: confirmed records readable at %s; %d of %d writes refused (no second copy); node restarted at %s, every write accepted at %s",
		readable, short, n, restarted, writable)
}
