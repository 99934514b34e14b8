package loadtest

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/otpgate/otpgate/smpp/smsc"
)

// API paths of the gateway.
const (
	sendPath   = "/api/v3/otp-verification/send-otp"
	verifyPath = "/api/v3/otp-verification/verify-otp"
	readyPath  = "/readyz"
)

// Defaults of Config and of Main's flags.
const (
	// DefaultConcurrency is the default Config.Concurrency.
	DefaultConcurrency = 64
	// DefaultTextID is the default Config.TextID: six-digit codes.
	DefaultTextID = "6"
	// DefaultPrefix is the default Config.Prefix: Indian mobile numbers.
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

// Config configures Run.
type Config struct {
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
	// Client makes the requests; nil means a client that keeps one
	// connection per concurrent request.
	Client *http.Client
}

// Phase is the outcome of one phase of a run.
type Phase struct {
	// Name is "send" or "verify".
	Name string `json:"name"`
	// Requests counts the requests made, answered or not.
	Requests int `json:"requests"`
	// OK counts 200 answers.
	OK int `json:"ok"`
	// Elapsed is the phase's wall time.
	Elapsed time.Duration `json:"elapsed_ns"`
	// PerSecond is Requests divided by Elapsed.
	PerSecond float64 `json:"per_second"`
	// P50, P90, P99 and Max are latency quantiles over all requests.
	P50 time.Duration `json:"p50_ns"`
	P90 time.Duration `json:"p90_ns"`
	P99 time.Duration `json:"p99_ns"`
	Max time.Duration `json:"max_ns"`
	// Statuses counts answers by HTTP status; 0 counts requests that got
	// no answer (connection errors, timeouts).
	Statuses map[int]int `json:"statuses"`
	// NoCode counts, in the verify phase, sends whose code Codes did not
	// know; they are not verified and not counted in Requests.
	NoCode int `json:"no_code,omitempty"`
}

// Errors counts the requests that did not get 200.
func (p Phase) Errors() int { return p.Requests - p.OK }

// Report is the outcome of Run.
type Report struct {
	Send   Phase `json:"send"`
	Verify Phase `json:"verify"`
}

// Run sends Count (or for Duration) OTPs to distinct numbers, then verifies
// each that got 200 with the code Codes returns, both at Concurrency
// requests in flight, writes the report to out (a table; nil writes
// nothing) and returns it. A bad Config is an error before any request;
// when ctx ends, Run stops and returns what it measured with ctx's error.
func Run(ctx context.Context, cfg Config, out io.Writer) (Report, error) {
	if err := cfg.normalize(); err != nil {
		return Report{}, err
	}
	var rep Report
	sent := make([]string, 0, max(cfg.Count, 0))
	var sentMu sync.Mutex
	sendBody := func(number string) []byte {
		return fmt.Appendf(nil, `{"clientId":%s,"phoneNumber":%s,"channel":"smsotp","customTextId":%s}`,
			strconv.Quote(cfg.ClientID), strconv.Quote(number), strconv.Quote(cfg.TextID))
	}
	limit := cfg.Count
	if limit == 0 {
		limit = -1 // only Duration ends the phase
	}
	rep.Send = runPhase(ctx, "send", cfg, limit, func(i int) (int, bool) {
		number := fmt.Sprintf("%s%09d", cfg.Prefix, (cfg.First+int64(i))%numberSpace)
		st := post(ctx, cfg.Client, cfg.URL+sendPath, cfg.APIKey, sendBody(number))
		if st == http.StatusOK {
			sentMu.Lock()
			sent = append(sent, number)
			sentMu.Unlock()
		}
		return st, true
	})
	if err := ctx.Err(); err != nil || cfg.Codes == nil {
		rep.Verify = Phase{Name: "verify", Statuses: map[int]int{}}
		write(out, cfg, rep)
		return rep, err
	}
	var noCode atomic.Int64
	rep.Verify = runPhase(ctx, "verify", cfg, len(sent), func(i int) (int, bool) {
		number := sent[i]
		code, ok := cfg.Codes(digits(number))
		if !ok {
			noCode.Add(1)
			return 0, false
		}
		body := fmt.Appendf(nil, `{"clientId":%s,"phoneNumber":%s,"otp":%s}`,
			strconv.Quote(cfg.ClientID), strconv.Quote(number), strconv.Quote(code))
		return post(ctx, cfg.Client, cfg.URL+verifyPath, cfg.APIKey, body), true
	})
	rep.Verify.NoCode = int(noCode.Load())
	write(out, cfg, rep)
	return rep, ctx.Err()
}

func (c *Config) normalize() error {
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
		c.Client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			MaxIdleConnsPerHost: c.Concurrency, MaxConnsPerHost: c.Concurrency, DisableCompression: true}}
	}
	return nil
}

