package callback_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpgate/otpgate/callback"
	"github.com/otpgate/otpgate/otp"
	"github.com/otpgate/otpgate/store"
)

const secret = "s3cret-callback-key"

// wait bounds every wait of these tests; none measures a duration.
const wait = 10 * time.Second

func openDB(tb testing.TB, dir string) *store.DB {
	tb.Helper()
	db, err := store.Open(dir, store.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

var seq atomic.Int64

// deliverReceipt saves a message of client and applies a receipt with
// state to it: the store queues one callback. It returns the request id.
func deliverReceipt(tb testing.TB, db *store.DB, client string, state otp.State) string {
	tb.Helper()
	ctx := context.Background()
	n := seq.Add(1)
	reqID, msgID := fmt.Sprintf("req-%d", n), fmt.Sprintf("%X", n)
	m := otp.Message{RequestID: reqID, ClientID: client, Number: "919876543210", Display: "+91-98******10",
		Carrier: "carrier-a", SubmittedAt: time.Now(), Parts: []otp.Part{{MessageID: msgID, State: otp.StateAccepted}}}
	if _, err := db.SaveSend(ctx, client+"/"+reqID, m, func(r *otp.Record, _ bool) { r.KeepUntil = time.Now().Add(time.Hour) }); err != nil {
		tb.Fatal(err)
	}
	errCode := "000"
	if state != otp.StateDelivered {
		errCode = "001"
	}
	_, matched, changed, err := db.ApplyReceipt(ctx, otp.Receipt{Carrier: "carrier-a", MessageID: msgID, State: state,
		Error: errCode, DoneAt: time.Date(2026, 11, 25, 19, 50, 14, 0, time.UTC)})
	if err != nil || !matched || !changed {
		tb.Fatalf("ApplyReceipt: matched %v changed %v err %v", matched, changed, err)
	}
	return reqID
}

// hit is one request an endpoint received.
type hit struct {
	body      string
	signature string
	ctype     string
}

var signatureRE = regexp.MustCompile(`^t=([0-9]+),v1=([0-9a-f]{64})$`)

// checkSignature checks h's X-Otpgate-Signature as a receiver does: the
// HMAC-SHA256 of "<t>.<body>" with secret, and t within 5 minutes of now.
// It returns t.
func checkSignature(tb testing.TB, h hit, now time.Time) int64 {
	tb.Helper()
	m := signatureRE.FindStringSubmatch(h.signature)
	if m == nil {
		tb.Fatalf("signature %q: want t=<unix>,v1=<64 hex>", h.signature)
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(m[1] + "." + h.body))
	if want := hex.EncodeToString(mac.Sum(nil)); !hmac.Equal([]byte(m[2]), []byte(want)) {
		tb.Fatalf("signature %q: v1 is not HMAC-SHA256(secret, t.body): want %s", h.signature, want)
	}
	t, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		tb.Fatal(err)
	}
	if d := now.Unix() - t; d > 300 || d < -300 {
		tb.Fatalf("signature t=%d is %d s from now", t, d)
	}
	return t
}

// endpoint is a client's callback server; respond decides each answer
// (the n-th request, from 1).
type endpoint struct {
	*httptest.Server
	mu      sync.Mutex
	hits    []hit
	arrived chan hit
}

func newEndpoint(tb testing.TB, respond func(n int, w http.ResponseWriter, r *http.Request)) *endpoint {
	tb.Helper()
	e := &endpoint{arrived: make(chan hit, 1000)}
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h := hit{body: string(b), signature: r.Header.Get(callback.SignatureHeader), ctype: r.Header.Get("Content-Type")}
		e.mu.Lock()
		e.hits = append(e.hits, h)
		n := len(e.hits)
		e.mu.Unlock()
		if respond != nil {
			respond(n, w, r)
		}
		e.arrived <- h
	}))
	tb.Cleanup(e.Close)
	return e
}

func (e *endpoint) next(tb testing.TB) hit {
	tb.Helper()
	select {
	case h := <-e.arrived:
		return h
	case <-time.After(wait):
		tb.Fatal("no callback arrived")
		return hit{}
	}
}

