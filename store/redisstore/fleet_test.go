package redisstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpgate/otpgate/callback"
	"github.com/otpgate/otpgate/otp"
	"github.com/otpgate/otpgate/store/redisstore"
	"github.com/otpgate/otpgate/store/redisstore/redistest"
	"github.com/otpgate/otpgate/store/storetest"
)

// clock is a settable clock shared by the nodes of a test.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Now().UnixNano())
	return c
}

func (c *clock) now() time.Time           { return time.Unix(0, c.ns.Load()) }
func (c *clock) add(d time.Duration)      { c.ns.Add(int64(d)) }
func (c *clock) opts() redisstore.Options { return redisstore.Options{Now: c.now, MinScan: -1} }

// nodes opens n DBs sharing one key prefix: n gateway nodes of one fleet.
func nodes(t *testing.T, n int, opts redisstore.Options) []*redisstore.DB {
	t.Helper()
	opts.Prefix = newPrefix()
	out := make([]*redisstore.DB, n)
	for i := range out {
		o := opts
		o.NodeID = fmt.Sprintf("node%d", i)
		out[i] = open(t, o)
	}
	return out
}

func moCallback(id string, at time.Time) otp.Callback {
	return otp.Callback{ID: id, Kind: otp.CallbackMO, ClientID: "c1", Carrier: "a", From: "+919876543210",
		To: "OTPGATE", Text: "hi", DoneAt: at, FirstAt: at, Due: at}
}

func due(t *testing.T, db *redisstore.DB, now time.Time) []otp.Callback {
	t.Helper()
	cbs, err := db.DueCallbacks(context.Background(), now, 100)
	if err != nil {
		t.Fatalf("DueCallbacks: %v", err)
	}
	return cbs
}

// TestCallbackLease: a callback one node claimed is not handed to another
// while the claim's lease lasts, the lease is renewed while its node reads
// the queue, and once a node stops renewing (it died) another takes the
// callback. The node that lost the lease no longer hands it out nor
// reschedules it.
func TestCallbackLease(t *testing.T) {
	clk := newClock()
	opts := clk.opts()
	opts.CallbackLease = 30 * time.Second
	n := nodes(t, 2, opts)
	a, b := n[0], n[1]
	ctx := context.Background()
	for i := range 3 {
		if err := a.QueueCallback(ctx, moCallback(fmt.Sprintf("mo%d", i), clk.now())); err != nil {
			t.Fatal(err)
		}
	}
	if got := due(t, a, clk.now()); len(got) != 3 {
		t.Fatalf("node a: got %d due, want 3", len(got))
	}
	if got := due(t, b, clk.now()); len(got) != 0 {
		t.Fatalf("node b while a holds them: got %d, want 0", len(got))
	}
	// a reads the queue again within its lease: renewed.
	clk.add(20 * time.Second)
	if got := due(t, a, clk.now()); len(got) != 3 {
		t.Fatalf("node a again: got %d, want its 3", len(got))
	}
	clk.add(20 * time.Second) // past the first lease, within the renewed one
	if got := due(t, b, clk.now()); len(got) != 0 {
		t.Fatalf("node b within the renewed lease: got %d, want 0", len(got))
	}
	// a stops: once its lease has passed, b takes over.
	clk.add(31 * time.Second)
	got := due(t, b, clk.now())
	if len(got) != 3 {
		t.Fatalf("node b after a's lease: got %d, want 3", len(got))
	}
	// a learns it lost them: not handed out, not rescheduled.
	if got := due(t, a, clk.now()); len(got) != 0 {
		t.Fatalf("node a after losing the lease: got %d, want 0", len(got))
	}
	stale := got[0]
	if err := a.RescheduleCallback(ctx, stale, clk.now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := b.CallbackDone(ctx, got[1:]...); err != nil {
		t.Fatal(err)
	}
	if got := due(t, b, clk.now()); len(got) != 1 || got[0].ID != stale.ID {
		t.Fatalf("node b after a's stale reschedule: got %+v, want %s still due", got, stale.ID)
	}
}

// TestCallbackLease_NodeDiesMidDelivery runs a real dispatcher on two
// nodes: node a claims the callbacks and dies (its dispatcher and store
// stop) while its POST hangs; node b delivers every one after a's lease.
func TestCallbackLease_NodeDiesMidDelivery(t *testing.T) {
	const count = 5
	var (
		mu        sync.Mutex
		delivered = map[string]string{} // callback text -> node
		atA       atomic.Int64          // POSTs of node a
		hang      = make(chan struct{})
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Text string }
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			t.Errorf("callback body: %v", err)
		}
		node := r.URL.Query().Get("node")
		if node == "a" { // node a dies before its POSTs are answered
			atA.Add(1)
			select {
			case <-hang:
			case <-r.Context().Done():
			}
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		mu.Lock()
		delivered[body.Text] = node
		mu.Unlock()
	}))
	defer srv.Close()
	defer close(hang)

	n := nodes(t, 2, redisstore.Options{CallbackLease: time.Second})
	ctx := context.Background()
	for i := range count {
		cb := moCallback(fmt.Sprintf("mo%d", i), time.Now())
		cb.Text = cb.ID
		if err := n[0].QueueCallback(ctx, cb); err != nil {
			t.Fatal(err)
		}
	}
	start := func(db *redisstore.DB, node string) (stop func()) {
		dctx, cancel := context.WithCancel(ctx)
		settings := func(string, otp.CallbackKind) (string, string, bool) {
			return srv.URL + "/?node=" + node, "secret", true
		}
		d := callback.New(db, settings, callback.Options{PollInterval: 50 * time.Millisecond, Workers: count, PerClient: count})
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); d.Run(dctx) }()
		go func() { defer wg.Done(); db.Run(dctx) }()
		return func() { cancel(); wg.Wait() }
	}
	stopA := start(n[0], "a")
	// A new endpoint gets one POST at a time; the dispatcher's read has
	// claimed them all by then.
	waitFor(t, "node a posting", func() bool { return atA.Load() > 0 })
	stopA() // a dies: no Done, no reschedule, no renewal
	n[0].Close()
	stopB := start(n[1], "b")
	defer stopB()
	waitFor(t, "node b delivering every callback after a's lease", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(delivered) == count
	})
	mu.Lock()
	defer mu.Unlock()
	for text, node := range delivered {
		if node != "b" {
			t.Errorf("%s delivered by %s", text, node)
		}
	}
}

