package smpp_test

import (
	"context"
	"testing"
	"time"

	"github.com/otpgate/otpgate/smpp/smsc"
)

// BenchmarkCarrierSubmit submits from parallel goroutines through one
// carrier to the simulator over loopback TCP and reports msg/s.
func BenchmarkCarrierSubmit(b *testing.B) {
	for _, bc := range []struct {
		name          string
		binds, window int
	}{
		{"binds=1/window=10", 1, 10},
		{"binds=2/window=32", 2, 32},
	} {
		b.Run(bc.name, func(b *testing.B) {
			sim := newSMSC(b, smsc.Options{ReceiptDelay: -1})
			cfg := carrierConfig("bench", sim.Addr())
			cfg.Binds, cfg.Window = bc.binds, bc.window
			c := runCarrier(b, cfg, nil)
			waitBound(b, c, bc.binds)
			sms := testSMS("Your OTP for verification is 123456")
			b.SetParallelism(16)
			b.ReportAllocs()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					if _, err := c.Submit(ctx, sms); err != nil {
						b.Errorf("Submit: %v", err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msg/s")
		})
	}
}