func (e *endpoint) count() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.hits)
}

// outcomes records Options.Observe.
type outcomes struct {
	mu  sync.Mutex
	got []string
	ch  chan string
}

func newOutcomes() *outcomes { return &outcomes{ch: make(chan string, 1000)} }

func (o *outcomes) observe(s string) {
	o.mu.Lock()
	o.got = append(o.got, s)
	o.mu.Unlock()
	o.ch <- s
}

func (o *outcomes) next(tb testing.TB) string {
	tb.Helper()
	select {
	case s := <-o.ch:
		return s
	case <-time.After(wait):
		tb.Fatal("no outcome")
		return ""
	}
}

// settingsOf maps client ids to callback URLs, all with secret; the MO
// URL of client c is under "mo:c".
func settingsOf(urls map[string]string) callback.Settings {
	return func(id string, kind otp.CallbackKind) (string, string, bool) {
		if kind == otp.CallbackMO {
			id = "mo:" + id
		}
		u, ok := urls[id]
		return u, secret, ok
	}
}

// run starts d and stops it at cleanup; stop stops it earlier.
func run(tb testing.TB, d *callback.Dispatcher) (stop func()) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					tb.Errorf("Run returned %v, want nil", err)
				}
			case <-time.After(wait):
				tb.Error("Run did not return after cancel")
			}
		})
	}
	tb.Cleanup(stop)
	return stop
}

func queued(tb testing.TB, db *store.DB) []otp.Callback {
	tb.Helper()
	cbs, err := db.DueCallbacks(context.Background(), time.Now().Add(48*time.Hour), 1000)
	if err != nil {
		tb.Fatal(err)
	}
	return cbs
}

