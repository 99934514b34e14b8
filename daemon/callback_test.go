package daemon_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpgate/otpgate/daemon"
	"github.com/otpgate/otpgate/smpp/smsc"
	"github.com/otpgate/otpgate/store"
)

const (
	cbSecretA = "cb-secret-a-0001"
	cbSecretB = "cb-secret-b-0001"
)

// cbBody is a callback's body.
type cbBody struct {
	RequestID   string `json:"requestId"`
	ClientID    string `json:"clientId"`
	PhoneNumber string `json:"phoneNumber"`
	Carrier     string `json:"carrier"`
	State       string `json:"state"`
	Error       string `json:"error"`
	DoneAt      string `json:"doneAt"`
}

// hook is a client's callback endpoint. It checks every request's
// signature with secret; respond (nil: 200) decides the answer to the n-th
// request.
type hook struct {
	srv     *httptest.Server
	secret  string
	mu      sync.Mutex
	bodies  []string
	arrived chan cbBody
	bad     atomic.Int32 // requests with a wrong signature, method or type
}

func newHook(tb testing.TB, secret string, respond func(n int, w http.ResponseWriter, r *http.Request)) *hook {
	tb.Helper()
	h := &hook{secret: secret, arrived: make(chan cbBody, 100)}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" ||
			!validSignature(h.secret, r.Header.Get("X-Otpgate-Signature"), b, time.Now()) {
			h.bad.Add(1)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		h.mu.Lock()
		h.bodies = append(h.bodies, string(b))
		n := len(h.bodies)
		h.mu.Unlock()
		if respond != nil {
			respond(n, w, r)
		}
		var cb cbBody
		if err := json.Unmarshal(b, &cb); err != nil {
			h.bad.Add(1)
		}
		h.arrived <- cb
	}))
	tb.Cleanup(func() {
		h.srv.Close()
		if n := h.bad.Load(); n > 0 {
			tb.Errorf("%d callbacks with a bad signature, method, type or body", n)
		}
	})
	return h
}

// validSignature checks an X-Otpgate-Signature as the README tells
// receivers to: "t=<unix>,v1=<hex>", v1 the HMAC-SHA256 of "<t>.<body>"
// with secret, and t within 5 minutes of now (an older one is a replay).
func validSignature(secret, header string, body []byte, now time.Time) bool {
	ts, v1, ok := strings.Cut(header, ",")
	ts, ok1 := strings.CutPrefix(ts, "t=")
	v1, ok2 := strings.CutPrefix(v1, "v1=")
	t, err := strconv.ParseInt(ts, 10, 64)
	if !ok || !ok1 || !ok2 || err != nil || now.Unix()-t > 300 || t-now.Unix() > 300 {
		return false
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "." + string(body)))
	return hmac.Equal([]byte(v1), []byte(hex.EncodeToString(mac.Sum(nil))))
}

func (h *hook) next(tb testing.TB) cbBody {
	tb.Helper()
	select {
	case cb := <-h.arrived:
		return cb
	case <-time.After(15 * time.Second):
		tb.Fatal("no callback arrived")
		return cbBody{}
	}
}

func (h *hook) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.bodies)
}

// callbackConfig is testConfig with client A's callbacks going to urlA
// and client B's to urlB (none when empty).
func callbackConfig(tb testing.TB, o cfgOpts, urlA, urlB string) *daemon.Config {
	tb.Helper()
	cfg := testConfig(tb, o)
	if urlA != "" {
		cfg.Clients[0].CallbackURL, cfg.Clients[0].CallbackSecret = urlA, cbSecretA
	}
	if urlB != "" {
		cfg.Clients[1].CallbackURL, cfg.Clients[1].CallbackSecret = urlB, cbSecretB
	}
	if ps := cfg.Validate(); len(ps) > 0 {
		tb.Fatal(ps)
	}
	forbidInLogs(tb, cbSecretA)
	forbidInLogs(tb, cbSecretB)
	return cfg
}

// fastRetries makes the first retry come after about 20 ms.
func fastRetries(tb testing.TB) {
	tb.Cleanup(daemon.SetCallbackRetryBase(20 * time.Millisecond))
}

