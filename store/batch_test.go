package store_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpgate/otpgate/otp"
	"github.com/otpgate/otpgate/store"
)

// BenchmarkGroupCommit measures durable writes at the gateway's benchmark
// concurrency (64 callers on 2 cores): each caller's write is committed in
// the writer's shared transaction before it returns.
func BenchmarkGroupCommit(b *testing.B) {
	b.Run("SaveSend", func(b *testing.B) {
		db := openDB(b, b.TempDir(), store.Options{})
		keep := time.Now().Add(time.Hour)
		var seq atomic.Int64
		b.SetParallelism(32)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				id := fmt.Sprint(seq.Add(1))
				if _, err := db.SaveSend(context.Background(), "c/"+id, message("r"+id, "a", id), setRecord(keep, 0)); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
	})
	b.Run("UpdateOTP", func(b *testing.B) {
		db := openDB(b, b.TempDir(), store.Options{})
		keep := time.Now().Add(time.Hour)
		var seq atomic.Int64
		b.SetParallelism(32)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				key := fmt.Sprint("c/", seq.Add(1))
				err := db.UpdateOTP(context.Background(), key, func(r *otp.Record, _ bool) (otp.Change, error) {
					r.Attempts++
					r.KeepUntil = keep
					return otp.Put, nil
				})
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
	})
}
