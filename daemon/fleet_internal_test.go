package daemon

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/otp"
	"github.com/otpgate/otpgate/smpp"
	"github.com/otpgate/otpgate/store/redisstore"
	"github.com/otpgate/otpgate/store/redisstore/redistest"
)

// standaloneRedis starts one standalone Redis server for the test (it is
// skipped without the binaries) and opens a store on it; both are closed
// when the test ends.
func standaloneRedis(t *testing.T) *redisstore.DB {
	t.Helper()
	if _, _, err := redistest.Binaries(); err != nil {
		t.Skip(err.Error())
	}
	srv, err := redistest.Start(t.TempDir(), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	db, err := redisstore.Open(context.Background(), redisstore.Options{Addrs: srv.Addrs[:1],
		OnShortfall: redisstore.ShortfallDegrade, WaitTimeout: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestFleetJoin_ClockSkew: a node whose clock is more than maxClockSkew
// off the Redis server's refuses to join (to start); one within it joins.
func TestFleetJoin_ClockSkew(t *testing.T) {
	ctx := context.Background()
	db := standaloneRedis(t)
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

// TestFleetForward_StaleView: a node whose view of a carrier's leases
// still names a holder that stopped (the slot was taken over since) fails
// over to the new holder read again from Redis, in the same send; a dead
// holder that Redis still names is tried once per send, not twice.
func TestFleetForward_StaleView(t *testing.T) {
	ctx := context.Background()
	db := standaloneRedis(t)

	holder := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != internalSubmitPath {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(`{"ids":["X1"]}`))
	}))
	defer holder.Close()
	live := holder.Listener.Addr().String()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()

	cfg := &Config{Fleet: FleetConfig{NodeID: "n1", BindLease: Duration(10 * time.Second)}}
	f := newFleetNode(db, cfg, []byte(strings.Repeat("ab", 32)), slog.New(slog.DiscardHandler))
	roots := x509.NewCertPool()
	roots.AddCert(holder.Certificate())
	f.fwd = newForwarder(&tls.Config{RootCAs: roots})
	var results []string
	f.forwarded = func(_, result string) { results = append(results, result) }
	sms := otp.SMS{RequestID: "r1", To: "919800000001", Text: "code"}

	// Carrier a: the view names the stopped holder, Redis the new one.
	if held, _, err := db.TakeBindLease(ctx, "a", "0", "n3#t3 "+live, 10*time.Second); err != nil || !held {
		t.Fatalf("lease: %v %v", held, err)
	}
	f.saw("a", "0", "n2#t2 "+dead)
	ids, err := f.Forward(ctx, "a", sms)
	if err != nil || !slices.Equal(ids, []string{"X1"}) || !slices.Equal(results, []string{"not_bound", "ok"}) {
		t.Fatalf("stale view: got %v, %v, forwards %v; want [X1] through the new holder after one not_bound", ids, err, results)
	}

	// Carrier b: the dead holder still holds the lease.
	results = nil
	if held, _, err := db.TakeBindLease(ctx, "b", "0", "n2#t2 "+dead, 10*time.Second); err != nil || !held {
		t.Fatalf("lease: %v %v", held, err)
	}
	f.saw("b", "0", "n2#t2 "+dead)
	if _, err := f.Forward(ctx, "b", sms); !errors.Is(err, smpp.ErrNotBound) || !slices.Equal(results, []string{"not_bound"}) {
		t.Fatalf("dead holder: got %v, forwards %v; want ErrNotBound after one not_bound", err, results)
	}

	// Carrier c: nobody holds it, nothing is forwarded.
	results = nil
	if _, err := f.Forward(ctx, "c", sms); !errors.Is(err, smpp.ErrNotBound) || len(results) != 0 {
		t.Fatalf("no holder: got %v, forwards %v; want ErrNotBound and none", err, results)
	}
}
