package daemon

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/store/redisstore"
	"github.com/otpgate/otpgate/store/redisstore/redistest"
)

// TestFleetJoin_ClockSkew: a node whose clock is more than maxClockSkew
// off the Redis server's refuses to join (to start); one within it joins.
func TestFleetJoin_ClockSkew(t *testing.T) {
	if _, _, err := redistest.Binaries(); err != nil {
		t.Skip(err.Error())
	}
	srv, err := redistest.Start(t.TempDir(), 1, 0) // one standalone server
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ctx := context.Background()
	db, err := redisstore.Open(ctx, redisstore.Options{Addrs: srv.Addrs[:1], OnShortfall: redisstore.ShortfallDegrade,
		WaitTimeout: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cfg := &Config{Fleet: FleetConfig{NodeID: "n1", BindLease: Duration(10 * time.Second)}}
	secret := []byte(strings.Repeat("ab", 32))
	for _, c := range []struct {
		skew time.Duration
		ok   bool
	}{{5 * time.Second, false}, {-5 * time.Second, false}, {time.Second, true}} {
		f := newFleetNode(db, cfg, secret, slog.New(slog.DiscardHandler))
		f.clock = func() time.Time { return time.Now().Add(c.skew) }
		err := f.join(ctx)
		if c.ok != (err == nil) || (err != nil && !strings.Contains(err.Error(), "clock")) {
			t.Errorf("clock off by %s: join got %v, want ok=%v", c.skew, err, c.ok)
		}
	}
}
