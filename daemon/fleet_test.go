package daemon_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpgate/otpgate/daemon"
	"github.com/otpgate/otpgate/smpp/smsc"
	"github.com/otpgate/otpgate/store/redisstore/redistest"
)

// fleet is n gateways on one Redis Cluster (a key prefix of their own),
// one simulator and one HMAC secret.
type fleet struct {
	nodes []*gateway
	sim   *smsc.Server
	// config returns a fresh copy of node i's configuration.
	config  func(i int) *daemon.Config
	cluster *redistest.Cluster
}

// startFleet starts a Redis Cluster (3 masters, 3 replicas) and n
// gateways with store.backend redis on it; adjust, when set, changes each
// node's config.
func startFleet(t *testing.T, n int, o cfgOpts, adjust func(*daemon.Config)) *fleet {
	t.Helper()
	return startFleetOn(t, n, startSim(t, smsc.Options{ReceiptTLV: true}), o, adjust)
}

// startFleetOn is startFleet with the simulator sim.
func startFleetOn(t testing.TB, n int, sim *smsc.Server, o cfgOpts, adjust func(*daemon.Config)) *fleet {
	t.Helper()
	cluster := redistest.New(t)
	f := &fleet{sim: sim, cluster: cluster}
	o.simAddr = f.sim.Addr()
	if o.deadAddr == "" {
		o.deadAddr = deadAddr(t) // the same on every node: it is in the fleet's config
	}
	prefix := fmt.Sprintf("fleet%d:", time.Now().UnixNano())
	certs := fleetCerts(t)
	secret := filepath.Join(t.TempDir(), "otp.secret") // the first node writes it; the others share it
	dirs := map[int]string{}
	f.config = func(i int) *daemon.Config {
		if dirs[i] == "" {
			dirs[i] = t.TempDir()
		}
		o := o
		o.dir = dirs[i]
		cfg := testConfig(t, o)
		cfg.Store.Backend = "redis"
		cfg.Store.Redis.Addrs = cluster.Addrs
		cfg.Store.Redis.Prefix = prefix
		// A replica starved of CPU (the race detector, parallel packages)
		// may take a while to acknowledge: no shortfall for that here.
		cfg.Store.Redis.WaitTimeout = daemon.Duration(5 * time.Second)
		cfg.SecretFile = secret
		cfg.Fleet.NodeID = fmt.Sprintf("node%d", i)
		cfg.Fleet.InternalListen = "127.0.0.1:0"
		cfg.Fleet.InternalTLS = certs
		cfg.Fleet.BindLease = daemon.Duration(3 * time.Second)
		if adjust != nil {
			adjust(cfg)
		}
		if ps := cfg.Validate(); len(ps) > 0 {
			t.Fatal(ps)
		}
		return cfg
	}
	for i := range n {
		f.nodes = append(f.nodes, startGateway(t, f.config(i)))
	}
	return f
}

// TestFleet runs two gateways on one Redis Cluster: any node serves any
// request of a code, a resend, a verify race or a client's rate.
func TestFleet(t *testing.T) {
	var (
		cbMu      sync.Mutex
		callbacks = map[string]int{} // request id -> deliveries
	)
	cbSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("callback body: %v", err)
		}
		if id := requestIDIn(string(body)); id != "" {
			cbMu.Lock()
			callbacks[id]++
			cbMu.Unlock()
		}
	}))
	defer cbSrv.Close()
	f := startFleet(t, 2, cfgOpts{resend: "30s"}, func(cfg *daemon.Config) {
		cfg.Clients[0].Rate = daemon.RateConfig{PerSecond: 1e6, Burst: 1e6} // the verify race, not the rate
		cfg.Clients[0].CallbackURL = cbSrv.URL
		cfg.Clients[0].CallbackSecret = "cb-secret"
		cfg.Clients[1].Rate = daemon.RateConfig{PerSecond: 0.001, Burst: 3}
	})
	a, b := f.nodes[0], f.nodes[1]

	t.Run("SentThroughAVerifiedThroughB", func(t *testing.T) {
		code, body := send(t, a, "+91-9876500001")
		if code != 200 {
			t.Fatalf("send through a: got %d %s", code, body)
		}
		reqID := requestID(t, body)
		otpCode := codeFor(t, f.sim, "919876500001", 1)
		if code, body := verify(t, b, "+91-9876500001", otpCode); code != 200 {
			t.Fatalf("verify through b: got %d %s, want 200", code, body)
		}
		if code, body := verify(t, a, "+91-9876500001", otpCode); code != 404 {
			t.Fatalf("verify again through a: got %d %s, want 404", code, body)
		}
		// The receipt, whichever node's session it came on, reaches the
		// message; its callback is delivered once, by whichever node.
		waitState(t, b, reqID, "DELIVERED")
		waitStatus(t, a, reqID, `"verified":true`)
		deadline := time.Now().Add(15 * time.Second)
		for {
			cbMu.Lock()
			n := callbacks[reqID]
			cbMu.Unlock()
			if n >= 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("no callback for the DELIVERED receipt")
			}
			time.Sleep(20 * time.Millisecond)
		}
	})

	t.Run("ResendThroughBRightAfterA", func(t *testing.T) {
		if code, body := send(t, a, "+91-9876500002"); code != 200 {
			t.Fatalf("send through a: got %d %s", code, body)
		}
		code, body := send(t, b, "+91-9876500002")
		if code != 429 || !strings.Contains(body, "Too many requests") {
			t.Fatalf("resend through b: got %d %s, want 429", code, body)
		}
	})

	t.Run("ConcurrentVerifiesOneSuccess", func(t *testing.T) {
		if code, body := send(t, a, "+91-9876500003"); code != 200 {
			t.Fatalf("send: got %d %s", code, body)
		}
		otpCode := codeFor(t, f.sim, "919876500003", 1)
		var ok, notFound atomic.Int64
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range 30 {
			wg.Go(func() {
				<-start
				code, body := verify(t, f.nodes[i%2], "+91-9876500003", otpCode)
				switch code {
				case 200:
					ok.Add(1)
				case 404:
					notFound.Add(1)
				default:
					t.Errorf("verify: got %d %s", code, body)
				}
			})
		}
		close(start)
		wg.Wait()
		if ok.Load() != 1 || notFound.Load() != 29 {
			t.Fatalf("got %d × 200 and %d × 404, want 1 and 29", ok.Load(), notFound.Load())
		}
	})

	t.Run("ClientRateAcrossNodes", func(t *testing.T) {
		var got []int
		for i := range 6 {
			code, _ := call(t, "POST", f.nodes[i%2].url+"/api/v3/otp-verification/send-otp", keyB,
				sendBody(clientB, fmt.Sprintf("+91-98765001%02d", i), "6"))
			got = append(got, code)
		}
		if want := []int{200, 200, 200, 429, 429, 429}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("client b's sends through a and b in turn: got %v, want %v (burst 3, fleet-wide)", got, want)
		}
	})
}