// waitFor polls cond until it holds, failing t after 30 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestLimiter_Fleet: the nodes of a fleet take tokens from one bucket per
// key.
func TestLimiter_Fleet(t *testing.T) {
	clk := newClock()
	n := nodes(t, 3, clk.opts())
	allowed := 0
	for i := range 30 {
		if n[i%3].Allow("client/c1", 1, 5) {
			allowed++
		}
	}
	if allowed != 5 {
		t.Fatalf("got %d allowed over 3 nodes, want the burst 5", allowed)
	}
	clk.add(2 * time.Second)
	if !n[1].Allow("client/c1", 1, 5) || !n[2].Allow("client/c1", 1, 5) || n[0].Allow("client/c1", 1, 5) {
		t.Fatal("after 2 s at 1/s: want exactly 2 more tokens fleet-wide")
	}
}

// TestPendingCap: beyond MaxPendingPerCarrier the oldest pending receipts
// of a carrier are dropped (and counted); other carriers keep theirs.
func TestPendingCap(t *testing.T) {
	var dropped atomic.Int64
	db := open(t, redisstore.Options{MaxPendingPerCarrier: 3, PendingDropped: func(carrier string) {
		if carrier == "a" {
			dropped.Add(1)
		}
	}})
	ctx := context.Background()
	for i := 1; i <= 5; i++ {
		for _, carrier := range []string{"a", "b"} {
			if _, matched, _, err := db.ApplyReceipt(ctx, otp.Receipt{Carrier: carrier, MessageID: fmt.Sprint(i), State: otp.StateDelivered}); err != nil || matched {
				t.Fatalf("ApplyReceipt %s/%d: matched %v, %v", carrier, i, matched, err)
			}
			time.Sleep(2 * time.Millisecond) // distinct arrival times
		}
	}
	if got := dropped.Load(); got != 2 {
		t.Fatalf("carrier a: %d dropped, want 2", got)
	}
	for i, want := range map[int]otp.State{1: otp.StateAccepted, 2: otp.StateAccepted, 3: otp.StateDelivered, 5: otp.StateDelivered} {
		m := storeMessage(t, db, fmt.Sprintf("ra%d", i), "a", fmt.Sprint(i))
		if m.Parts[0].State != want {
			t.Errorf("carrier a id %d: got %s, want %s", i, m.Parts[0].State, want)
		}
	}
	if m := storeMessage(t, db, "rb1", "b", "1"); m.Parts[0].State != otp.StateAccepted {
		t.Errorf("carrier b id 1: got %s, want ACCEPTED (over b's own cap)", m.Parts[0].State)
	}
}

