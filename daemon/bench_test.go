package daemon_test

import (
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpgate/otpgate/daemon"
	"github.com/otpgate/otpgate/smpp/smsc"
)

// latencies collects request durations from many goroutines.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

func (l *latencies) report(b *testing.B, start time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.d) == 0 {
		return
	}
	sort.Slice(l.d, func(i, j int) bool { return l.d[i] < l.d[j] })
	q := func(p float64) float64 { return float64(l.d[int(p*float64(len(l.d)-1))].Microseconds()) / 1000 }
	b.ReportMetric(float64(len(l.d))/time.Since(start).Seconds(), "req/s")
	b.ReportMetric(q(0.50), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
}

var benchSeq atomic.Int64

func benchGateway(b *testing.B) (*gateway, *smsc.Server) {
	sim := startSim(b, smsc.Options{ReceiptDelay: 10 * time.Millisecond})
	cfg := testConfig(b, cfgOpts{simAddr: sim.Addr(), perHour: 1000000})
	cfg.Carriers[0].Binds = 2
	cfg.Carriers[0].Window = 64
	cfg.Log.Level = "warn"
	// Consecutive numbers at full speed from one client: the guard runs
	// (its cost is part of the figure) but does not refuse them.
	cfg.Clients[0].Rate = daemon.RateConfig{PerSecond: 1e6, Burst: 1e6}
	cfg.Guard.Mode = "monitor"
	return startGateway(b, cfg), sim
}

// post is call without testing.TB overhead on the hot path.
func post(client *http.Client, url, key, body string) (int, error) {
	code, _, err := postID(client, url, key, body)
	return code, err
}

// postID is post that also returns the requestId of the answer's body
// ("" when it has none).
func postID(client *http.Client, url, key, body string) (int, string, error) {
	req, err := http.NewRequest("POST", url, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Authorization", key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return 0, "", err
	}
	return resp.StatusCode, requestIDIn(string(b)), nil
}

// sendOutcome is one send of sendUntil: its number, when it began, and its
// answer (with the request id it gave).
type sendOutcome struct {
	number    string
	began     time.Time
	code      int
	requestID string
	err       error
}

// sendUntil runs workers goroutines that send-otp to fresh numbers (prefix
// and a 9-digit counter shared by all) through url(worker) until stop is
// closed or answer returns false, and returns their WaitGroup. answer,
// called with each send, keeps the caller's books.
func sendUntil(client *http.Client, workers int, prefix string, url func(worker int) string, stop <-chan struct{},
	answer func(s sendOutcome) bool) *sync.WaitGroup {
	var wg sync.WaitGroup
	var seq atomic.Int64
	for w := range workers {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				s := sendOutcome{number: fmt.Sprintf("%s%09d", prefix, seq.Add(1)), began: time.Now()}
				s.code, s.requestID, s.err = postID(client, url(w)+sendPath, keyA, sendBody(clientA, s.number, "6"))
				if !answer(s) {
					return
				}
			}
		})
	}
	return &wg
}

func benchClient() *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 256}}
}

// BenchmarkGateway_SendOTP drives send-otp over HTTP at 64 concurrent
// requests with distinct numbers, through a real SMPP session to the
// simulator (which acks and sends receipts), with badger SyncWrites on.
func BenchmarkGateway_SendOTP(b *testing.B) {
	g, _ := benchGateway(b)
	client := benchClient()
	drive(b, "sends", func() (int, error) {
		return post(client, g.url+sendPath, keyA, sendBody(clientA, fmt.Sprintf("+91-9%09d", benchSeq.Add(1)), "6"))
	})
}

// drive runs request b.N times at 64 concurrent requests (2 cores x 32),
// reports req/s and p50/p99 latency, and fails the benchmark if any
// answer was not a 200.
func drive(b *testing.B, what string, request func() (int, error)) {
	var lat latencies
	var failed atomic.Int64
	b.SetParallelism(32)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			t0 := time.Now()
			code, err := request()
			lat.add(time.Since(t0))
			if err != nil || code != 200 {
				failed.Add(1)
			}
		}
	})
	b.StopTimer()
	lat.report(b, start)
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d of %d %s failed", f, b.N, what)
	}
}

// BenchmarkGateway_VerifyOTP sends b.N codes first (not timed), then
// verifies each with its right code at 64 concurrent requests.
func BenchmarkGateway_VerifyOTP(b *testing.B) {
	g, sim := benchGateway(b)
	benchVerify(b, []*gateway{g}, sim)
}

// benchVerify is BenchmarkGateway_VerifyOTP on gs, the requests going to
// each in turn.
func benchVerify(b *testing.B, gs []*gateway, sim *smsc.Server) {
	g := gs[0]
	client := benchClient()
	numbers := make([]string, b.N)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for i := range numbers {
		numbers[i] = fmt.Sprintf("9%09d", benchSeq.Add(1))
		wg.Add(1)
		sem <- struct{}{}
		go func(n string) {
			defer wg.Done()
			defer func() { <-sem }()
			if code, err := post(client, g.url+sendPath, keyA, sendBody(clientA, "+91-"+n, "6")); err != nil || code != 200 {
				b.Errorf("send: %d %v", code, err)
			}
		}(numbers[i])
	}
	wg.Wait()
	codes := map[string]string{}
	for _, m := range sim.Messages() {
		codes[m.Dst] = codeRE.FindString(m.Text)
	}
	var next atomic.Int64
	drive(b, "verifies", func() (int, error) {
		i := next.Add(1) - 1
		n := numbers[i]
		return post(client, gs[int(i)%len(gs)].url+verifyPath, keyA, verifyBody(clientA, "+91-"+n, codes["91"+n]))
	})
}
