package callback_test

import (
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpgate/otpgate/callback"
	"github.com/otpgate/otpgate/otp"
)

// BenchmarkDispatcher measures draining a queue of b.N callbacks of 4
// clients into a local endpoint that answers 200 at once.
func BenchmarkDispatcher(b *testing.B) {
	db := openDB(b, b.TempDir())
	clients := []string{"c1", "c2", "c3", "c4"}
	for i := range b.N {
		deliverReceipt(b, db, clients[i%len(clients)], otp.StateDelivered)
	}
	var got atomic.Int64
	all := make(chan struct{})
	ep := newEndpoint(b, func(_ int, _ http.ResponseWriter, _ *http.Request) {
		if got.Add(1) == int64(b.N) {
			close(all)
		}
	})
	ep.arrived = make(chan hit, b.N+1)
	urls := map[string]string{}
	for _, c := range clients {
		urls[c] = ep.URL
	}
	b.ResetTimer()
	start := time.Now()
	stop := run(b, callback.New(db, settingsOf(urls), callback.Options{}))
	select {
	case <-all:
	case <-time.After(5 * time.Minute):
		b.Fatalf("%d of %d callbacks delivered", got.Load(), b.N)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "callbacks/s")
	b.StopTimer()
	stop()
}
