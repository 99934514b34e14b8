package redisstore_test

import (
	"testing"

	"github.com/otpgate/otpgate/otp"
	"github.com/otpgate/otpgate/store/redisstore"
	"github.com/otpgate/otpgate/store/storetest"
)

// TestDB_Contract runs the store contract against Redis Cluster, each case
// under a key prefix of its own.
func TestDB_Contract(t *testing.T) {
	storetest.Run(t, func(t *testing.T, opts storetest.Options) storetest.Backend {
		return open(t, redisstore.Options{Now: opts.Now, WantsCallback: opts.WantsCallback, MinScan: -1})
	})
}

// TestDB_LimiterContract runs the limiter contract against the rate
// buckets in Redis.
func TestDB_LimiterContract(t *testing.T) {
	storetest.RunLimiter(t, func(t *testing.T, opts storetest.Options) otp.Limiter {
		return open(t, redisstore.Options{Now: opts.Now})
	})
}
