package ratelimit_test

import (
	"testing"

	"github.com/otpgate/otpgate/otp"
	"github.com/otpgate/otpgate/ratelimit"
	"github.com/otpgate/otpgate/store/storetest"
)

// TestKeyed_Contract runs the limiter contract against Keyed.
func TestKeyed_Contract(t *testing.T) {
	storetest.RunLimiter(t, func(t *testing.T, opts storetest.Options) otp.Limiter {
		return ratelimit.New(opts.Now)
	})
}
