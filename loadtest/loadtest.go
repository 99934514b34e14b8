package loadtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// API paths of the gateway.
const (
	sendPath   = "/api/v3/otp-verification/send-otp"
	verifyPath = "/api/v3/otp-verification/verify-otp"
	readyPath  = "/readyz"
)

// Defaults of Options and of Main's flags.
const (
	// DefaultConcurrency is the default Options.Concurrency.
	DefaultConcurrency = 64
	// DefaultTextID is the default Options.TextID: six-digit codes.
	DefaultTextID = "6"
	// DefaultPrefix is the default Options.Prefix: Indian mobile numbers.
	DefaultPrefix = "+91-9"
	// DefaultURL is the gateway's address in configs/bench.yaml.
	DefaultURL = "http://127.0.0.1:8080"
	// DefaultClientID is the client of configs/bench.yaml.
	DefaultClientID = "bench"
	// DefaultAPIKey is that client's API key.
	DefaultAPIKey = "bench-key-0001"
)

// numberSpace is how many distinct numbers a Prefix leaves: nine digits.
const numberSpace = 1_000_000_000

// Options configures Run.
type Options struct {
	// URL is the gateway's base URL, e.g. "http://127.0.0.1:8080".
	URL string
	// ClientID and APIKey are the client the requests are made as.
	ClientID, APIKey string
	// TextID is the customTextId of the sends; "" means DefaultTextID.
	TextID string
	// Concurrency is how many requests are in flight; 0 means
	// DefaultConcurrency.
	Concurrency int
	// Count is how many sends are made; the verify phase then verifies each
	// send that got 200. With Duration set, Count (if > 0) caps each phase.
	Count int
	// Duration, when > 0, ends each phase once it has run that long.
	Duration time.Duration
	// Prefix is the start of every phone number, followed by nine digits
	// that differ from number to number; "" means DefaultPrefix (Indian
	// mobile numbers, "+91-9xxxxxxxxx").
	Prefix string
	// First is where the nine-digit sequence starts (modulo 10^9); 0 means
	// from the clock, so that runs do not reuse each other's numbers.
	First int64
	// Codes returns the code last sent to a number, given as the E.164
	// digits the carrier sees ("919000000001"); nil skips the verify phase.
	Codes func(e164 string) (code string, ok bool)
	// Client makes the requests; nil means the tool's own HTTP/1.1
	// client (wire.go) for a plain http URL, which keeps one connection
	// per concurrent request, and net/http's otherwise.
	Client *http.Client
	// Stretch, when > 0, runs the sends (Count of them) in stretches of
	// this many and reports each: a soak shows whether rate, latency and
	// the gateway's memory stay flat as the stored work grows.
	Stretch int
	// AdminURL is the gateway's admin port ("http://127.0.0.1:9464"):
	// after each stretch its /metrics gives resident memory and CPU
	// seconds. "" skips them.
	AdminURL string
	// DataDir is the gateway's data_dir, measured after each stretch; ""
	// skips it.
	DataDir string

	wire *wireClient // set by normalize when Client is nil and URL is plain http
}

// Run sends Count (or for Duration) OTPs to distinct numbers, then verifies
// each that got 200 with the code Codes returns, both at Concurrency
// requests in flight, writes the report to out (a table; nil writes
// nothing) and returns it. A bad Options is an error before any request;
// when ctx ends, Run stops and returns what it measured with ctx's error.
func Run(ctx context.Context, cfg Options, out io.Writer) (Report, error) {
	if err := cfg.normalize(); err != nil {
		return Report{}, err
	}
	if cfg.wire != nil {
		defer cfg.wire.close()
	}
	var rep Report
	// The sends that got 200, by index: ints, which the GC does not scan,
	// rather than a million strings.
	sent := make([]int, 0, max(cfg.Count, 0))
	numberAt := func(i int) string { return fmt.Sprintf("%s%09d", cfg.Prefix, (cfg.First+int64(i))%numberSpace) }
	var sentMu sync.Mutex
	sendBody := func(number string) []byte {
		return fmt.Appendf(nil, `{"clientId":%s,"phoneNumber":%s,"channel":"smsotp","customTextId":%s}`,
			strconv.Quote(cfg.ClientID), strconv.Quote(number), strconv.Quote(cfg.TextID))
	}
	limit := cfg.Count
	if limit == 0 {
		limit = -1 // only Duration ends the phase
	}
	send := func(i int) (int, bool) {
		number := numberAt(i)
		st := cfg.post(ctx, sendPath, cfg.APIKey, sendBody(number))
		if st == http.StatusOK {
			sentMu.Lock()
			sent = append(sent, i)
			sentMu.Unlock()
		}
		return st, true
	}
	peak := watchRSS(ctx, cfg)
	defer peak.close()
	if cfg.Stretch > 0 && cfg.Count > 0 {
		rep.Send, rep.Stretches = runStretches(ctx, cfg, peak, send)
	} else {
		rep.Send, _ = runPhaseLats(ctx, "send", cfg, limit, send)
	}
	if err := ctx.Err(); err != nil || cfg.Codes == nil {
		rep.Verify = Phase{Name: "verify", Statuses: map[int]int{}}
		rep.PeakRSSBytes = peak.close()
		write(out, cfg, rep)
		return rep, err
	}
	var noCode atomic.Int64
	_, cpu0 := gatewayProcess(ctx, cfg)
	rep.Verify = runPhase(ctx, "verify", cfg, len(sent), func(i int) (int, bool) {
		number := numberAt(sent[i])
		code, ok := cfg.Codes(digits(number))
		if !ok {
			noCode.Add(1)
			return 0, false
		}
		body := fmt.Appendf(nil, `{"clientId":%s,"phoneNumber":%s,"otp":%s}`,
			strconv.Quote(cfg.ClientID), strconv.Quote(number), strconv.Quote(code))
		return cfg.post(ctx, verifyPath, cfg.APIKey, body), true
	})
	rep.Verify.NoCode = int(noCode.Load())
	if _, cpu := gatewayProcess(ctx, cfg); cpu > cpu0 {
		rep.VerifyCPUSeconds = cpu - cpu0
	}
	rep.PeakRSSBytes = peak.close()
	write(out, cfg, rep)
	return rep, ctx.Err()
}