// runPhase runs do for i = 0, 1, ... from cfg.Concurrency goroutines until
// limit calls were made (limit < 0: no limit), cfg.Duration passed (when
// set), or ctx ended. do returns the HTTP status (0 for no answer) and
// whether it made a request at all.
func runPhase(ctx context.Context, name string, cfg Config, limit int, do func(i int) (status int, made bool)) Phase {
	p := Phase{Name: name, Statuses: map[int]int{}}
	if limit == 0 {
		return p
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
	p.Requests = len(all)
	p.OK = p.Statuses[http.StatusOK]
	if p.Requests == 0 {
		return p
	}
	p.PerSecond = float64(p.Requests) / p.Elapsed.Seconds()
	slices.Sort(all)
	q := func(f float64) time.Duration { return all[int(f*float64(len(all)-1))] }
	p.P50, p.P90, p.P99, p.Max = q(0.50), q(0.90), q(0.99), all[len(all)-1]
	return p
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

// write prints rep as a table.
func write(out io.Writer, cfg Config, rep Report) {
	if out == nil {
		return
	}
	fmt.Fprintf(out, "otpgate bench: %s, %d concurrent\n", cfg.URL, cfg.Concurrency)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "phase\trequests\tok\tseconds\treq/s\tp50 ms\tp90 ms\tp99 ms\tmax ms\t")
	for _, p := range []Phase{rep.Send, rep.Verify} {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.2f\t%.0f\t%s\t%s\t%s\t%s\t\n", p.Name, p.Requests, p.OK, p.Elapsed.Seconds(),
			p.PerSecond, ms(p.P50), ms(p.P90), ms(p.P99), ms(p.Max))
	}
	tw.Flush()
	for _, p := range []Phase{rep.Send, rep.Verify} {
		if p.Requests == 0 && p.NoCode == 0 {
			continue
		}
		fmt.Fprintf(out, "%s answers by status: %s", p.Name, statusList(p.Statuses))
		if p.NoCode > 0 {
			fmt.Fprintf(out, "; %d sends with no code seen (not verified)", p.NoCode)
		}
		fmt.Fprintln(out)
	}
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 1, 64)
}

