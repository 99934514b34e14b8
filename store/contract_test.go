package store_test

import (
	"testing"

	"github.com/otpgate/otpgate/store"
	"github.com/otpgate/otpgate/store/storetest"
)

// TestDB_Contract runs the store contract against badger.
func TestDB_Contract(t *testing.T) {
	storetest.Run(t, func(t *testing.T, opts storetest.Options) storetest.Backend {
		return openDB(t, t.TempDir(), store.Options{Now: opts.Now, WantsCallback: opts.WantsCallback})
	})
}
