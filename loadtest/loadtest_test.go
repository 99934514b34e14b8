package loadtest_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/daemon"
	"github.com/otpgate/otpgate/loadtest"
	"github.com/otpgate/otpgate/smpp/smsc"
)

// freeAddr returns a 127.0.0.1 address where nothing listens now.
func freeAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startGateway runs a gateway with the bench client whose carrier is at
// carrierAddr, and returns its base URL. The bench sends to consecutive
// numbers at full speed, which is what the pumping guard stops: as in
// configs/bench.yaml, the client has a rate and the guard only monitors.
func startGateway(tb testing.TB, carrierAddr string) string {
	tb.Helper()
	url, _, _ := startGatewayDir(tb, carrierAddr)
	return url
}

// startGatewayDir is startGateway that also returns the admin port's URL
// and the data directory.
func startGatewayDir(tb testing.TB, carrierAddr string) (url, admin, dataDir string) {
	tb.Helper()
	return startGatewayWith(tb, carrierAddr, "    rate: {per_second: 100000, burst: 100000}\n", "guard: {mode: monitor}\n")
}

// startGatewayWith is startGatewayDir with more YAML for the bench
// client and the end of the file.
func startGatewayWith(tb testing.TB, carrierAddr, client, more string) (url, admin, dataDir string) {
	tb.Helper()
	dir := tb.TempDir()
	y := fmt.Sprintf(`
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
data_dir: %s
secret_file: %s
submit_timeout: 3s
log: {level: warn}
otp: {ttl: 5m, max_attempts: 5, resend_interval: 0s, max_per_number_per_hour: 1000}
clients:
  - id: %s
    api_keys: ["%s"]
    sender: OTPGATE
    countries: ["*"]
%scarriers:
  - {name: sim, address: "%s", system_id: bench, password: bench, binds: 2, window: 16}
routes:
  - {countries: ["*"], carriers: [sim]}
%s`, filepath.Join(dir, "data"), filepath.Join(dir, "otp.secret"), loadtest.DefaultClientID,
		daemon.HashKey(loadtest.DefaultAPIKey), client, carrierAddr, more)
	cfg, err := daemon.ParseConfig(strings.NewReader(y))
	if err != nil {
		tb.Fatal(err)
	}
	d, err := daemon.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("daemon Run: %v", err)
		}
	})
	select {
	case <-d.Ready():
	case err := <-done:
		tb.Fatalf("daemon exited: %v", err)
	case <-time.After(20 * time.Second):
		tb.Fatal("daemon not ready after 20s")
	}
	return "http://" + d.Addr().String(), "http://" + d.AdminAddr().String(), filepath.Join(dir, "data")
}