func statusList(m map[int]int) string {
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	var parts []string
	for _, k := range keys {
		name := strconv.Itoa(k)
		if k == 0 {
			name = "no answer"
		}
		parts = append(parts, fmt.Sprintf("%s: %d", name, m[k]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// Handset collects the codes of the SMS a simulator accepts, as the handset
// would read them. Install Handler as the simulator's logger handler: it
// keeps the text of each "sms received" record and passes every other
// record to the handler it wraps. It is safe for concurrent use.
type Handset struct {
	mu    sync.Mutex
	texts map[string]string // destination -> last text
}

// NewHandset returns an empty Handset.
func NewHandset() *Handset { return &Handset{texts: map[string]string{}} }

// codeRE is a code in an SMS text: the first run of 4 to 8 digits.
var codeRE = regexp.MustCompile(`\b\d{4,8}\b`)

// Code returns and forgets the code of the last SMS to e164 (digits only).
// It implements Config.Codes.
func (h *Handset) Code(e164 string) (string, bool) {
	h.mu.Lock()
	text, ok := h.texts[e164]
	delete(h.texts, e164)
	h.mu.Unlock()
	if !ok {
		return "", false
	}
	code := codeRE.FindString(text)
	return code, code != ""
}

// Handler returns a slog.Handler that records "sms received" in h and
// passes the other records to next.
func (h *Handset) Handler(next slog.Handler) slog.Handler { return handsetHandler{h: h, next: next} }

type handsetHandler struct {
	h    *Handset
	next slog.Handler
}

func (hh handsetHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelInfo || hh.next.Enabled(ctx, l)
}

func (hh handsetHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Message != "sms received" {
		if hh.next.Enabled(ctx, r.Level) {
			return hh.next.Handle(ctx, r)
		}
		return nil
	}
	var dst, text string
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "dst":
			dst = a.Value.String()
		case "text":
			text = a.Value.String()
		}
		return true
	})
	if dst != "" {
		hh.h.mu.Lock()
		hh.h.texts[dst] = text
		hh.h.mu.Unlock()
	}
	return nil
}

func (hh handsetHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return handsetHandler{h: hh.h, next: hh.next.WithAttrs(as)}
}

func (hh handsetHandler) WithGroup(name string) slog.Handler {
	return handsetHandler{h: hh.h, next: hh.next.WithGroup(name)}
}

// Main is `otpgate bench`: it parses args, optionally starts the SMSC
// simulator the gateway dials (-sim), waits for the gateway's /readyz, runs
// the load and prints the report to stdout. It returns the exit status: 0
// after a run (whatever the answers), 1 when the run could not be made, 2
// for bad flags.
func Main(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg Config
	fs.StringVar(&cfg.URL, "url", DefaultURL, "gateway base URL")
	fs.StringVar(&cfg.ClientID, "client", DefaultClientID, "clientId of the requests")
	fs.StringVar(&cfg.APIKey, "key", DefaultAPIKey, "API key of the client")
	fs.StringVar(&cfg.TextID, "text", DefaultTextID, "customTextId of the sends")
	fs.IntVar(&cfg.Concurrency, "c", DefaultConcurrency, "requests in flight")
	fs.IntVar(&cfg.Count, "n", 10000, "sends (then verifies); with -d, a cap (0: none)")
	fs.DurationVar(&cfg.Duration, "d", 0, "run each phase this long instead of -n requests")
	fs.StringVar(&cfg.Prefix, "prefix", DefaultPrefix, "phone number prefix; nine distinct digits follow")
	simAddr := fs.String("sim", "", "start the SMSC simulator on this address (the carrier the gateway dials) and verify the codes it receives")
	simID := fs.String("sim-system-id", "bench", "system_id the simulator accepts")
	simPW := fs.String("sim-password", "bench", "password the simulator accepts")
	receiptDelay := fs.Duration("receipt-delay", 10*time.Millisecond, "simulator's delay before each delivery receipt; negative: none")
	wait := fs.Duration("wait", time.Minute, "longest wait for the gateway's /readyz")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "otpgate bench: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var sim *smsc.Server
	if *simAddr != "" {
		hs := NewHandset()
		var err error
		// The simulator warns once per refused receipt: its counters, printed
		// at the end, say the same without flooding the terminal.
		simLog := slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelError})
		sim, err = smsc.Listen(*simAddr, smsc.Config{SystemID: *simID, Password: *simPW, ReceiptDelay: *receiptDelay,
			ReceiptTLV: true, KeepMessages: 1, Logger: slog.New(hs.Handler(simLog))})
		if err != nil {
			fmt.Fprintf(stderr, "otpgate bench: %v\n", err)
			return 1
		}
		defer sim.Close()
		cfg.Codes = hs.Code
		fmt.Fprintf(stdout, "smsc simulator on %s (system_id %s)\n", sim.Addr(), *simID)
	}
	if err := waitReady(ctx, cfg.URL, *wait); err != nil {
		fmt.Fprintf(stderr, "otpgate bench: %v\n", err)
		return 1
	}
	if _, err := Run(ctx, cfg, stdout); err != nil {
		fmt.Fprintf(stderr, "otpgate bench: %v\n", err)
		return 1
	}
	if sim != nil {
		st := sim.Stats()
		fmt.Fprintf(stdout, "simulator: %d submits accepted; receipts: %d sent (re-sends included), %d acked, %d refused by the gateway\n",
			st.Accepted, st.ReceiptsSent, st.ReceiptsAcked, st.ReceiptsNacked)
	}
	return 0
}

// waitReady polls url's /readyz until it answers 200 or wait has passed.
func waitReady(ctx context.Context, url string, wait time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	url = strings.TrimRight(url, "/") + readyPath
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("loadtest: ready: %w", err)
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("loadtest: gateway at %s not ready: %w", url, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