// requestIDIn returns the requestId of a callback body, or "".
func requestIDIn(body string) string {
	const k = `"requestId":"`
	i := strings.Index(body, k)
	if i < 0 {
		return ""
	}
	rest := body[i+len(k):]
	j := strings.IndexByte(rest, '"')
	if j < 0 {
		return ""
	}
	return rest[:j]
}

// TestFleet_Shortfall: with its replica gone the store cannot make a write
// durable on two machines: send-otp answers 503 before any SMS goes out
// (on_shortfall fail), and the shortfall is counted; with degrade the send
// goes through.
func TestFleet_Shortfall(t *testing.T) {
	if _, _, err := redistest.Binaries(); err != nil {
		t.Skip(err.Error())
	}
	srv, err := redistest.Start(t.TempDir(), 1, 1) // one standalone master, one replica
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	sim := startSim(t, smsc.Options{})
	start := func(onShortfall string) *gateway {
		cfg := testConfig(t, cfgOpts{simAddr: sim.Addr()})
		cfg.Store.Backend = "redis"
		cfg.Store.Redis.Addrs = srv.Addrs[:1]
		cfg.Store.Redis.Prefix = fmt.Sprintf("short%d:", time.Now().UnixNano())
		cfg.Store.Redis.OnShortfall = onShortfall
		// Generous: a replica starved of CPU (the race detector, parallel
		// packages) may take a while to acknowledge.
		cfg.Store.Redis.WaitTimeout = daemon.Duration(3 * time.Second)
		if onShortfall == "degrade" {
			// With the replica dead each write waits this long, and a
			// send makes several: short enough for submit_timeout.
			cfg.Store.Redis.WaitTimeout = daemon.Duration(500 * time.Millisecond)
		}
		return startGateway(t, cfg)
	}
	failing, degrading := start("fail"), start("degrade")
	if code, body := send(t, failing, "+91-9876500201"); code != 200 {
		t.Fatalf("with the replica up: got %d %s", code, body)
	}
	srv.Nodes[1].Kill()
	before := len(sim.Messages())
	code, body := send(t, failing, "+91-9876500202")
	if code != 503 || !strings.Contains(body, "Service unavailable") {
		t.Fatalf("fail, replica down: got %d %s, want 503", code, body)
	}
	if n := len(sim.Messages()); n != before {
		t.Fatalf("%d SMS went out for a send answered 503", n-before)
	}
	// The first send's receipt, if it came after the kill, counts too.
	if _, text := call(t, "GET", failing.admin+"/metrics", "", ""); !strings.Contains(text, "\notpgate_store_shortfall_total ") ||
		strings.Contains(text, "\notpgate_store_shortfall_total 0\n") {
		t.Fatalf("shortfall not counted:\n%s", grepLines(text, "otpgate_store"))
	}
	if code, body := send(t, degrading, "+91-9876500203"); code != 200 {
		t.Fatalf("degrade, replica down: got %d %s, want 200", code, body)
	}
}
