package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"golang.org/x/time/rate"
)

// Defaults of AttackConfig.
const (
	// DefaultAttackRate is the attack's sends per second, all ranges together.
	DefaultAttackRate = 300
	// DefaultAttackCount is how many consecutive numbers of each range
	// the attack sends to.
	DefaultAttackCount = 300
	// DefaultVerifyShare is the share of legitimate codes verified.
	DefaultVerifyShare = 0.8
	// attackWorkers is the attack's requests in flight per range.
	attackWorkers = 8
)

// Client is an API client of the gateway: its id and key.
type Client struct{ ID, Key string }

// AttackConfig configures Attack: an SMS-pumping attack with a leaked key
// while real users go on logging in.
type AttackConfig struct {
	// URL is the gateway's base URL.
	URL string
	// Attacker is the client whose key leaked: it sends to consecutive
	// numbers of Ranges and never verifies. Its real users are among the
	// legitimate traffic too.
	Attacker Client
	// Ranges are the attacked prefixes ("+91-981110"): Count consecutive
	// numbers of four more digits each, from 0000.
	Ranges []string
	// Count is the numbers per range; 0 means DefaultAttackCount (at most 10,000).
	Count int
	// Rate is the attack's sends per second in all; 0 means DefaultAttackRate.
	Rate float64
	// Legit are the other clients whose users log in during the attack.
	Legit []Client
	// Concurrency is the legitimate requests in flight; 0 means 8.
	Concurrency int
	// Prefix starts the legitimate users' numbers, followed by nine
	// random digits; "" means DefaultPrefix. Numbers in an attacked range
	// are skipped.
	Prefix string
	// VerifyShare is the share of legitimate codes verified (each right
	// after its send); 0 means DefaultVerifyShare.
	VerifyShare float64
	// TextID is the customTextId of the sends; "" means DefaultTextID.
	TextID string
	// Codes returns the code last sent to a number (E.164 digits): the
	// simulator's Handset.Code. Required.
	Codes func(e164 string) (string, bool)
	// Delivered counts the SMS the carrier took for numbers starting with
	// the given E.164 digits; nil counts the 200 answers instead.
	Delivered func(prefix string) int
	// Client makes the requests; nil means one like Options's.
	Client *http.Client
}

// RangeReport is what the attack did to one range.
type RangeReport struct {
	// Range is the attacked range, "+91-981110xxxx".
	Range string `json:"range"`
	// Requests, OK, Refused and Other count the attack's sends, those
	// answered 200, those answered 429 and the rest.
	Requests int `json:"requests"`
	OK       int `json:"ok"`
	Refused  int `json:"refused"`
	Other    int `json:"other"`
	// Delivered counts the SMS that reached the carrier (with a simulator)
	// or, without one, the 200 answers.
	Delivered int `json:"delivered"`
}

// AttackReport is the outcome of Attack.
type AttackReport struct {
	Ranges []RangeReport `json:"ranges"`
	// Legit* count the legitimate sends, those refused (any answer but
	// 200, by status), the verifications made and those that failed.
	LegitSends    int         `json:"legit_sends"`
	LegitRefused  int         `json:"legit_refused"`
	LegitStatuses map[int]int `json:"legit_statuses"`
	Verifies      int         `json:"verifies"`
	VerifyFailed  int         `json:"verify_failed"`
	Elapsed       time.Duration
}

func (c *AttackConfig) normalize() error {
	if c.URL == "" || c.Attacker.ID == "" || c.Attacker.Key == "" {
		return errors.New("loadtest: attack: no gateway URL or no attacking client")
	}
	c.URL = strings.TrimRight(c.URL, "/")
	if len(c.Ranges) == 0 {
		return errors.New("loadtest: attack: no range to attack")
	}
	if c.Codes == nil {
		return errors.New("loadtest: attack: the legitimate users need their codes: start the simulator (-sim)")
	}
	for _, r := range c.Ranges {
		if !strings.HasPrefix(r, "+") || len(digits(r)) < 2 {
			return fmt.Errorf("loadtest: attack: range %q: want \"+\" and digits, like +91-981110", r)
		}
	}
	if c.Count < 0 || c.Count > 10000 || c.Rate < 0 || c.Concurrency < 0 || c.VerifyShare < 0 || c.VerifyShare > 1 {
		return errors.New("loadtest: attack: count 0..10000, rate, concurrency and verify share (0..1) not negative")
	}
	if c.Count == 0 {
		c.Count = DefaultAttackCount
	}
	if c.Rate == 0 {
		c.Rate = DefaultAttackRate
	}
	if c.Concurrency == 0 {
		c.Concurrency = 8
	}
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.VerifyShare == 0 {
		c.VerifyShare = DefaultVerifyShare
	}
	if c.TextID == "" {
		c.TextID = DefaultTextID
	}
	if c.Client == nil {
		n := c.Concurrency + attackWorkers*len(c.Ranges)
		c.Client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			MaxIdleConnsPerHost: n, MaxConnsPerHost: n, DisableCompression: true}}
	}
	return nil
}

