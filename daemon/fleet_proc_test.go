package daemon_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/otpgate/otpgate/daemon"
	"github.com/otpgate/otpgate/smpp/smsc"
	"github.com/otpgate/otpgate/store/redisstore/redistest"
)

// TestFleet_TwoProcesses runs two `otpgate run` processes on one Redis
// Cluster and one simulator. Codes sent through a verify through b, thirty
// concurrent verifies of one code spread over both give one 200, and when
// a is killed (SIGKILL) while sends are in flight, every send it answered
// 200 verifies through b.
func TestFleet_TwoProcesses(t *testing.T) {
	cluster := redistest.New(t)
	bin := buildOtpgate(t)
	// The carrier takes one bind of the account: the fleet's one bind.
	sim := startSim(t, smsc.Options{ReceiptDelay: 5 * time.Millisecond, MaxBinds: 1})
	certs := fleetCerts(t)
	shared := t.TempDir()
	secret := filepath.Join(shared, "otp.secret")
	prefix := fmt.Sprintf("procs%d:", time.Now().UnixNano())
	addrs := ""
	for i, a := range cluster.Addrs {
		if i > 0 {
			addrs += ", "
		}
		addrs += `"` + a + `"`
	}
	// Callbacks: held (no answer) until a is dead, so that a dies with
	// callbacks claimed and unanswered; b delivers them after the lease.
	var (
		cbMu      sync.Mutex
		delivered = map[string]bool{}
		hold      = make(chan struct{})
	)
	cbSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		select {
		case <-hold:
		case <-r.Context().Done():
			return
		}
		if id := requestIDIn(string(body)); id != "" {
			cbMu.Lock()
			delivered[id] = true
			cbMu.Unlock()
		}
	}))
	defer cbSrv.Close()
	config := func(name string) string {
		dir := filepath.Join(shared, name)
		y := fmt.Sprintf(`listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
data_dir: %s
secret_file: %s
submit_timeout: 3s
log: {level: info, format: json}
otp: {ttl: 10m, max_attempts: 5, resend_interval: 0s, max_per_number_per_hour: 1000}
store:
  backend: redis
  redis: {addrs: [%s], prefix: "%s", wait_timeout: 5s, callback_lease: 2s}
clients:
  - id: %s
    api_keys: ["%s"]
    sender: OTPGATE
    countries: ["*"]
    rate: {per_second: 1000000, burst: 1000000}
    callback_url: "%s"
    callback_secret: cb-secret
carriers:
  - {name: a, address: "%s", system_id: carrier-a, password: pw-a, binds: 1, window: 32}
guard: {mode: monitor}  # consecutive numbers at full speed: a pumping pattern
routes:
  - {countries: ["*"], carriers: [a]}
fleet:
  node_id: %s
  internal_listen: 127.0.0.1:0
  internal_tls: {cert_file: %s, key_file: %s, ca_file: %s}
  bind_lease: 3s
`, filepath.Join(dir, "data"), secret, addrs, prefix, clientA, daemon.HashKey(keyA), cbSrv.URL, sim.Addr(),
			name, certs.CertFile, certs.KeyFile, certs.CAFile)
		path := filepath.Join(shared, name+".yaml")
		if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	a := startOtpgate(t, bin, config("a")) // writes the shared secret
	b := startOtpgate(t, bin, config("b"))
	client := benchClient()

	// A code sent through a verifies through b, once.
	code, firstID, err := postID(client, a.url+sendPath, keyA, sendBody(clientA, "+91-9876500301", "6"))
	if err != nil || code != 200 {
		t.Fatalf("send through a: %d %v", code, err)
	}
	otpCode := codeFor(t, sim, "919876500301", 1)
	var ok atomic.Int64
	var wg sync.WaitGroup
	for i := range 30 {
		wg.Go(func() {
			g := []*proc{a, b}[i%2]
			if code, err := post(client, g.url+verifyPath, keyA, verifyBody(clientA, "+91-9876500301", otpCode)); err == nil && code == 200 {
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 1 {
		t.Fatalf("30 verifies over a and b: got %d × 200, want 1", ok.Load())
	}

	// a dies under load; b verifies what a answered 200.
	const workers, killAfter = 16, 150
	var (
		mu       sync.Mutex
		acked    []string // numbers
		ackedIDs []string // their request ids
		killed   = make(chan struct{})
	)
	url := func(int) string { return a.url }
	senders := sendUntil(client, workers, "+91-8", url, killed, func(s sendOutcome) bool {
		if s.err != nil {
			return false // a is gone
		}
		if s.code == 200 {
			mu.Lock()
			acked = append(acked, s.number)
			ackedIDs = append(ackedIDs, s.requestID)
			mu.Unlock()
		}
		return true
	})
	for deadline := time.Now().Add(60 * time.Second); ; {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= killAfter {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d sends answered 200 in 60s", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killedAt := time.Now()
	err = <-a.exited
	a.exited <- err
	close(killed)
	senders.Wait()
	if ws, isExit := err.(*exec.ExitError); !isExit || ws.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("node a: got %v, want killed by SIGKILL", err)
	}
	mu.Lock()
	defer mu.Unlock()
	verifyAcked(t, sim, client, b.url, acked, "through b after a's death")
	t.Logf("%d sends answered 200 by a before its SIGKILL all verify through b", len(acked))

	// a held the fleet's one bind (b forwarded to it); b takes it over
	// once a's lease ran out, and sends through b go out again.
	var (
		took   time.Duration
		lastID string
	)
	for deadline := time.Now().Add(60 * time.Second); ; {
		code, id, err := postID(client, b.url+sendPath, keyA, sendBody(clientA, "+91-9876500399", "6"))
		if err == nil && code == 200 {
			lastID = id
			took = time.Since(killedAt)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no send through b within 60s of a's death: %d %v", code, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if st := sim.Stats(); st.PeakBound != 1 || sim.Bound() != 1 {
		t.Fatalf("simulator: peak %d binds, %d now; want 1 and 1", st.PeakBound, sim.Bound())
	}
	t.Logf("bind taken over by b, first send through it answered 200: %s after a's SIGKILL (bind_lease 3s)",
		took.Round(10*time.Millisecond))

	// The callbacks a had claimed when it died are delivered by b once
	// their lease (2s) ran out: one for each send answered 200, the verify
	// race's and the takeover's included. Receipts came 5 ms after their
	// submits, often before the send's index was written, and the
	// simulator's hex ids spell each other in decimal (0x10 is 16): each
	// must still reach its own message.
	close(hold)
	want := append([]string{firstID, lastID}, ackedIDs...)
	for deadline := time.Now().Add(60 * time.Second); ; {
		cbMu.Lock()
		var missing []string
		for _, id := range want {
			if !delivered[id] {
				missing = append(missing, id)
			}
		}
		n := len(delivered)
		cbMu.Unlock()
		if len(missing) == 0 {
			t.Logf("%d callbacks delivered (a died holding claims on some), each of the %d sends answered 200 among them", n, len(want))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("within 60s: %d callbacks delivered; none for %d of the %d sends answered 200: %v",
				n, len(missing), len(want), missing[:min(len(missing), 10)])
		}
		time.Sleep(50 * time.Millisecond)
	}
}