// TestBench_SimulatorAndGateway is `otpgate bench -sim`: the bench starts
// the carrier the gateway dials, waits for the bind, sends and verifies
// every code it saw.
func TestBench_SimulatorAndGateway(t *testing.T) {
	simAddr := freeAddr(t)
	url := startGateway(t, simAddr)
	var stdout, stderr bytes.Buffer
	err := loadtest.Bench(context.Background(), loadtest.BenchOptions{
		Options: loadtest.Options{URL: url, ClientID: loadtest.DefaultClientID, APIKey: loadtest.DefaultAPIKey, Count: 300, Concurrency: 16},
		SimAddr: simAddr, SimSystemID: "bench", SimPassword: "bench", ReceiptDelay: 10 * time.Millisecond, Wait: time.Minute,
	}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("Bench: %v; stderr: %s", err, stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{
		"send answers by status: 200: 300\n",
		"verify answers by status: 200: 300\n",
		"simulator: 300 submits accepted;",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out+stderr.String(), "Your OTP") {
		t.Errorf("an SMS text (with its code) was printed:\n%s%s", out, stderr.String())
	}
}

// TestRun_Report checks the report of a run against a gateway: statuses,
// counts, quantile order; and that a wrong key shows up as 401s with no
// verify phase.
func TestRun_Report(t *testing.T) {
	hs := loadtest.NewHandset()
	sim, err := smsc.Listen("127.0.0.1:0", smsc.Options{SystemID: "bench", Password: "bench", ReceiptDelay: 5 * time.Millisecond,
		Logger: slog.New(hs.Handler(slog.DiscardHandler))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	url := startGateway(t, sim.Addr())
	ctx := context.Background()
	waitBound(t, sim)

	// The tool's own HTTP client (the default for a plain http URL), and
	// net/http's when one is given.
	for name, client := range map[string]*http.Client{"OK": nil, "OK_NetHTTP": {Timeout: 30 * time.Second}} {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			rep, err := loadtest.Run(ctx, loadtest.Options{URL: url, ClientID: loadtest.DefaultClientID, APIKey: loadtest.DefaultAPIKey,
				Count: 100, Concurrency: 8, Codes: hs.Code, TextID: "8", Client: client}, &out)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			for _, p := range []loadtest.Phase{rep.Send, rep.Verify} {
				if p.Requests != 100 || p.OK != 100 || p.Statuses[200] != 100 || p.Errors() != 0 {
					t.Errorf("%s: got %d requests, %d ok, statuses %v; want 100 all 200", p.Name, p.Requests, p.OK, p.Statuses)
				}
				if !(p.P50 > 0 && p.P50 <= p.P90 && p.P90 <= p.P99 && p.P99 <= p.Max) || p.PerSecond <= 0 {
					t.Errorf("%s: quantiles out of order: %+v", p.Name, p)
				}
			}
			if !strings.Contains(out.String(), "phase") {
				t.Errorf("no table in output:\n%s", out.String())
			}
		})
	}

	t.Run("WrongKey", func(t *testing.T) {
		rep, err := loadtest.Run(ctx, loadtest.Options{URL: url, ClientID: loadtest.DefaultClientID, APIKey: "nope",
			Count: 20, Concurrency: 4, Codes: hs.Code}, nil)
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		if rep.Send.Statuses[401] != 20 || rep.Send.Errors() != 20 {
			t.Errorf("send: got statuses %v, want 20 x 401", rep.Send.Statuses)
		}
		if rep.Verify.Requests != 0 {
			t.Errorf("verify: got %d requests, want none (nothing was sent)", rep.Verify.Requests)
		}
	})

	t.Run("Duration", func(t *testing.T) {
		rep, err := loadtest.Run(ctx, loadtest.Options{URL: url, ClientID: loadtest.DefaultClientID, APIKey: loadtest.DefaultAPIKey,
			Duration: 200 * time.Millisecond, Concurrency: 4}, nil)
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		if rep.Send.Requests == 0 || rep.Send.OK != rep.Send.Requests {
			t.Errorf("send: got %d requests, %v", rep.Send.Requests, rep.Send.Statuses)
		}
		if rep.Verify.Requests != 0 {
			t.Errorf("verify without Codes: got %d requests, want 0", rep.Verify.Requests)
		}
	})

	t.Run("NoAnswer", func(t *testing.T) {
		rep, err := loadtest.Run(ctx, loadtest.Options{URL: "http://" + freeAddr(t), ClientID: "c", APIKey: "k", Count: 5}, nil)
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		if rep.Send.Statuses[0] != 5 {
			t.Errorf("got statuses %v, want 5 without answer", rep.Send.Statuses)
		}
	})
}

// waitBound waits until the gateway's two binds are up.
func waitBound(tb testing.TB, sim *smsc.Server) {
	tb.Helper()
	for i := 0; sim.Bound() < 2; i++ {
		if i > 400 {
			tb.Fatal("gateway never bound to the simulator")
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func TestRun_BadConfig(t *testing.T) {
	for name, cfg := range map[string]loadtest.Options{
		"NoURL":         {ClientID: "c", APIKey: "k", Count: 1},
		"NoKey":         {URL: "http://127.0.0.1:1", ClientID: "c", Count: 1},
		"NoCount":       {URL: "http://127.0.0.1:1", ClientID: "c", APIKey: "k"},
		"NegativeCount": {URL: "http://127.0.0.1:1", ClientID: "c", APIKey: "k", Count: -1},
		"NegativeConc":  {URL: "http://127.0.0.1:1", ClientID: "c", APIKey: "k", Count: 1, Concurrency: -1},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := loadtest.Run(context.Background(), cfg, nil); err == nil {
				t.Fatal("got nil error")
			}
		})
	}
}

// TestRun_Stretches: a soak in stretches reports each stretch with the
// gateway's memory, CPU per send and data size read from the gateway.
func TestRun_Stretches(t *testing.T) {
	simAddr := freeAddr(t)
	url, admin, data := startGatewayDir(t, simAddr)
	var stdout, stderr bytes.Buffer
	err := loadtest.Bench(context.Background(), loadtest.BenchOptions{
		Options: loadtest.Options{URL: url, ClientID: loadtest.DefaultClientID, APIKey: loadtest.DefaultAPIKey, Count: 250,
			Concurrency: 8, Stretch: 100, AdminURL: admin, DataDir: data},
		SimAddr: simAddr, SimSystemID: "bench", SimPassword: "bench", ReceiptDelay: -1, Wait: time.Minute,
	}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("Bench: %v; stderr: %s", err, stderr.String())
	}
	out := stdout.String()
	if !strings.Contains(out, "send answers by status: 200: 250\n") || !strings.Contains(out, "gateway CPU ms/send") {
		t.Fatalf("output:\n%s", out)
	}
	// Three stretches: 100, 100, 50, each with figures from the gateway.
	rows := 0
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) == 10 && (f[0] == "1" || f[0] == "2" || f[0] == "3") {
			rows++
			if f[5] == "0" || f[6] == "0" || f[8] == "0" || f[9] == "0.000" {
				t.Errorf("stretch %s: no memory, peak memory or data size from the gateway: %q", f[0], l)
			}
			end, _ := strconv.Atoi(f[5])
			if peak, _ := strconv.Atoi(f[6]); peak < end {
				t.Errorf("stretch %s: peak RSS %d MiB below the RSS at its end, %d MiB", f[0], peak, end)
			}
		}
	}
	if rows != 3 {
		t.Fatalf("got %d stretch rows, want 3:\n%s", rows, out)
	}
	if !regexp.MustCompile(`(?m)^gateway peak RSS: [1-9][0-9]* MiB \(read every 250ms, sends and verifies\)$`).MatchString(out) {
		t.Fatalf("no peak RSS line:\n%s", out)
	}
	if !regexp.MustCompile(`(?m)^gateway CPU per verify: [0-9]+\.[0-9]{3} ms$`).MatchString(out) || strings.Contains(out, "per verify: 0.000 ms") {
		t.Fatalf("no CPU per verify:\n%s", out)
	}
}