func TestGateway_Callbacks(t *testing.T) {
	fastRetries(t)
	tests := []struct {
		name      string
		sim       smsc.Options
		wantState string
		wantError string
	}{
		{"Delivered", smsc.Options{ReceiptTLV: true}, "DELIVERED", "000"},
		{"Undeliverable", smsc.Options{ReceiptState: "UNDELIV"}, "UNDELIVERABLE", "001"},
		{"DecimalIDs", smsc.Options{IDFormat: "decimal", FirstID: 5000}, "DELIVERED", "000"},
		{"ReceiptIDInDecimal", smsc.Options{ReceiptID: "decimal", FirstID: 5000, ReceiptTLV: true}, "DELIVERED", "000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHook(t, cbSecretA, nil)
			sim := startSim(t, tt.sim)
			g := startGateway(t, callbackConfig(t, cfgOpts{simAddr: sim.Addr()}, h.srv.URL+"/otp/receipts", ""))
			code, body := send(t, g, "+91-9876543210")
			if code != 200 {
				t.Fatalf("send: got %d %s", code, body)
			}
			reqID := requestID(t, body)
			cb := h.next(t)
			status := waitState(t, g, reqID, tt.wantState)
			var st struct{ Result cbBody }
			if err := json.Unmarshal([]byte(status), &st); err != nil {
				t.Fatal(err)
			}
			want := cbBody{RequestID: reqID, ClientID: clientA, PhoneNumber: "+91-98******10", Carrier: "a",
				State: tt.wantState, Error: tt.wantError, DoneAt: st.Result.DoneAt}
			if cb != want {
				t.Fatalf("callback: got %+v, want %+v (status %s)", cb, want, status)
			}
			if _, err := time.Parse(time.RFC3339, cb.DoneAt); err != nil {
				t.Fatalf("doneAt %q: %v", cb.DoneAt, err)
			}
		})
	}
}

func TestGateway_CallbackRetriedUntil2xx(t *testing.T) {
	fastRetries(t)
	h := newHook(t, cbSecretA, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n <= 2 {
			w.WriteHeader(http.StatusInternalServerError)
		}
	})
	sim := startSim(t, smsc.Options{ReceiptTLV: true})
	g := startGateway(t, callbackConfig(t, cfgOpts{simAddr: sim.Addr()}, h.srv.URL, ""))
	var ids []string
	for _, n := range []string{"+91-9876500011", "+91-9876500012"} {
		code, body := send(t, g, n)
		if code != 200 {
			t.Fatalf("send: got %d %s", code, body)
		}
		ids = append(ids, requestID(t, body))
	}
	// Two callbacks, 500 twice: every callback still arrives, and the
	// endpoint answered 200 to each in the end.
	got := map[string]int{}
	for range 4 {
		got[h.next(t).RequestID]++
	}
	if got[ids[0]] == 0 || got[ids[1]] == 0 || got[ids[0]]+got[ids[1]] != 4 {
		t.Fatalf("requests per id: got %v, want both of %v, 4 in all", got, ids)
	}
	waitDelivered(t, g, 2)
	g.stop(t)
	if n := h.count(); n != 4 {
		t.Fatalf("got %d requests, want 4 (two failed, two delivered)", n)
	}
}