func storeMessage(t *testing.T, db *redisstore.DB, id, carrier, partID string) otp.Message {
	t.Helper()
	m := otp.Message{RequestID: id, ClientID: "c1", Number: "919876543210", Carrier: carrier,
		Parts: []otp.Part{{MessageID: partID, State: otp.StateAccepted}}}
	stored, err := db.SaveSend(context.Background(), "c1/"+id, m, func(r *otp.Record, _ bool) { r.KeepUntil = time.Now().Add(time.Hour) })
	if err != nil {
		t.Fatal(err)
	}
	return stored
}

// TestStandalone runs the contract against one standalone server with a
// replica (a single address that is not a cluster node).
func TestStandalone(t *testing.T) {
	if _, _, err := redistest.Binaries(); err != nil {
		t.Skip(err.Error())
	}
	c, err := redistest.Start(t.TempDir(), 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	storetest.Run(t, func(t *testing.T, opts storetest.Options) storetest.Backend {
		return open(t, redisstore.Options{Addrs: c.Addrs[:1], Now: opts.Now, WantsCallback: opts.WantsCallback, MinScan: -1})
	})
}

// TestShortfall: when the replica is gone a write is refused with
// ErrShortfall (on_shortfall fail), or accepted and counted (degrade); a
// read-only verify (nothing to confirm) is not refused.
func TestShortfall(t *testing.T) {
	if _, _, err := redistest.Binaries(); err != nil {
		t.Skip(err.Error())
	}
	c, err := redistest.Start(t.TempDir(), 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	var seen atomic.Int64
	// A generous wait: a replica starved of CPU (the race detector,
	// parallel packages) may take a while to acknowledge.
	failing := open(t, redisstore.Options{Addrs: c.Addrs[:1], WaitTimeout: 2 * time.Second, ShortfallSeen: func() { seen.Add(1) }})
	degrading := open(t, redisstore.Options{Addrs: c.Addrs[:1], WaitTimeout: 2 * time.Second, OnShortfall: redisstore.ShortfallDegrade,
		ShortfallSeen: func() { seen.Add(1) }})
	ctx := context.Background()
	put := func(db *redisstore.DB) error {
		return db.UpdateOTP(ctx, "c1/919876543210", func(r *otp.Record, _ bool) (otp.Change, error) {
			r.Attempts++
			r.KeepUntil = time.Now().Add(time.Hour)
			return otp.Put, nil
		})
	}
	if err := put(failing); err != nil {
		t.Fatalf("with the replica up: %v", err)
	}
	c.Nodes[1].Kill()
	if err := put(failing); !errors.Is(err, redisstore.ErrShortfall) {
		t.Fatalf("fail, replica down: got %v, want ErrShortfall", err)
	}
	if err := put(degrading); err != nil {
		t.Fatalf("degrade, replica down: got %v, want nil", err)
	}
	if got := seen.Load(); got != 2 {
		t.Fatalf("shortfalls seen: %d, want 2", got)
	}
	err = failing.UpdateOTP(ctx, "c1/919876543210", func(r *otp.Record, found bool) (otp.Change, error) {
		return otp.Keep, otp.ErrInvalidOTP
	})
	if !errors.Is(err, otp.ErrInvalidOTP) {
		t.Fatalf("a Keep with the replica down: got %v, want fn's error", err)
	}
}
