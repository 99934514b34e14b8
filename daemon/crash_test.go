package daemon_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/otpgate/otpgate/daemon"
	"github.com/otpgate/otpgate/smpp/smsc"
)

// buildOtpgate builds the otpgate binary from the module root into a temp
// dir and returns its path.
func buildOtpgate(tb testing.TB) string {
	tb.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	}
	bin := filepath.Join(tb.TempDir(), "otpgate")
	cmd := exec.Command(gobin, "build", "-o", bin, ".")
	cmd.Dir = ".." // the module root
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// proc is an `otpgate run` process.
type proc struct {
	cmd    *exec.Cmd
	url    string
	exited chan error // receives Wait's result

	mu     sync.Mutex
	errors []string // log lines at level ERROR
}

// startOtpgate runs `bin run -config cfgPath` and waits until it listens
// and answers /readyz. Its JSON log is read for the listen address and for
// errors.
func startOtpgate(tb testing.TB, bin, cfgPath string) *proc {
	tb.Helper()
	p := &proc{cmd: exec.Command(bin, "run", "-config", cfgPath), exited: make(chan error, 1)}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.exited
	})
	listen := make(chan string, 1)
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var line struct {
				Level  string `json:"level"`
				Msg    string `json:"msg"`
				Listen string `json:"listen"`
			}
			if json.Unmarshal(sc.Bytes(), &line) != nil {
				continue
			}
			if line.Msg == "otpgate started" {
				listen <- line.Listen
			}
			if line.Level == "ERROR" {
				p.mu.Lock()
				p.errors = append(p.errors, sc.Text())
				p.mu.Unlock()
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	go func() {
		<-logDone
		p.exited <- p.cmd.Wait()
	}()
	select {
	case addr := <-listen:
		p.url = "http://" + addr
	case err := <-p.exited:
		p.exited <- err
		tb.Fatalf("otpgate exited before listening: %v", err)
	case <-time.After(30 * time.Second):
		tb.Fatal("otpgate did not start within 30s")
	}
	waitReady(tb, p.url)
	return p
}

func (p *proc) errorLines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.errors...)
}

// TestCrash_KillDuringLoad kills the gateway with SIGKILL while sends are in
// flight, restarts it on the same data_dir and checks that badger reopens
// cleanly and that every send answered 200 before the kill verifies with
// the code the handset (the simulator) received.
func TestCrash_KillDuringLoad(t *testing.T) {
	bin := buildOtpgate(t)
	sim := startSim(t, smsc.Options{ReceiptDelay: 5 * time.Millisecond})
	dir := t.TempDir()
	cfgPath := writeProcConfig(t, dir, "127.0.0.1:0", filepath.Join(dir, "data"), sim.Addr())

	g1 := startOtpgate(t, bin, cfgPath)
	const (
		workers   = 32
		killAfter = 400 // 200s seen before the kill
	)
	client := benchClient()
	var (
		mu        sync.Mutex
		ok        []string // numbers whose send answered 200
		killed    = make(chan struct{})
		active    atomic.Int32
		attempted atomic.Int64
	)
	active.Store(workers)
	url := func(int) string { return g1.url }
	wg := sendUntil(client, workers, "+91-9", url, killed, func(s sendOutcome) bool {
		attempted.Add(1)
		if s.err != nil {
			// The gateway is gone: no send after this one can succeed.
			active.Add(-1)
			return false
		}
		if s.code == 200 {
			mu.Lock()
			ok = append(ok, s.number)
			mu.Unlock()
		}
		return true
	})
	// Senders whose sends all fail without a connection error (409, 429)
	// would keep this loop going for ever: it has a deadline.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(5 * time.Millisecond) {
		mu.Lock()
		n := len(ok)
		mu.Unlock()
		if n >= killAfter {
			break
		}
		if active.Load() == 0 {
			t.Fatalf("every sender stopped (connection errors) after %d sends answered 200", n)
		}
		if time.Now().After(deadline) {
			close(killed)
			t.Fatalf("only %d of %d sends answered 200 within a minute (%d attempted)", n, killAfter, attempted.Load())
		}
	}
	// Mid-load: the workers keep sending while the process dies.
	if err := g1.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := <-g1.exited
	g1.exited <- err
	close(killed)
	wg.Wait()
	client.CloseIdleConnections()
	if ws, isExit := err.(*exec.ExitError); !isExit || ws.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("first gateway: got %v, want killed by SIGKILL", err)
	}
	mu.Lock()
	sent := append([]string(nil), ok...)
	mu.Unlock()
	t.Logf("%d sends answered 200 before the kill, %d attempted", len(sent), attempted.Load())

	g2 := startOtpgate(t, bin, cfgPath)
	verifyAcked(t, sim, client, g2.url, sent, "after restart")
	if errs := g2.errorLines(); len(errs) > 0 {
		t.Errorf("restarted gateway logged errors:\n%s", strings.Join(errs, "\n"))
	}
	resp, err := http.Get(g2.url + "/readyz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("readyz after verifies: %v %v", resp, err)
	}
	resp.Body.Close()

	// A clean stop closes badger and exits 0.
	if err := g2.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-g2.exited:
		g2.exited <- err
		if err != nil {
			t.Fatalf("restarted gateway: exit %v after SIGTERM, want 0", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("restarted gateway did not stop within 30s of SIGTERM")
	}
}

// writeProcConfig writes the configuration of an `otpgate run` process in
// dir: client A at full speed (the guard in monitor mode: consecutive
// numbers at full speed look like pumping), one carrier at simAddr. It
// returns the file's path.
func writeProcConfig(tb testing.TB, dir, adminListen, dataDir, simAddr string) string {
	tb.Helper()
	cfgPath := filepath.Join(dir, "otpgate.yaml")
	y := fmt.Sprintf(`listen: 127.0.0.1:0
admin_listen: %s
data_dir: %s
secret_file: %s
submit_timeout: 3s
log: {level: info, format: json}
otp: {ttl: 10m, max_attempts: 5, resend_interval: 0s, max_per_number_per_hour: 1000}
clients:
  - id: %s
    api_keys: ["%s"]
    sender: OTPGATE
    countries: ["*"]
    rate: {per_second: 100000, burst: 100000}
carriers:
  - {name: a, address: "%s", system_id: carrier-a, password: pw-a, binds: 2, window: 32}
routes:
  - {countries: ["*"], carriers: [a]}
guard: {mode: monitor}
`, adminListen, dataDir, filepath.Join(dir, "otp.secret"), clientA, daemon.HashKey(keyA), simAddr)
	if err := os.WriteFile(cfgPath, []byte(y), 0o600); err != nil {
		tb.Fatal(err)
	}
	return cfgPath
}

// verifyAcked checks that every number of sent (each answered 200) got its
// SMS at sim and that its code verifies at url (when: which node, for the
// error).
func verifyAcked(t *testing.T, sim *smsc.Server, client *http.Client, url string, sent []string, when string) {
	t.Helper()
	codes := map[string]string{}
	for _, m := range sim.Messages() {
		codes[m.Dst] = codeRE.FindString(m.Text)
	}
	for _, n := range sent {
		c, found := codes["91"+n[4:]]
		if !found {
			t.Errorf("%s: answered 200 but the simulator never received its SMS", n)
			continue
		}
		if code, err := post(client, url+verifyPath, keyA, verifyBody(clientA, n, c)); err != nil || code != 200 {
			t.Errorf("%s: verify %s: got %d %v, want 200", n, when, code, err)
		}
	}
}