func (c *Options) normalize() error {
	if c.URL == "" {
		return errors.New("loadtest: no gateway URL")
	}
	c.URL = strings.TrimRight(c.URL, "/")
	if c.ClientID == "" || c.APIKey == "" {
		return errors.New("loadtest: no client id or API key")
	}
	if c.Count < 0 || c.Duration < 0 {
		return errors.New("loadtest: negative count or duration")
	}
	if c.Stretch < 0 || (c.Stretch > 0 && c.Count == 0) {
		return errors.New("loadtest: stretches need a positive count")
	}
	c.AdminURL = strings.TrimRight(c.AdminURL, "/")
	if c.Count == 0 && c.Duration == 0 {
		return errors.New("loadtest: neither a count nor a duration")
	}
	if c.Concurrency < 0 {
		return errors.New("loadtest: negative concurrency")
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.TextID == "" {
		c.TextID = DefaultTextID
	}
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.First == 0 {
		c.First = time.Now().UnixNano() / 1000
	}
	c.First = (c.First%numberSpace + numberSpace) % numberSpace
	if c.Client == nil {
		if w, err := newWireClient(c.URL, c.Concurrency); err == nil {
			c.wire = w
			return nil
		}
		c.Client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			MaxIdleConnsPerHost: c.Concurrency, MaxConnsPerHost: c.Concurrency, DisableCompression: true}}
	}
	return nil
}

// runPhase runs do for i = 0, 1, ... from cfg.Concurrency goroutines until
// limit calls were made (limit < 0: no limit), cfg.Duration passed (when
// set), or ctx ended. do returns the HTTP status (0 for no answer) and
// whether it made a request at all.
func runPhase(ctx context.Context, name string, cfg Options, limit int, do func(i int) (status int, made bool)) Phase {
	p, _ := runPhaseLats(ctx, name, cfg, limit, do)
	return p
}

// runPhaseLats is runPhase that also returns every request's latency,
// sorted.
func runPhaseLats(ctx context.Context, name string, cfg Options, limit int, do func(i int) (status int, made bool)) (Phase, []time.Duration) {
	p := Phase{Name: name, Statuses: map[int]int{}}
	if limit == 0 {
		return p, nil
	}
	var deadline time.Time
	var next atomic.Int64
	lats := make([][]time.Duration, cfg.Concurrency)
	statuses := make([]map[int]int, cfg.Concurrency)
	var wg sync.WaitGroup
	start := time.Now()
	if cfg.Duration > 0 {
		deadline = start.Add(cfg.Duration)
	}
	for w := range cfg.Concurrency {
		statuses[w] = map[int]int{}
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if limit >= 0 && i >= limit {
					return
				}
				if !deadline.IsZero() && !time.Now().Before(deadline) {
					return
				}
				t0 := time.Now()
				st, made := do(i)
				if !made {
					continue
				}
				lats[w] = append(lats[w], time.Since(t0))
				statuses[w][st]++
			}
		})
	}
	wg.Wait()
	p.Elapsed = time.Since(start)
	all := slices.Concat(lats...)
	for _, m := range statuses {
		for st, n := range m {
			p.Statuses[st] += n
		}
	}
	slices.Sort(all)
	p.setLatencies(all)
	return p, all
}

// setLatencies fills Requests, OK, PerSecond and the quantiles from the
// sorted latencies of the phase's requests.
func (p *Phase) setLatencies(all []time.Duration) {
	p.Requests = len(all)
	p.OK = p.Statuses[http.StatusOK]
	if p.Requests == 0 {
		return
	}
	p.PerSecond = float64(p.Requests) / p.Elapsed.Seconds()
	q := func(f float64) time.Duration { return all[int(f*float64(len(all)-1))] }
	p.P50, p.P90, p.P99, p.Max = q(0.50), q(0.90), q(0.99), all[len(all)-1]
}

// post makes one request to the gateway's path and returns its HTTP
// status, or 0 when there was no answer.
func (c *Options) post(ctx context.Context, path, key string, body []byte) int {
	if c.wire != nil {
		return c.wire.post(ctx, path, key, body)
	}
	return post(ctx, c.Client, c.URL+path, key, body)
}

// post makes one request and returns its HTTP status, or 0 when there was
// no answer.
func post(ctx context.Context, client *http.Client, url, key string, body []byte) int {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0
	}
	req.Header.Set("Authorization", key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return 0
	}
	return resp.StatusCode
}

// digits keeps the decimal digits of s: a number as the carrier sees it.
func digits(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, s)
}
