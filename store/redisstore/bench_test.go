package redisstore_test

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpgate/otpgate/otp"
	"github.com/otpgate/otpgate/ratelimit"
	"github.com/otpgate/otpgate/store"
	"github.com/otpgate/otpgate/store/redisstore"
)

var codeDigits = regexp.MustCompile(`\d{4,}`)

// handset is an otp.Sender that acknowledges every SMS at once with a
// decimal message id (as many SMSCs give) and keeps the code each number
// got.
type handset struct {
	n     atomic.Int64
	mu    sync.Mutex
	codes map[string]string
}

func (h *handset) Send(_ context.Context, sms otp.SMS) (otp.Sent, error) {
	h.mu.Lock()
	h.codes[sms.To] = codeDigits.FindString(sms.Text)
	h.mu.Unlock()
	return otp.Sent{Carrier: "sim", MessageIDs: []string{strconv.FormatInt(3_000_000_000+h.n.Add(1), 10)}}, nil
}

func (h *handset) code(to string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.codes[to]
}

// service returns a Service over st with one client "c1" and no rate limit.
func service(tb testing.TB, st otp.Store, rs otp.ReceiptStore, lim otp.Limiter) (*otp.Service, *handset) {
	tb.Helper()
	s, err := otp.NewSettings(otp.Policy{TTL: 5 * time.Minute, MaxAttempts: 5, ResendInterval: 30 * time.Second,
		MaxPerNumberPerHour: 5, SubmitTimeout: 5 * time.Second}, []otp.Client{{ID: "c1", Sender: "ACME", Countries: []string{"*"}}}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	h := &handset{codes: map[string]string{}}
	svc, err := otp.NewService(s, otp.Options{Store: st, Receipts: rs, Sender: h, Limiter: lim, Secret: []byte(strings.Repeat("s", 32))})
	if err != nil {
		tb.Fatal(err)
	}
	return svc, h
}

var benchNumbers atomic.Int64

// sendVerify sends a code to a new number and verifies it, and returns the
// two latencies.
func sendVerify(tb testing.TB, svc *otp.Service, h *handset) (send, verify time.Duration) {
	ctx := context.Background()
	number := fmt.Sprintf("+9198%08d", benchNumbers.Add(1)%100_000_000)
	t0 := time.Now()
	if _, err := svc.Send(ctx, otp.SendRequest{AuthClientID: "c1", ClientID: "c1", PhoneNumber: number, Channel: otp.Channel, CustomTextID: "6"}); err != nil {
		tb.Error(err)
		return
	}
	t1 := time.Now()
	if _, err := svc.Verify(ctx, otp.VerifyRequest{AuthClientID: "c1", ClientID: "c1", PhoneNumber: number, OTP: h.code(strings.TrimPrefix(number, "+"))}); err != nil {
		tb.Error(err)
	}
	return t1.Sub(t0), time.Since(t1)
}

// BenchmarkService_SendVerify drives otp.Service's send and verify paths
// (no SMPP: the sender acknowledges at once) through badger and through
// Redis Cluster (3 masters, 3 replicas, appendfsync always, every write
// waited for on a replica), 64 goroutines at once.
func BenchmarkService_SendVerify(b *testing.B) {
	for _, backend := range []string{"badger", "redis"} {
		b.Run(backend, func(b *testing.B) {
			var svc *otp.Service
			var h *handset
			switch backend {
			case "badger":
				db, err := store.Open(b.TempDir(), store.Options{})
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { db.Close() })
				svc, h = service(b, db, db, ratelimit.New(nil))
			case "redis":
				db := open(b, redisstore.Options{})
				svc, h = service(b, db, db, db)
			}
			var mu sync.Mutex
			var sends, verifies []time.Duration
			b.SetParallelism(32)
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				var s, v []time.Duration
				for pb.Next() {
					ds, dv := sendVerify(b, svc, h)
					s, v = append(s, ds), append(v, dv)
				}
				mu.Lock()
				sends, verifies = append(sends, s...), append(verifies, v...)
				mu.Unlock()
			})
			el := time.Since(start)
			b.ReportMetric(float64(len(sends))/el.Seconds(), "pairs/s")
			b.ReportMetric(p99(sends), "send-p99-ms")
			b.ReportMetric(p99(verifies), "verify-p99-ms")
		})
	}
}

func p99(d []time.Duration) float64 {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return float64(d[(len(d)-1)*99/100].Microseconds()) / 1000
}