func TestGateway_CallbackSurvivesRestart(t *testing.T) {
	fastRetries(t)
	var up atomic.Bool
	h := newHook(t, cbSecretA, func(_ int, w http.ResponseWriter, _ *http.Request) {
		if !up.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	sim := startSim(t, smsc.Options{ReceiptTLV: true})
	dir := t.TempDir()
	g1 := startGateway(t, callbackConfig(t, cfgOpts{dir: dir, simAddr: sim.Addr()}, h.srv.URL, ""))
	code, body := send(t, g1, "+91-9876500021")
	if code != 200 {
		t.Fatalf("send: got %d %s", code, body)
	}
	reqID := requestID(t, body)
	if cb := h.next(t); cb.RequestID != reqID { // a failed try
		t.Fatalf("got %+v, want %s", cb, reqID)
	}
	g1.stop(t)

	for len(h.arrived) > 0 { // the failed tries of g1, all answered: g1 waited for them
		<-h.arrived
	}
	failed := h.count()

	up.Store(true)
	g2 := startGateway(t, callbackConfig(t, cfgOpts{dir: dir, simAddr: sim.Addr()}, h.srv.URL, ""))
	if cb := h.next(t); cb.RequestID != reqID || cb.State != "DELIVERED" {
		t.Fatalf("after restart: got %+v", cb)
	}
	waitDelivered(t, g2, 1)
	g2.stop(t)
	if n := h.count(); n != failed+1 {
		t.Fatalf("got %d requests after the restart, want 1", n-failed)
	}
	if q := queuedCallbacks(t, dir); q != 0 {
		t.Fatalf("%d callbacks still queued after delivery", q)
	}
}

// waitDelivered waits until the gateway counted n callbacks delivered
// (it counts one once the queue has recorded it).
func waitDelivered(tb testing.TB, g *gateway, n int) {
	tb.Helper()
	want := fmt.Sprintf(`otpgate_callbacks_total{outcome="delivered"} %d`, n)
	var m string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if _, m = call(tb, "GET", g.admin+"/metrics", "", ""); strings.Contains(m, want) {
			return
		}
	}
	tb.Fatalf("metrics never showed %s", want)
}

// queuedCallbacks opens the stopped gateway's store and counts its queue.
func queuedCallbacks(tb testing.TB, dir string) int {
	tb.Helper()
	db, err := store.Open(filepath.Join(dir, "data"), store.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	cbs, err := db.DueCallbacks(context.Background(), time.Now().Add(48*time.Hour), 1000)
	if err != nil {
		tb.Fatal(err)
	}
	return len(cbs)
}

// countingHandler counts log records by message.
type countingHandler struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (c *countingHandler) Handle(_ context.Context, r slog.Record) error {
	c.mu.Lock()
	c.n[r.Message]++
	c.mu.Unlock()
	return nil
}
func (c *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c *countingHandler) WithGroup(string) slog.Handler      { return c }
func (c *countingHandler) count(msg string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[msg]
}

// rawReceipt is a deliver_sm receipt for id, as a carrier that repeats a
// receipt sends it.
func rawReceipt(id, dst, src string) []byte {
	text := "id:" + id + " sub:001 dlvrd:001 submit date:2601021340 done date:2601021345 stat:DELIVRD err:000 text:x"
	b := make([]byte, 16, 256)
	binary.BigEndian.PutUint32(b[4:], 0x00000005) // deliver_sm
	binary.BigEndian.PutUint32(b[12:], 0x7fff0001)
	b = append(b, 0, 1, 1)
	b = append(append(b, dst...), 0)
	b = append(b, 5, 0)
	b = append(append(b, src...), 0)
	b = append(b, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, byte(len(text)))
	b = append(b, text...)
	binary.BigEndian.PutUint32(b[0:], uint32(len(b)))
	return b
}

func TestGateway_DuplicateReceiptsOneCallback(t *testing.T) {
	fastRetries(t)
	h := newHook(t, cbSecretA, nil)
	logs := &countingHandler{n: map[string]int{}}
	sim := startSim(t, smsc.Options{ReceiptTLV: true, Logger: slog.New(logs)})
	dir := t.TempDir()
	g := startGateway(t, callbackConfig(t, cfgOpts{dir: dir, simAddr: sim.Addr()}, h.srv.URL, ""))
	code, body := send(t, g, "+91-9876500031")
	if code != 200 {
		t.Fatalf("send: got %d %s", code, body)
	}
	reqID := requestID(t, body)
	if cb := h.next(t); cb.RequestID != reqID {
		t.Fatalf("got %+v", cb)
	}
	waitDelivered(t, g, 1)
	msgs := sim.Messages()
	m := msgs[len(msgs)-1]
	// The same receipt twice more, on every bind, as text only; wait until
	// the gateway acknowledged each copy (it acks after its commit).
	var n int
	for range 2 {
		n += sim.SendRaw(rawReceipt(m.ID, m.Dst, m.Src))
	}
	if n == 0 {
		t.Fatal("no bind to send the duplicate on")
	}
	for deadline := time.Now().Add(10 * time.Second); logs.count("deliver_sm_resp for no receipt") < n; {
		if time.Now().After(deadline) {
			t.Fatalf("duplicates acknowledged: %d of %d", logs.count("deliver_sm_resp for no receipt"), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Each copy was parsed as a DELIVERED receipt (the first one too).
	_, metrics := call(t, "GET", g.admin+"/metrics", "", "")
	if want := fmt.Sprintf(`otpgate_receipts_total{carrier="a",state="DELIVERED"} %d`, n+1); !strings.Contains(metrics, want) {
		t.Fatalf("metrics lack %s", want)
	}
	g.stop(t)
	if c := h.count(); c != 1 {
		t.Fatalf("got %d callbacks, want 1", c)
	}
	if q := queuedCallbacks(t, dir); q != 0 {
		t.Fatalf("%d callbacks queued after duplicates, want 0", q)
	}
}

// TestGateway_SlowCallbackEndpointDoesNotDelayOthers: client A's
// endpoint answers once, then hangs: it holds 4 requests (its in-flight
// limit) and client B's callback goes out meanwhile.
func TestGateway_SlowCallbackEndpointDoesNotDelayOthers(t *testing.T) {
	fastRetries(t)
	release := make(chan struct{})
	var held atomic.Int32
	slow := newHook(t, cbSecretA, func(n int, _ http.ResponseWriter, r *http.Request) {
		if n == 1 {
			return // answered: the endpoint is healthy
		}
		held.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	fast := newHook(t, cbSecretB, nil)
	sim := startSim(t, smsc.Options{ReceiptTLV: true})
	g := startGateway(t, callbackConfig(t, cfgOpts{simAddr: sim.Addr()}, slow.srv.URL, fast.srv.URL))

	if code, body := send(t, g, "+91-9876500040"); code != 200 {
		t.Fatalf("send A: got %d %s", code, body)
	}
	slow.next(t)
	// Client A's endpoint hangs on more callbacks than it may have in flight.
	for _, n := range []string{"+91-9876500041", "+91-9876500042", "+91-9876500043", "+91-9876500044", "+91-9876500045"} {
		if code, body := send(t, g, n); code != 200 {
			t.Fatalf("send A: got %d %s", code, body)
		}
	}
	for deadline := time.Now().Add(10 * time.Second); held.Load() < 4; {
		if time.Now().After(deadline) {
			t.Fatalf("client A's endpoint holds %d requests, want 4", held.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	code, body := call(t, "POST", g.url+"/api/v3/otp-verification/send-otp", keyB, sendBody(clientB, "+91-9876500046", "6"))
	if code != 200 {
		t.Fatalf("send B: got %d %s", code, body)
	}
	if cb := fast.next(t); cb.RequestID != requestID(t, body) || cb.ClientID != clientB {
		t.Fatalf("client B got %+v", cb)
	}
	// B's callback came while A's endpoint still held all of A's slots.
	if n := held.Load(); n != 4 {
		t.Fatalf("client A's endpoint got %d requests, want 4 (its in-flight limit)", n)
	}
	close(release)
	seen := map[string]bool{}
	for len(seen) < 5 {
		seen[slow.next(t).RequestID] = true
	}
}

// TestGateway_CallbackCircuit: an endpoint that fails 5 times in a row
// has its circuit opened: the gauge says so for its client, and its next
// tries are short-circuited, without a request.
func TestGateway_CallbackCircuit(t *testing.T) {
	fastRetries(t)
	t.Cleanup(daemon.SetCallbackCircuit(5, time.Hour))
	h := newHook(t, cbSecretA, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadGateway) })
	sim := startSim(t, smsc.Options{ReceiptTLV: true})
	g := startGateway(t, callbackConfig(t, cfgOpts{simAddr: sim.Addr()}, h.srv.URL, ""))
	if code, body := send(t, g, "+91-9876500051"); code != 200 {
		t.Fatalf("send: got %d %s", code, body)
	}
	waitMetric(t, g, `otpgate_callback_circuit_open{client="`+clientA+`"}`, 1)
	waitMetric(t, g, `otpgate_callbacks_total{outcome="short_circuited"}`, 2)
	if n := h.count(); n != 5 {
		t.Fatalf("endpoint got %d requests, want the 5 that opened the circuit", n)
	}
}

// waitMetric waits until the /metrics series (name and labels) is at
// least min.
func waitMetric(tb testing.TB, g *gateway, series string, min float64) {
	tb.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		_, m := call(tb, "GET", g.admin+"/metrics", "", "")
		for _, l := range strings.Split(m, "\n") {
			if v, ok := strings.CutPrefix(l, series+" "); ok {
				if f, err := strconv.ParseFloat(v, 64); err == nil && f >= min {
					return
				}
			}
		}
	}
	tb.Fatalf("metrics never showed %s at %g or more", series, min)
}