// Attack runs the pumping attack of cfg while legitimate traffic goes on:
// the attacker sends to Count consecutive numbers of each range at Rate a
// second in all, never verifying; Concurrency workers send to random
// numbers as the attacker's own users and as the Legit clients, in turn,
// and verify VerifyShare of the codes. The legitimate traffic stops when
// the attack is done. It writes the report to out (nil: nothing) and
// returns it; when ctx ends it returns what it measured with ctx's error.
func Attack(ctx context.Context, cfg AttackConfig, out io.Writer) (AttackReport, error) {
	if err := cfg.normalize(); err != nil {
		return AttackReport{}, err
	}
	start := time.Now()
	rep := AttackReport{LegitStatuses: map[int]int{}}
	sendBody := func(c Client, number string) []byte {
		return fmt.Appendf(nil, `{"clientId":%s,"phoneNumber":%s,"channel":"smsotp","customTextId":%s}`,
			strconv.Quote(c.ID), strconv.Quote(number), strconv.Quote(cfg.TextID))
	}
	verify := func(c Client, number string) int {
		code, ok := cfg.Codes(digits(number))
		if !ok {
			return 0
		}
		body := fmt.Appendf(nil, `{"clientId":%s,"phoneNumber":%s,"otp":%s}`,
			strconv.Quote(c.ID), strconv.Quote(number), strconv.Quote(code))
		return post(ctx, cfg.Client, cfg.URL+verifyPath, c.Key, body)
	}
	attacked := make([]string, len(cfg.Ranges))
	for i, r := range cfg.Ranges {
		attacked[i] = digits(r)
	}

	// Legitimate users.
	clients := append([]Client{cfg.Attacker}, cfg.Legit...)
	done := make(chan struct{})
	var mu sync.Mutex
	var legit sync.WaitGroup
	for w := range cfg.Concurrency {
		c := clients[w%len(clients)]
		legit.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(w)))
			for ctx.Err() == nil {
				select {
				case <-done:
					return
				default:
				}
				number := legitNumber(rng, cfg.Prefix, attacked)
				st := post(ctx, cfg.Client, cfg.URL+sendPath, c.Key, sendBody(c, number))
				verified, vst := false, 0
				if st == http.StatusOK && rng.Float64() < cfg.VerifyShare {
					verified, vst = true, verify(c, number)
				}
				mu.Lock()
				rep.LegitSends++
				rep.LegitStatuses[st]++
				if st != http.StatusOK {
					rep.LegitRefused++
				}
				if verified {
					rep.Verifies++
					if vst != http.StatusOK {
						rep.VerifyFailed++
					}
				}
				mu.Unlock()
			}
		})
	}

	// The attack.
	lim := rate.NewLimiter(rate.Limit(cfg.Rate), attackWorkers)
	rep.Ranges = make([]RangeReport, len(cfg.Ranges))
	var attack sync.WaitGroup
	for i, r := range cfg.Ranges {
		rr := &rep.Ranges[i]
		rr.Range = r + "xxxx"
		var next, reqs, ok, refused atomic.Int64
		var wg sync.WaitGroup
		for range attackWorkers {
			wg.Go(func() {
				for {
					n := int(next.Add(1)) - 1
					if n >= cfg.Count || lim.Wait(ctx) != nil {
						return
					}
					st := post(ctx, cfg.Client, cfg.URL+sendPath, cfg.Attacker.Key, sendBody(cfg.Attacker, fmt.Sprintf("%s%04d", r, n)))
					reqs.Add(1)
					switch st {
					case http.StatusOK:
						ok.Add(1)
					case http.StatusTooManyRequests:
						refused.Add(1)
					}
				}
			})
		}
		attack.Go(func() {
			wg.Wait()
			rr.Requests, rr.OK, rr.Refused = int(reqs.Load()), int(ok.Load()), int(refused.Load())
			rr.Other = rr.Requests - rr.OK - rr.Refused
		})
	}
	attack.Wait()
	close(done)
	legit.Wait()
	for i := range rep.Ranges {
		rr := &rep.Ranges[i]
		rr.Delivered = rr.OK
		if cfg.Delivered != nil {
			rr.Delivered = cfg.Delivered(attacked[i])
		}
	}
	rep.Elapsed = time.Since(start)
	writeAttack(out, cfg, rep)
	return rep, ctx.Err()
}

// legitNumber is prefix and nine random digits, outside the attacked ranges.
func legitNumber(rng *rand.Rand, prefix string, attacked []string) string {
	for {
		n := fmt.Sprintf("%s%09d", prefix, rng.IntN(numberSpace))
		d, hit := digits(n), false
		for _, a := range attacked {
			hit = hit || strings.HasPrefix(d, a)
		}
		if !hit {
			return n
		}
	}
}

func writeAttack(out io.Writer, cfg AttackConfig, rep AttackReport) {
	if out == nil {
		return
	}
	fmt.Fprintf(out, "otpgate bench -attack: %s; %d ranges, %d consecutive numbers each, at %.0f/s as %s; "+
		"legitimate: %d concurrent as %d clients, %.0f%% verified; %.1fs\n",
		cfg.URL, len(cfg.Ranges), cfg.Count, cfg.Rate, cfg.Attacker.ID, cfg.Concurrency, 1+len(cfg.Legit),
		100*cfg.VerifyShare, rep.Elapsed.Seconds())
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "attacked range\tsends\t200\t429\tother\tSMS at carrier\t")
	for _, r := range rep.Ranges {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t\n", r.Range, r.Requests, r.OK, r.Refused, r.Other, r.Delivered)
	}
	tw.Flush()
	fmt.Fprintf(out, "legitimate sends: %d, refused: %d (%s); verifications: %d, failed: %d\n",
		rep.LegitSends, rep.LegitRefused, statusList(rep.LegitStatuses), rep.Verifies, rep.VerifyFailed)
}
