package store_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpgate/otpgate/internal/proccpu"
	"github.com/otpgate/otpgate/otp"
	"github.com/otpgate/otpgate/store"
)

// BenchmarkGroupCommit measures durable writes at the gateway's benchmark
// concurrency (64 callers on 2 cores): each caller's write is committed in
// the writer's shared transaction before it returns. OneKey is the worst
// case, every caller updating the same record.
func BenchmarkGroupCommit(b *testing.B) {
	keep := time.Now().Add(time.Hour)
	update := func(db *store.DB, key string) error {
		return db.UpdateOTP(context.Background(), key, func(r *otp.Record, _ bool) (otp.Change, error) {
			r.Attempts++
			r.KeepUntil = keep
			return otp.Put, nil
		})
	}
	for _, bm := range []struct {
		name  string
		write func(db *store.DB, n int64) error
	}{
		{"SaveSend", func(db *store.DB, n int64) error {
			id := fmt.Sprint(n)
			_, err := db.SaveSend(context.Background(), "c/"+id, message("r"+id, "a", id), setRecord(keep, 0))
			return err
		}},
		{"UpdateOTP", func(db *store.DB, n int64) error { return update(db, fmt.Sprint("c/", n)) }},
		// A send's three durable writes, as the send path and the receipt
		// worker make them: the reservation before the submit, the code
		// and message after it, then its delivery receipt.
		{"Send", func(db *store.DB, n int64) error {
			id := fmt.Sprint(n)
			if err := update(db, "c/"+id); err != nil {
				return err
			}
			if _, err := db.SaveSend(context.Background(), "c/"+id, message("r"+id, "a", id), setRecord(keep, 0)); err != nil {
				return err
			}
			_, matched, _, err := db.ApplyReceipt(context.Background(), otp.Receipt{Carrier: "a", MessageID: id, State: otp.StateDelivered})
			if err == nil && !matched {
				err = fmt.Errorf("receipt of %s matched no message", id)
			}
			return err
		}},
		// A verify's second write: the mark the status API reads.
		{"MarkVerified", func(db *store.DB, n int64) error { return db.MarkVerified(context.Background(), fmt.Sprint("r", n)) }},
		{"UpdateOTPOneKey", func(db *store.DB, _ int64) error { return update(db, "c/0") }},
	} {
		b.Run(bm.name, func(b *testing.B) {
			// As in the gateway's benchmarks: no client has a callback URL,
			// so a receipt queues no callback.
			db := openDB(b, b.TempDir(), store.Options{WantsCallback: func(string) bool { return false }})
			var seq atomic.Int64
			b.SetParallelism(32)
			b.ResetTimer()
			cpu0 := proccpu.Seconds()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := bm.write(db, seq.Add(1)); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
			// The process's CPU (badger's goroutines included) per op: what
			// the gateway pays for these writes, whatever the disk's latency.
			b.ReportMetric((proccpu.Seconds()-cpu0)*1e6/float64(b.N), "cpu-µs/op")
		})
	}
}
