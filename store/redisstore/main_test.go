package redisstore_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpgate/otpgate/store/redisstore"
	"github.com/otpgate/otpgate/store/redisstore/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// prefixes makes every DB a test opens use keys of its own on the shared
// cluster.
var prefixes atomic.Int64

// open opens a DB on the shared cluster under a fresh key prefix (unless
// opts has one), closed when t ends.
func open(t testing.TB, opts redisstore.Options) *redisstore.DB {
	t.Helper()
	c := redistest.Shared(t)
	if opts.Addrs == nil {
		opts.Addrs = c.Addrs
	}
	if opts.Prefix == "" {
		opts.Prefix = newPrefix()
	}
	if opts.WaitTimeout == 0 {
		// A replica starved of CPU (the race detector, parallel packages)
		// may take a while to acknowledge: no shortfall for that here.
		opts.WaitTimeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	db, err := redisstore.Open(ctx, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func newPrefix() string { return fmt.Sprintf("t%d-%d:", time.Now().UnixNano()%1e6, prefixes.Add(1)) }