// waitEmpty waits until the queue holds nothing.
func waitEmpty(tb testing.TB, db *store.DB) {
	tb.Helper()
	deadline := time.Now().Add(wait)
	for len(queued(tb, db)) > 0 {
		if time.Now().After(deadline) {
			tb.Fatalf("queue still holds %+v", queued(tb, db))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func fastOpts(o *outcomes) callback.Options {
	return callback.Options{RetryBase: 20 * time.Millisecond, PollInterval: 20 * time.Millisecond, Observe: o.observe}
}

func TestDispatcher_Deliver(t *testing.T) {
	db := openDB(t, t.TempDir())
	ep := newEndpoint(t, nil)
	o := newOutcomes()
	run(t, callback.New(db, settingsOf(map[string]string{"c1": ep.URL + "/hook?token=t"}), fastOpts(o)))

	reqID := deliverReceipt(t, db, "c1", otp.StateDelivered)
	h := ep.next(t)
	want := `{"requestId":"` + reqID + `","clientId":"c1","phoneNumber":"+91-98******10","carrier":"carrier-a",` +
		`"state":"DELIVERED","error":"000","doneAt":"2026-11-25T19:50:14Z"}`
	if h.body != want {
		t.Fatalf("body: got %s, want %s", h.body, want)
	}
	checkSignature(t, h, time.Now())
	if h.ctype != "application/json" {
		t.Fatalf("Content-Type: got %q", h.ctype)
	}
	if got := o.next(t); got != callback.OutcomeDelivered {
		t.Fatalf("outcome: got %s, want delivered", got)
	}
	waitEmpty(t, db)
}

// TestDispatcher_MO: an MO callback goes to the client's MO URL (not its
// receipt URL), with the MO body, signed like a receipt; it is retried
// like one.
func TestDispatcher_MO(t *testing.T) {
	db := openDB(t, t.TempDir())
	receipts := newEndpoint(t, nil)
	mo := newEndpoint(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	o := newOutcomes()
	run(t, callback.New(db, settingsOf(map[string]string{"c1": receipts.URL, "mo:c1": mo.URL + "/mo"}), fastOpts(o)))

	at := time.Date(2026, 11, 25, 19, 50, 14, 0, time.UTC)
	now := time.Now()
	if err := db.QueueCallback(context.Background(), otp.Callback{ID: "mo-1", Kind: otp.CallbackMO, ClientID: "c1",
		Carrier: "carrier-a", From: "+919876543210", To: "OTPGATE", Text: "STOP \"now\" ü", DoneAt: at, FirstAt: now, Due: now}); err != nil {
		t.Fatal(err)
	}
	mo.next(t) // 503
	h := mo.next(t)
	want := `{"from":"+919876543210","to":"OTPGATE","text":"STOP \"now\" ü","carrier":"carrier-a","receivedAt":"2026-11-25T19:50:14Z"}`
	if h.body != want {
		t.Fatalf("body: got %s, want %s", h.body, want)
	}
	checkSignature(t, h, time.Now())
	for _, want := range []string{callback.OutcomeRetry, callback.OutcomeDelivered} {
		if got := o.next(t); got != want {
			t.Fatalf("outcome: got %s, want %s", got, want)
		}
	}
	waitEmpty(t, db)
	if n := receipts.count(); n != 0 {
		t.Fatalf("receipt URL got %d requests, want 0", n)
	}
}

func TestDispatcher_RetryUntil2xx(t *testing.T) {
	db := openDB(t, t.TempDir())
	ep := newEndpoint(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n <= 2 {
			w.WriteHeader(http.StatusInternalServerError)
		}
	})
	o := newOutcomes()
	run(t, callback.New(db, settingsOf(map[string]string{"c1": ep.URL}), fastOpts(o)))

	deliverReceipt(t, db, "c1", otp.StateUndeliverable)
	for i, want := range []string{callback.OutcomeRetry, callback.OutcomeRetry, callback.OutcomeDelivered} {
		if got := o.next(t); got != want {
			t.Fatalf("outcome %d: got %s, want %s", i+1, got, want)
		}
	}
	waitEmpty(t, db)
	ep.mu.Lock()
	defer ep.mu.Unlock()
	if len(ep.hits) != 3 {
		t.Fatalf("got %d requests, want 3", len(ep.hits))
	}
	for _, h := range ep.hits {
		checkSignature(t, h, time.Now())
		if h.body != ep.hits[0].body || h.ctype != ep.hits[0].ctype {
			t.Fatalf("a retry differs: got %+v, want %+v", h, ep.hits[0])
		}
	}
	if !strings.Contains(ep.hits[0].body, `"state":"UNDELIVERABLE","error":"001"`) {
		t.Fatalf("body: got %s", ep.hits[0].body)
	}
}

func TestDispatcher_DropAfterMaxAge(t *testing.T) {
	db := openDB(t, t.TempDir())
	ep := newEndpoint(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	o := newOutcomes()
	opts := fastOpts(o)
	opts.RetryBase = time.Hour // the next try would be past MaxAge
	opts.MaxAge = time.Minute
	run(t, callback.New(db, settingsOf(map[string]string{"c1": ep.URL}), opts))

	deliverReceipt(t, db, "c1", otp.StateDelivered)
	if got := o.next(t); got != callback.OutcomeDropped {
		t.Fatalf("outcome: got %s, want dropped", got)
	}
	waitEmpty(t, db)
	if n := ep.count(); n != 1 {
		t.Fatalf("got %d requests, want 1", n)
	}
}

func TestDispatcher_NoCallbackURL(t *testing.T) {
	db := openDB(t, t.TempDir())
	ep := newEndpoint(t, nil)
	o := newOutcomes()
	run(t, callback.New(db, settingsOf(map[string]string{"c1": ep.URL}), fastOpts(o)))

	for range 20 {
		deliverReceipt(t, db, "other", otp.StateDelivered)
	}
	waitEmpty(t, db)
	deliverReceipt(t, db, "c1", otp.StateDelivered)
	ep.next(t)
	if got := o.next(t); got != callback.OutcomeDelivered {
		t.Fatalf("outcome: got %s, want delivered", got)
	}
	if n := ep.count(); n != 1 {
		t.Fatalf("got %d requests, want only c1's", n)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.got) != 1 || o.got[0] != callback.OutcomeDelivered {
		t.Fatalf("outcomes: got %v, want [delivered]", o.got)
	}
}

// TestDispatcher_SlowClientDoesNotBlockOthers: an endpoint that answered
// once and then hangs holds PerClient requests at most, and another
// client's callback goes out meanwhile.
func TestDispatcher_SlowClientDoesNotBlockOthers(t *testing.T) {
	db := openDB(t, t.TempDir())
	release := make(chan struct{})
	var inA, maxA atomic.Int32
	slow := newEndpoint(t, func(n int, _ http.ResponseWriter, r *http.Request) {
		if n == 1 {
			return // answered: the endpoint is healthy
		}
		n32 := inA.Add(1)
		defer inA.Add(-1)
		for {
			m := maxA.Load()
			if n32 <= m || maxA.CompareAndSwap(m, n32) {
				break
			}
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	fast := newEndpoint(t, nil)
	o := newOutcomes()
	opts := fastOpts(o)
	opts.PerClient = 2
	opts.Timeout = time.Minute
	run(t, callback.New(db, settingsOf(map[string]string{"a": slow.URL, "b": fast.URL}), opts))

	deliverReceipt(t, db, "a", otp.StateDelivered)
	if got := o.next(t); got != callback.OutcomeDelivered {
		t.Fatalf("first callback of a: got %s, want delivered", got)
	}
	for range 6 {
		deliverReceipt(t, db, "a", otp.StateDelivered)
	}
	// Both of a's slots are taken before b's callback is queued.
	deadline := time.Now().Add(wait)
	for inA.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("client a's endpoint never got 2 requests")
		}
		time.Sleep(5 * time.Millisecond)
	}
	reqB := deliverReceipt(t, db, "b", otp.StateDelivered)
	if h := fast.next(t); !strings.Contains(h.body, reqB) {
		t.Fatalf("b got %s, want its callback", h.body)
	}
	select {
	case <-release:
		t.Fatal("released too early")
	default: // b's callback arrived while a's endpoint held every request
	}
	if n := slow.count(); n != 1+2 {
		t.Fatalf("client a got %d requests while its endpoint hung, want 1+2 (PerClient)", n)
	}
	close(release)
	for range 7 {
		slow.next(t)
	}
	waitEmpty(t, db)
	if m := maxA.Load(); m > 2 {
		t.Fatalf("client a had %d requests in flight, want at most 2", m)
	}
}

func TestDispatcher_Redirects(t *testing.T) {
	t.Run("OtherHost", func(t *testing.T) {
		db := openDB(t, t.TempDir())
		other := newEndpoint(t, nil)
		ep := newEndpoint(t, func(_ int, w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, other.URL+"/stolen", http.StatusTemporaryRedirect)
		})
		o := newOutcomes()
		opts := fastOpts(o)
		opts.RetryBase = time.Hour
		run(t, callback.New(db, settingsOf(map[string]string{"c1": ep.URL}), opts))
		deliverReceipt(t, db, "c1", otp.StateDelivered)
		if got := o.next(t); got != callback.OutcomeRetry {
			t.Fatalf("outcome: got %s, want retry", got)
		}
		if n := other.count(); n != 0 {
			t.Fatalf("the other host got %d requests, want 0", n)
		}
	})
	t.Run("SameHost", func(t *testing.T) {
		db := openDB(t, t.TempDir())
		var ep *endpoint
		ep = newEndpoint(t, func(n int, w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/old" {
				http.Redirect(w, r, ep.URL+"/new", http.StatusPermanentRedirect)
			}
		})
		o := newOutcomes()
		run(t, callback.New(db, settingsOf(map[string]string{"c1": ep.URL + "/old"}), fastOpts(o)))
		deliverReceipt(t, db, "c1", otp.StateDelivered)
		first, second := ep.next(t), ep.next(t)
		if first != second || second.body == "" {
			t.Fatalf("redirected request differs: got %+v, want %+v", second, first)
		}
		if got := o.next(t); got != callback.OutcomeDelivered {
			t.Fatalf("outcome: got %s, want delivered", got)
		}
	})
}

func TestDispatcher_Restart(t *testing.T) {
	dir := t.TempDir()
	var up atomic.Bool
	ep := newEndpoint(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		if !up.Load() {
			w.WriteHeader(http.StatusBadGateway)
		}
	})
	settings := settingsOf(map[string]string{"c1": ep.URL})

	db, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	o := newOutcomes()
	opts := fastOpts(o)
	opts.RetryBase = time.Hour
	stop := run(t, callback.New(db, settings, opts))
	reqID := deliverReceipt(t, db, "c1", otp.StateExpired)
	if got := o.next(t); got != callback.OutcomeRetry {
		t.Fatalf("outcome: got %s, want retry", got)
	}
	stop()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	up.Store(true)
	db = openDB(t, dir)
	cbs := queued(t, db)
	if len(cbs) != 1 || cbs[0].Attempts != 1 {
		t.Fatalf("queue after restart: got %+v, want one callback with 1 attempt", cbs)
	}
	// Due in an hour: a clock an hour ahead stands for the wait.
	o2 := newOutcomes()
	opts = fastOpts(o2)
	opts.Now = func() time.Time { return time.Now().Add(time.Hour) }
	run(t, callback.New(db, settings, opts))
	first := checkSignature(t, ep.next(t), time.Now()) // the failed try
	h := ep.next(t)
	if !strings.Contains(h.body, `"requestId":"`+reqID+`"`) || !strings.Contains(h.body, `"state":"EXPIRED"`) {
		t.Fatalf("after restart: got %s", h.body)
	}
	// Each try is signed at its own time: the retry's t is the clock's,
	// an hour on.
	if again := checkSignature(t, h, time.Now().Add(time.Hour)); again < first+3600-60 {
		t.Fatalf("retry signed at t=%d, the first try at %d: want the retry's own time, an hour later", again, first)
	}
	if got := o2.next(t); got != callback.OutcomeDelivered {
		t.Fatalf("outcome: got %s, want delivered", got)
	}
	waitEmpty(t, db)
}

func TestDispatcher_ShutdownKeepsInFlight(t *testing.T) {
	db := openDB(t, t.TempDir())
	ep := newEndpoint(t, func(_ int, _ http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	o := newOutcomes()
	stop := run(t, callback.New(db, settingsOf(map[string]string{"c1": ep.URL}), fastOpts(o)))
	deliverReceipt(t, db, "c1", otp.StateDelivered)
	for deadline := time.Now().Add(wait); ep.count() == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the callback never reached the endpoint")
		}
	}
	stop()
	cbs := queued(t, db)
	if len(cbs) != 1 || cbs[0].Attempts != 0 {
		t.Fatalf("queue after shutdown: got %+v, want the callback untouched", cbs)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.got) != 0 {
		t.Fatalf("outcomes: got %v, want none", o.got)
	}
}

func TestDispatcher_Notify(t *testing.T) {
	db := openDB(t, t.TempDir())
	ep := newEndpoint(t, nil)
	o := newOutcomes()
	opts := fastOpts(o)
	opts.PollInterval = time.Hour
	polled := make(chan struct{})
	var once sync.Once
	opts.Now = func() time.Time { once.Do(func() { close(polled) }); return time.Now() }
	d := callback.New(db, settingsOf(map[string]string{"c1": ep.URL}), opts)
	run(t, d)
	<-polled // the first read of the queue has begun; the next is an hour away
	deliverReceipt(t, db, "c1", otp.StateDelivered)
	d.Notify()
	ep.next(t)
}

func TestDispatcher_BadURL(t *testing.T) {
	db := openDB(t, t.TempDir())
	o := newOutcomes()
	opts := fastOpts(o)
	opts.RetryBase = time.Hour
	run(t, callback.New(db, settingsOf(map[string]string{"c1": "ftp://example.invalid/x"}), opts))
	deliverReceipt(t, db, "c1", otp.StateDelivered)
	if got := o.next(t); got != callback.OutcomeRetry {
		t.Fatalf("outcome: got %s, want retry", got)
	}
}

func TestCallback_BodyIsJSON(t *testing.T) {
	cb := otp.Callback{RequestID: `a"b<`, ClientID: "c", State: otp.StateDelivered}
	var v map[string]any
	if err := json.Unmarshal(callback.Body(cb), &v); err != nil || v["requestId"] != `a"b<` || len(v) != 7 {
		t.Fatalf("got %v (%v)", v, err)
	}
}
